"""Metrics against direct float64 computations, and counts against hand-built tensors."""

import math

import pytest
import torch

from dtlab.analysis.elementwise import format_metrics, overflow_limits
from dtlab.analysis.format_fit import analyze, binade_histogram
from dtlab.analysis.metrics import measure
from dtlab.formats import get_format
from dtlab.kernels import has_c_kernel, quantize
from dtlab.modes import Rounding

BACKENDS = ["torch", "c"] if has_c_kernel() else ["torch"]
# the torch path sums in float64 (in another order); the C kernel sums float32 runs of 16
# values before float64 (documented in ErrorMetrics)
REL = {"torch": 1e-12, "c": 1e-6}


def direct(x: torch.Tensor, q: torch.Tensor) -> dict[str, float]:
    xd, qd = x.double(), q.double()
    keep = xd.isfinite() & qd.isfinite()
    xd, qd = xd[keep], qd[keep]
    err = (qd - xd).abs()
    nz = xd != 0
    rel = err[nz] / xd[nz].abs()
    return {
        "max_abs_error": float(err.max()),
        "mean_abs_error": float(err.mean()),
        "rmse": math.sqrt(float((err * err).mean())),
        "max_rel_error": float(rel.max()),
        "mean_rel_error": float(rel.mean()),
        "sqnr_db": 10 * math.log10(float((xd * xd).sum()) / float((err * err).sum())),
        "cosine": float((xd * qd).sum() / (xd.norm() * qd.norm())),
    }


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fmt", ["fp8", "e5m2", "bf16", "fp16", "fp4", "int8", "e8m0", "fp6"])
def test_metrics_equal_a_direct_float64_computation(backend: str, fmt: str) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(50_000, generator=g) * 30
    x[:5] = torch.tensor([math.nan, math.inf, -math.inf, 0.0, 1e-30])
    m = format_metrics(x, fmt, backend=backend)
    q = quantize(x, fmt)
    want = direct(x, q)
    if bool((x.isfinite() & ~q.isfinite()).any()):  # e8m0: negative values became NaN
        # a cast that creates inf or NaN never looks lossless: the errors are unbounded
        want = dict.fromkeys(want, math.inf) | {"sqnr_db": -math.inf, "cosine": math.nan}
        for key, value in want.items():
            got = getattr(m, key)
            assert got == value or (math.isnan(value) and math.isnan(got)), key
        want = {}
    for key, value in want.items():
        assert getattr(m, key) == pytest.approx(value, rel=REL[backend]), key
    assert (m.n, m.input_nan, m.input_inf) == (50_000, 1, 2)
    finite = x.isfinite()
    assert m.nonfinite_output == int((finite & ~q.isfinite()).sum())
    assert m.underflow == int((finite & (x != 0) & (q == 0)).sum())


def test_counts_on_hand_built_values() -> None:
    # float8_e4m3fn: max 448; the next grid point is 480, so 464 is the tie (448 is even: stays)
    x = torch.tensor(
        [448.0, 464.0, 464.5, -465.0, 2.0**-10, 2.0**-10 * 1.01, 2.0**-9, 2.0**-7, 0.0]
    )
    for backend in BACKENDS:
        m = format_metrics(x, "fp8", backend=backend)
        assert m.overflow == 2  # 464.5 and -465 round past 448
        assert m.nonfinite_output == 2  # and become NaN (no inf in e4m3fn)
        assert m.underflow == 1  # 2^-10 is half the smallest subnormal: ties to 0
        assert m.subnormal == 3  # 2^-10 * 1.01 -> 2^-9, 2^-9, 2^-7 stay subnormal
        sat = format_metrics(x, "fp8", overflow="saturate", backend=backend)
        assert sat.overflow == 2 and sat.nonfinite_output == 0
    # e5m2: max 57344 is odd (1.11b), so the tie 61440 overflows to inf
    m = format_metrics(torch.tensor([61439.0, 61440.0, -61440.0]), "e5m2")
    assert (m.overflow, m.nonfinite_output) == (2, 2)
    # int8: 127.5 ties to 128 (even): overflow; -128.5 ties to -128: fine
    m = format_metrics(torch.tensor([127.4, 127.5, -128.5, -128.6]), "int8")
    assert m.overflow == 2


