"""Seeded inputs for comparing the explorer's JavaScript with dtlab's Python (test_html_*)."""

from __future__ import annotations

import random
from fractions import Fraction

from dtlab.formats import FloatFormat, Format, formats, get_format
from dtlab.render.jsonable import to_data
from dtlab.scalar import decode, explain, explain_code
from dtlab.values import exact_text

MODES = ("nearest-even", "nearest-away", "toward-zero", "up", "down")
POLICIES = ("saturate", "inf-nan")
# the list: fp32, fp16, bf16, fp8 e4m3fn / e5m2, fp4, and two user specs
SHOW_FORMATS = ("fp32", "fp16", "bf16", "e4m3fn", "e5m2", "fp4", "e5m3", "e4m3:bias=5")
SPECIALS = (
    "inf",
    "-inf",
    "nan",
    "-nan",
    "0",
    "-0",
    "+0",
    "infinity",
    "-Infinity",
    "\u22120.5",
    " 7 ",
    "+inf",
)


def small_formats() -> list[Format]:
    """Every catalogue format of 8 bits or fewer."""
    return [f for f in formats() if f.bits <= 8]


def all_codes() -> list[tuple[str, str]]:
    """(hex bits, format name) for every code of every catalogue format of <= 8 bits."""
    return [
        (f"0x{c:0{(f.bits + 3) // 4}x}", f.name)
        for f in small_formats()
        for c in range(1 << f.bits)
    ]


def expected_decode(bits: str, name: str) -> object:
    fmt = get_format(name)
    return to_data(explain_code(int(bits, 16), fmt))


def _near(fmt: FloatFormat, rng: random.Random) -> str:
    """A value where rounding is decided: a code, a midpoint (a tie), or just off one."""
    top = fmt.max_code + 1
    code = rng.randrange(top)
    lo, hi = fmt.magnitude_of(code), fmt.magnitude_of(code + 1)
    mid = (lo + hi) / 2
    pick = rng.choice((lo, mid, mid + (hi - lo) / 7, mid - (hi - lo) / 5, hi * 3 / 2))
    sign = "-" if rng.random() < 0.4 else ""
    return sign + exact_text(Fraction(pick))


def random_values(n: int, seed: int = 11) -> list[str]:
    """n distinct value texts: decimals, fractions, hex floats, powers of two, specials (in
    several spellings) and ties."""
    rng = random.Random(seed)
    floats = [f for f in (get_format(s) for s in SHOW_FORMATS) if isinstance(f, FloatFormat)]
    out: dict[str, None] = {}
    while len(out) < n:
        kind = rng.randrange(7)
        sign = rng.choice(("", "", "-"))
        if kind == 0:
            digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 25)))
            cut = rng.randint(0, len(digits))
            out.setdefault(f"{sign}{digits[:cut]}.{digits[cut:] or '0'}e{rng.randint(-50, 45)}")
        elif kind == 1:
            out.setdefault(f"{sign}{rng.randint(0, 10**6)}/{rng.randint(1, 10**5)}")
        elif kind == 2:
            m = "".join(rng.choice("0123456789abcdef") for _ in range(rng.randint(1, 9)))
            out.setdefault(f"{sign}0x1.{m}p{rng.randint(-160, 140)}")
        elif kind == 3:
            out.setdefault(f"{sign}2^{rng.randint(-150, 130)}")
        elif kind == 4:
            out.setdefault(rng.choice(SPECIALS))
        else:
            out.setdefault(_near(rng.choice(floats), rng))
    return list(out)


def show_cases(n: int, seed: int = 11) -> list[tuple[str, str, str, str]]:
    """(value, spec, rounding, overflow): every value in every format of the list, the
    (rounding, overflow) pairs taken in turn so that each pair meets every format; the
    specials under every pair."""
    pairs = [(m, p) for m in MODES for p in POLICIES]
    cases = []
    for i, value in enumerate(random_values(n, seed)):
        for j, spec in enumerate(SHOW_FORMATS):
            mode, policy = pairs[(i + j) % len(pairs)]
            cases.append((value, spec, mode, policy))
    # the specials meet every format, mode and policy
    cases += [(v, s, m, p) for v in SPECIALS for s in SHOW_FORMATS for m, p in pairs]
    return cases


def expected_show(value: str, spec: str, mode: str, policy: str) -> object:
    return to_data(explain(value, get_format(spec), rounding=mode, overflow=policy))


__all__ = ["all_codes", "decode", "expected_decode", "expected_show", "show_cases"]


def big_scan(n_tensors: int, seed: int = 5) -> dict[str, object]:
    """A dtlab.scan/1 document of n_tensors tensors in three formats (made up, well-formed)."""
    rng = random.Random(seed)
    fmts = ["float16", "bfloat16", "float8_e4m3fn"]
    tensors = []
    for i in range(n_tensors):
        numel = rng.randint(1, 4096) * 64
        verdicts = []
        for f in fmts:
            sqnr = rng.uniform(5, 80) if f != "float16" or i % 97 else "inf"
            status = (
                "overflow"
                if i % 1000 == 7 and f == "float16"
                else ("lossy" if isinstance(sqnr, float) and sqnr < 20 else "safe")
            )
            metrics = {
                "n": numel,
                "overflow": 3 if status == "overflow" else 0,
                "underflow": rng.randint(0, 99),
                "subnormal": rng.randint(0, 999),
                "sqnr_db": sqnr,
                "max_abs_error": rng.random() / 100,
                "mean_rel_error": rng.random() / 1000,
            }
            verdicts.append(
                {
                    "format": f,
                    "status": status,
                    "message": status,
                    "metrics": metrics,
                    "signal": 1.0,
                    "noise": 0.01,
                }
            )
        tensors.append(
            {
                "name": f"model.layers.{i}.mlp.weight",
                "dtype": "BF16",
                "shape": [numel // 64, 64],
                "numel": numel,
                "absmax": rng.random() * 9,
                "nan": 0,
                "inf": 0,
                "verdicts": verdicts,
            }
        )
    summaries = [
        {
            "format": f,
            "tensors": n_tensors,
            "safe": sum(
                1
                for t in tensors
                for v in t["verdicts"]
                if v["format"] == f and v["status"] == "safe"
            ),
            "overflowing": sum(
                1
                for t in tensors
                for v in t["verdicts"]
                if v["format"] == f and v["status"] == "overflow"
            ),
            "overflow_values": 0,
            "lossy": sum(
                1
                for t in tensors
                for v in t["verdicts"]
                if v["format"] == f and v["status"] == "lossy"
            ),
            "nan": 0,
            "worst": [tensors[0]["name"]],
            "worst_sqnr_db": 5.0,
            "mean_sqnr_db": 40.0,
        }
        for f in fmts
    ]
    result = {
        "source": "/models/made-up",
        "formats": fmts,
        "sqnr_threshold_db": 20.0,
        "tensors": tensors,
        "summaries": summaries,
        "params": sum(t["numel"] for t in tensors),
        "stored_bytes": 2 * sum(t["numel"] for t in tensors),
        "seconds": 1.5,
        "workers": 1,
        "chunk_bytes": 1 << 26,
    }
    return {"schema": "dtlab.scan/1", "result": result}
