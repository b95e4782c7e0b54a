"""The scan's --fail-on rules: exit status 1 for CI when a verdict breaks one."""

from __future__ import annotations

import math
from dataclasses import dataclass

from dtlab.checkpoint.scan_records import ScanReport
from dtlab.errors import OptionValueError
from dtlab.formats.quantizer import Quantizer


@dataclass(frozen=True)
class FailRules:
    """What the fail_on rules ask for: any overflow, any NaN/inf in the weights, SQNR below."""

    overflow: bool = False
    nan: bool = False
    sqnr_below: float | None = None


def parse_fail_rules(rules: list[str]) -> FailRules:
    """``overflow``, ``nan``, ``sqnr<DB``; a bad rule is an OptionError (before any scan)."""
    wanted_over = wanted_nan = False
    floor = None
    for rule in rules:
        r = rule.strip().lower().replace(" ", "")
        if r == "overflow":
            wanted_over = True
        elif r == "nan":
            wanted_nan = True
        elif r.startswith("sqnr<"):
            try:
                floor = float(r[5:])
            except ValueError:
                floor = math.nan
            if not math.isfinite(floor):  # sqnr<nan would pass everything, sqnr<inf fail it
                raise OptionValueError("", "fail_on", f" {rule!r}: write sqnr<20 (dB)") from None
        else:
            raise OptionValueError("", "fail_on", f" {rule!r}: choose overflow, nan or sqnr<DB")
    return FailRules(wanted_over, wanted_nan, floor)


def failures(report: ScanReport, rules: FailRules | list[str]) -> list[str]:
    """The verdicts that break the fail_on rules: overflow, nan, sqnr<DB."""
    r = rules if isinstance(rules, FailRules) else parse_fail_rules(rules)
    if (r.overflow or r.nan or r.sqnr_below is not None) and not any(
        t.verdicts for t in report.tensors
    ):  # a check that looked at nothing has not passed
        return ["nothing to check: the checkpoint has no floating-point tensor to scan"]
    out = []
    for t in report.tensors:
        for v in t.verdicts:
            m = v.metrics
            if (
                (r.overflow and m.overflow and not isinstance(v.format, Quantizer))
                or (r.nan and (m.input_nan or m.input_inf))
                or (r.sqnr_below is not None and m.sqnr_db < r.sqnr_below)
            ):
                out.append(f"{t.name} in {v.format.name}: {v.message}")
    return out