def test_directed_modes_have_their_own_thresholds() -> None:
    fp8 = get_format("fp8")
    assert overflow_limits(fp8, Rounding.TOWARD_ZERO).pos == 480.0
    assert (
        overflow_limits(fp8, Rounding.UP).pos == 448.0
        and not overflow_limits(fp8, Rounding.UP).pos_inclusive
    )
    assert overflow_limits(fp8, Rounding.UP).neg == 480.0  # -x rounds toward zero when going up
    x = torch.tensor([449.0, -449.0])
    for backend in BACKENDS:
        assert format_metrics(x, fp8, rounding="up", backend=backend).overflow == 1
        assert format_metrics(x, fp8, rounding="down", backend=backend).overflow == 1


def test_measure_for_any_pair() -> None:
    m = measure(torch.tensor([1.0, -2.0, 4.0]), torch.tensor([1.0, -2.0, 4.0]))
    assert m.sqnr_db == math.inf and m.max_abs_error == 0 and m.cosine == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shapes differ"):
        measure(torch.zeros(2), torch.zeros(3))


def test_binade_histogram_and_ranking() -> None:
    x = torch.tensor([1.0, 1.9, 2.0, 0.25, -0.3, 0.0, math.nan, math.inf, 1e-40])
    h = binade_histogram(x)
    assert h.counts == ((-133, 1), (-2, 2), (0, 2), (1, 1))
    assert (h.zeros, h.nan, h.inf) == (1, 1, 1)
    g = torch.Generator().manual_seed(0)
    a = analyze(torch.randn(10_000, generator=g), [get_format(f) for f in ("fp4", "bf16", "fp8")])
    assert [r.format.name for r in a.ranked()] == ["bfloat16", "float8_e4m3fn", "float4_e2m1fn"]
    assert a.results[0].range.emax == 2 and a.results[2].range.emin_sub == -9


@pytest.mark.parametrize("backend", BACKENDS)
def test_partials_of_chunks_merge_into_the_whole(backend: str) -> None:
    from dtlab.analysis.elementwise import format_partial

    g = torch.Generator().manual_seed(5)
    x = torch.randn(30_000, generator=g) * 100
    x[17] = math.nan
    whole = format_metrics(x, "fp8", backend=backend)
    parts = [format_partial(c, "fp8", backend=backend) for c in x.split(7_001)]
    merged = parts[0]
    for p in parts[1:]:
        merged = merged.merged(p)
    m = merged.finish()
    for key in ("n", "input_nan", "overflow", "underflow", "subnormal", "nonfinite_output"):
        assert getattr(m, key) == getattr(whole, key), key
    for key in ("sqnr_db", "mean_abs_error", "max_rel_error", "cosine"):
        assert getattr(m, key) == pytest.approx(getattr(whole, key), rel=REL[backend]), key


def test_summary_merges_chunks_and_equals_a_direct_computation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import dtlab.analysis.format_fit as dist

    g = torch.Generator().manual_seed(8)
    x = torch.randn(10_007, generator=g) * 3 + 5
    x[::97] = 0.0
    x[5], x[6000], x[7000] = math.nan, math.inf, -math.inf
    monkeypatch.setattr(dist, "CHUNK", 1000)  # eleven chunks, merged
    s = dist.summarize(x)
    fin = x[x.isfinite()].double()
    assert s.n == 10_007 and s.absmax == float(fin.abs().max())
    assert s.mean == pytest.approx(float(fin.mean()), rel=1e-12)
    assert s.std == pytest.approx(float(fin.std()), rel=1e-12)
    assert s.histogram == binade_histogram(x)
    assert (s.histogram.nan, s.histogram.inf, s.histogram.zeros) == (1, 2, 104)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_binades_from_exponent_fields_equal_frexp(dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(9)
    scale = torch.logspace(-45, 35, 5000, dtype=torch.float64)
    x = (torch.randn(5000, generator=g, dtype=torch.float64) * scale).to(dtype)
    x[::50], x[7], x[8], x[9] = 0.0, math.nan, math.inf, -math.inf
    h = binade_histogram(x)
    v = x.double()
    keep = v[v.isfinite() & (v != 0)]
    exps = (torch.frexp(keep)[1] - 1).tolist()
    want = tuple(sorted((e, exps.count(e)) for e in set(exps)))
    assert h.counts == want
    assert (h.zeros, h.nan, h.inf) == (int((v == 0).sum()), 1, int(v.isinf().sum()))
