"""``--fail-on`` rules for model comparisons and activation scans: CI checks that exit with
status 1 when a run breaks them (status 2 stays for bad input).

compare: ``kld>X`` (mean KLD above X), ``top1<P`` (same top-1 below P percent),
``ppl-ratio>R``, ``cos<C`` (an encoder's smallest embedding cosine below C).
activations: ``overflow`` (a module would overflow a target format), ``nan`` (NaN or inf in
the fp32 pass, or in the native ``--run-in`` pass), ``headroom<B`` (a module with fewer than B
binades of headroom in a target format).
"""

from __future__ import annotations

import math
import re

from dtlab.errors import OptionValueError
from dtlab.models.activations import ActivationReport
from dtlab.models.compare import CompareReport

__all__ = ["activation_failures", "compare_failures", "parse_rules"]

COMPARE_RULES = ("kld>", "top1<", "ppl-ratio>", "cos<")
ACTIVATION_RULES = ("overflow", "nan", "headroom<")
_RULE = re.compile(r"^(kld>|top1<|ppl-ratio>|cos<|headroom<)(.+)$")


def parse_rules(rules: list[str], allowed: tuple[str, ...]) -> list[tuple[str, float]]:
    """(rule, threshold) pairs; a rule that is not allowed or has no finite threshold is an
    OptionValueError naming --fail-on."""
    out = []
    for rule in rules:
        r = rule.strip().lower().replace(" ", "")
        if r in allowed and not r.endswith(("<", ">")):
            out.append((r, math.nan))
            continue
        m = _RULE.match(r)
        value = math.nan
        if m is not None and m.group(1) in allowed:
            try:
                value = float(m.group(2))
            except ValueError:
                value = math.nan
        if m is None or m.group(1) not in allowed or not math.isfinite(value):
            choose = ", ".join(a + ("N" if a.endswith(("<", ">")) else "") for a in allowed)
            raise OptionValueError("", "fail_on", f" {rule!r}: choose {choose}")
        out.append((m.group(1), value))
    return out


def compare_failures(report: CompareReport, rules: list[str]) -> list[str]:
    out = []
    for rule, x in parse_rules(rules, COMPARE_RULES):
        for run in report.runs:
            lm, enc = run.lm, run.encoder
            if rule == "kld>" and lm is not None and lm.kld.mean > x:
                out.append(f"{run.spec}: mean KLD {lm.kld.mean:.6g} > {x:g}")
            if rule == "top1<" and lm is not None and 100 * lm.same_top1 < x:
                out.append(f"{run.spec}: same top-1 {100 * lm.same_top1:.4g} % < {x:g} %")
            if rule == "ppl-ratio>" and lm is not None and lm.ppl_ratio > x:
                out.append(f"{run.spec}: PPL ratio {lm.ppl_ratio:.6g} > {x:g}")
            if rule == "cos<" and enc is not None and enc.cosine_min < x:
                out.append(f"{run.spec}: smallest cosine {enc.cosine_min:.6g} < {x:g}")
    return out


def activation_failures(report: ActivationReport, rules: list[str]) -> list[str]:
    out = []
    for rule, x in parse_rules(rules, ACTIVATION_RULES):
        if rule == "overflow":
            out += [
                f"{t.format}: {t.first_overflow or ''} overflows first "
                f"({t.overflowing_modules} modules)"
                for t in report.targets
                if t.first_overflow is not None
            ]
        elif rule == "nan":
            out += [
                f"{m.name or '(model)'}: {m.nan} NaN, {m.inf} inf"
                for m in report.modules
                if m.nan or m.inf
            ]
            n = report.native
            if n is not None and n.first_nonfinite is not None:
                out.append(f"run in {n.dtype}: inf/NaN first in {n.first_nonfinite}")
        else:
            out += [
                f"{t.format}: {name or '(model)'} has {h:+.2f} binades of headroom < {x:g}"
                for t in report.targets
                for name, h in t.least_headroom
                if h < x
            ]
    return out
