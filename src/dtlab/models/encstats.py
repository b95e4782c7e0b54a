"""How an encoder's embeddings moved: cosine of each to its fp32 embedding, and whether
nearest-neighbour retrieval over the same passages still finds the same passages.

Retrieval: each passage is a query against all the others (itself excluded), ranked by
cosine similarity; ``top_k_agreement`` is the mean share of the fp32 top k that the other
run's top k holds, ``top1_agreement`` the share of queries whose nearest passage is the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["EncoderStats", "encoder_stats"]

TOP_K = 5


@dataclass(frozen=True)
class EncoderStats:
    passages: int
    cosine_mean: float
    cosine_min: float
    cosine_p1: float  # 1st percentile, interpolated linearly as numpy.percentile does
    top_k: int
    top_k_agreement: float
    top1_agreement: float


def _cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row cosines as ``analysis.metrics.cosine`` forms them: ab / sqrt(aa bb), exactly 1
    for identical rows (sqrt(x * x) rounds back to x)."""
    ab, aa, bb = (a * b).sum(-1), (a * a).sum(-1), (b * b).sum(-1)
    return (ab / (aa * bb).sqrt()).clamp(-1.0, 1.0)


def _ranked(e: torch.Tensor, k: int) -> torch.Tensor:
    u = e / e.norm(dim=-1, keepdim=True)
    sim = u @ u.T
    sim.fill_diagonal_(-torch.inf)
    top: torch.Tensor = sim.topk(k, dim=-1).indices
    return top


def encoder_stats(ref: torch.Tensor, out: torch.Tensor) -> EncoderStats:
    """ref, out: (passages, dim) embeddings of the same passages, fp32 run first."""
    r, o = ref.double(), out.double()
    cos = _cos(r, o)
    n = r.shape[0]
    k = min(TOP_K, n - 1)
    a, b = _ranked(r, k), _ranked(o, k)
    hits = (a.unsqueeze(-1) == b.unsqueeze(-2)).any(-1).double().sum(-1) / k
    return EncoderStats(
        passages=n,
        cosine_mean=float(cos.mean()),
        cosine_min=float(cos.min()),
        cosine_p1=float(torch.quantile(cos, 0.01)),
        top_k=k,
        top_k_agreement=float(hits.mean()),
        top1_agreement=float((a[:, 0] == b[:, 0]).double().mean()),
    )
