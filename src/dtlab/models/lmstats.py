"""The statistics of llama.cpp's ``llama-perplexity --kl-divergence``, from exact log-probs.

Per scored token t, with base log-probs ``b`` (``log_softmax`` in float64 of the fp32 run's
logits, kept exactly as computed) and the other run's ``q`` (the same of its logits), all in
float64: ``KLD_t = sum_v exp(b_v) (b_v - q_v)``; ``Δp_t = exp(q_y) - exp(b_y)`` for the true
next token y; NLL ``-q_y`` and ``-b_y``; whether both runs' argmax agree (ties: the lowest
token id, as ``torch.argmax`` picks). llama.cpp stores base log-probs in 16 bits; dtlab keeps
the fp32 logits they come from.

Uncertainties are llama.cpp's: the standard error of a mean, ``sqrt((E[x²] - E[x]²) /
(n - 1))``; PPL = exp(mean NLL) ± PPL × its standard error; the ln-ratio's error includes the
covariance of the two NLLs; top-1 agreement p ± ``sqrt(p (1 - p) / (n - 1))``. Percentiles
interpolate linearly between the two nearest ranks (``numpy.percentile``'s default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["Distribution", "LMStats", "TokenStats", "lm_stats", "token_stats"]

PERCENTILES = (99.9, 99.0, 95.0, 90.0, 50.0, 10.0, 5.0, 1.0, 0.1)


@dataclass(frozen=True, eq=False)
class TokenStats:
    """Per scored token (float64): KLD, Δp, both NLLs, and top-1 agreement."""

    kld: torch.Tensor
    dp: torch.Tensor
    nll: torch.Tensor
    nll_base: torch.Tensor
    same_top: torch.Tensor  # bool

    @staticmethod
    def join(parts: list[TokenStats]) -> TokenStats:
        return TokenStats(
            *(torch.cat([getattr(p, f) for p in parts]) for f in TokenStats.__dataclass_fields__)
        )


def token_stats(
    base_logits: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor
) -> TokenStats:
    """The per-token figures of one batch: logits are (n, vocab), targets (n,)."""
    # both log-probs in float64 from the logits (fp32 for the base, kept exactly; the run's
    # hold its own dtype's values): a run compared with itself gives exactly 0, and no KLD
    # goes negative by more than float64 rounding
    b = torch.log_softmax(base_logits.double(), dim=-1)
    q = torch.log_softmax(logits.double(), dim=-1)
    pb = b.exp()
    # where p_base is 0, its term is 0 (even when q is -inf there)
    terms = torch.where(pb > 0, pb * (b - q), torch.zeros_like(b))
    kld = terms.sum(-1)
    y = targets.reshape(-1, 1)
    qy, by = q.gather(1, y)[:, 0], b.gather(1, y)[:, 0]
    same = base_logits.float().argmax(-1) == logits.float().argmax(-1)
    return TokenStats(kld, qy.exp() - by.exp(), -qy, -by, same)


@dataclass(frozen=True)
class Distribution:
    """mean ± standard error, and the order statistics llama.cpp prints."""

    mean: float
    uncertainty: float
    max: float
    percentiles: tuple[tuple[float, float], ...]  # (percent, value), 99.9 down to 0.1
    min: float


@dataclass(frozen=True)
class LMStats:
    tokens: int
    ppl: float
    ppl_uncertainty: float
    ppl_base: float
    ppl_base_uncertainty: float
    ln_ppl_ratio: float
    ln_ppl_ratio_uncertainty: float
    ppl_ratio: float
    ppl_ratio_uncertainty: float
    ppl_diff: float
    ppl_diff_uncertainty: float
    ln_ppl_correlation: float
    kld: Distribution
    delta_p: Distribution
    rms_delta_p: float
    rms_delta_p_uncertainty: float
    same_top1: float
    same_top1_uncertainty: float
    # tokens per bin of log10(KLD), bins [k/4, (k+1)/4) as (k/4, count); KLD <= 0 apart
    kld_log10_histogram: tuple[tuple[float, int], ...] = ()
    kld_nonpositive: int = 0


def _mean_unc(x: torch.Tensor) -> tuple[float, float]:
    n = x.numel()
    mean = float(x.mean())
    if n < 2:
        return mean, math.nan
    var = float((x * x).mean()) - mean * mean
    return mean, math.sqrt(max(var, 0.0) / (n - 1))


def _cov(a: torch.Tensor, b: torch.Tensor) -> float:
    n = a.numel()
    if n < 2:
        return math.nan
    return (float((a * b).mean()) - float(a.mean()) * float(b.mean())) / (n - 1)


def distribution(x: torch.Tensor) -> Distribution:
    mean, unc = _mean_unc(x)
    qs = torch.tensor([p / 100 for p in PERCENTILES], dtype=torch.float64)
    vals = torch.quantile(x, qs).tolist()
    return Distribution(
        mean, unc, float(x.max()), tuple(zip(PERCENTILES, vals, strict=True)), float(x.min())
    )


def lm_stats(t: TokenStats) -> LMStats:
    """The summary of llama.cpp's KL-divergence run over the scored tokens."""
    ln_q, ln_q_unc = _mean_unc(t.nll)
    ln_b, ln_b_unc = _mean_unc(t.nll_base)
    cov = _cov(t.nll, t.nll_base)
    ppl, ppl_b = math.exp(ln_q), math.exp(ln_b)
    ratio_unc = math.sqrt(max(ln_q_unc**2 + ln_b_unc**2 - 2 * cov, 0.0))
    ratio = math.exp(ln_q - ln_b)
    diff_unc = math.sqrt(
        max((ppl * ln_q_unc) ** 2 + (ppl_b * ln_b_unc) ** 2 - 2 * ppl * ppl_b * cov, 0.0)
    )
    denom = ln_q_unc * ln_b_unc
    ms, ms_unc = _mean_unc(t.dp * t.dp)
    rms = math.sqrt(ms)
    p, n = float(t.same_top.double().mean()), t.same_top.numel()
    return LMStats(
        tokens=n,
        ppl=ppl,
        ppl_uncertainty=ppl * ln_q_unc,
        ppl_base=ppl_b,
        ppl_base_uncertainty=ppl_b * ln_b_unc,
        ln_ppl_ratio=ln_q - ln_b,
        ln_ppl_ratio_uncertainty=ratio_unc,
        ppl_ratio=ratio,
        ppl_ratio_uncertainty=ratio * ratio_unc,
        ppl_diff=ppl - ppl_b,
        ppl_diff_uncertainty=diff_unc,
        ln_ppl_correlation=cov / denom if denom > 0 else math.nan,
        kld=distribution(t.kld),
        delta_p=distribution(t.dp),
        rms_delta_p=rms,
        rms_delta_p_uncertainty=0.5 * ms_unc / rms if rms > 0 else 0.0,
        same_top1=p,
        same_top1_uncertainty=math.sqrt(p * (1 - p) / (n - 1)) if n > 1 else math.nan,
        kld_log10_histogram=_log_histogram(t.kld),
        kld_nonpositive=int((t.kld <= 0).sum()),
    )


def _log_histogram(kld: torch.Tensor) -> tuple[tuple[float, int], ...]:
    pos = kld[kld > 0]
    if not pos.numel():
        return ()
    k = torch.floor(torch.log10(pos) * 4).long()
    lo = int(k.min())
    counts = torch.bincount(k - lo).tolist()
    return tuple(((lo + i) / 4, c) for i, c in enumerate(counts) if c)
