"""Model comparisons (``dtlab model compare``) -> rich tables, CSV and Markdown.

Figures are shown to 4 significant digits (below 1e-3 with an uncertainty: 3; uncertainties
to 2); ``--json`` has every float in
full. Memory in MB is 10^6 bytes.
"""

from __future__ import annotations

import csv
import io
import math

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from dtlab.models.compare import CompareReport, FormatRun
from dtlab.models.lmstats import PERCENTILES, Distribution
from dtlab.models.sources import ModelKind
from dtlab.numtext import counted
from dtlab.render.text import markdown_cell, printable

__all__ = [
    "compare_csv",
    "compare_markdown",
    "compare_rows",
    "compare_view",
    "memory_rows",
    "ppl_rows",
]

LAYERS_SHOWN = 5


def _g(x: float, digits: int = 4) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{digits}g}"


def _pm(x: float, u: float) -> str:
    return f"{_g(x, 3) if abs(x) < 1e-3 else _g(x)} ± {_g(u, 2)}"


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f}"


def _pct(d: Distribution, p: float) -> float:
    return dict(d.percentiles)[p]


def _lm_cells(r: FormatRun) -> list[str]:
    s = r.lm
    assert s is not None
    return [
        _pm(s.kld.mean, s.kld.uncertainty),
        _g(_pct(s.kld, 99.0)),
        _pm(100 * s.same_top1, 100 * s.same_top1_uncertainty) + " %",
        _g(s.rms_delta_p),
    ]


def ppl_rows(r: CompareReport) -> tuple[tuple[str, ...], list[list[str]]]:
    """Perplexities (language models): PPL(Q), PPL(fp32), their ratio and ln-ratio."""
    head = ("format", "PPL", "PPL fp32", "PPL ratio", "ln PPL ratio", "PPL - PPL fp32")
    rows = []
    for run in r.runs:
        s = run.lm
        if s is not None:
            rows.append(
                [
                    run.spec,
                    _pm(s.ppl, s.ppl_uncertainty),
                    _pm(s.ppl_base, s.ppl_base_uncertainty),
                    _pm(s.ppl_ratio, s.ppl_ratio_uncertainty),
                    _pm(s.ln_ppl_ratio, s.ln_ppl_ratio_uncertainty),
                    _pm(s.ppl_diff, s.ppl_diff_uncertainty),
                ]
            )
    return head, rows


def _enc_cells(r: FormatRun) -> list[str]:
    s = r.encoder
    assert s is not None
    return [
        _g(s.cosine_mean, 6),
        _g(s.cosine_min, 6),
        _g(s.cosine_p1, 6),
        f"{100 * s.top_k_agreement:.1f} %",
        f"{100 * s.top1_agreement:.1f} %",
    ]


_LM_HEAD = ("KLD mean", "KLD 99%", "same top-1", "RMS Δp")
_DIFF_HEAD = ("max |Δ|", "mean |Δ|")
_MEMORY_HEAD = (
    "format",
    "method",
    "layers q/kept",
    "loaded MB",
    "packed MB",
    "peak RSS MB",
    "s/forward",
)


def compare_rows(r: CompareReport) -> tuple[tuple[str, ...], list[list[str]]]:
    """The outputs table, one row per format: headers and cells (shared by every output)."""
    lm = r.kind is not ModelKind.ENCODER
    k = r.runs[0].encoder.top_k if r.runs and r.runs[0].encoder else 5
    enc_head = ("cos mean", "cos min", "cos 1%", f"top-{k} agree", "top-1 agree")
    head = ("format", *(_LM_HEAD if lm else enc_head), *_DIFF_HEAD)
    rows = [
        [
            run.spec,
            *(_lm_cells(run) if lm else _enc_cells(run)),
            _g(run.max_abs_diff),
            _g(run.mean_abs_diff),
        ]
        for run in r.runs
    ]
    return head, rows


def memory_rows(r: CompareReport) -> tuple[tuple[str, ...], list[list[str]]]:
    ref = r.reference
    rows = [
        [
            "fp32 (reference)",
            "",
            "",
            _mb(ref.loaded_bytes),
            _mb(ref.packed_bytes),
            _mb(ref.peak_rss_bytes),
            f"{ref.seconds_per_forward:.3f}",
        ]
    ]
    for run in r.runs:
        m = run.memory
        layers = f"{run.quantized_layers}/{run.kept_layers}" if run.method != "cast" else ""
        rows.append(
            [
                run.spec,
                run.method,
                layers,
                _mb(m.loaded_bytes),
                _mb(m.packed_bytes),
                _mb(m.peak_rss_bytes),
                f"{m.seconds_per_forward:.3f}",
            ]
        )
    return _MEMORY_HEAD, rows


def _header(r: CompareReport) -> str:
    what = (
        f"{counted(r.sequences, 'sequence')} of {r.seq_len} tokens, "
        f"{counted(r.scored_tokens, 'scored token')}"
        if r.kind is not ModelKind.ENCODER
        else f"{counted(r.sequences, 'passage')} (up to {r.seq_len} tokens)"
    )
    lines = [
        f"{printable(r.model)}: {r.architecture} ({r.kind.value}), "
        f"{counted(r.parameters, 'parameter')}; fp32 reference "
        f"{_mb(r.reference.loaded_bytes)} MB loaded, "
        f"{r.reference.seconds_per_forward:.3f} s/forward",
        f"text: {printable(r.text_source)}, {what}",
    ]
    if r.activations:
        lines.append(f"activations: inputs of quantized layers fake-quantized to {r.activations}")
    if r.note:
        lines.append(f"note: {r.note}")
    return "\n".join(lines)


def _table(title: str, head: tuple[str, ...], rows: list[list[str]]) -> Table:
    t = Table(title=title, title_justify="left")
    for i, h in enumerate(head):
        width = max([len(h)] + [len(row[i]) for row in rows]) if i == 0 else None
        # every digit stays visible: long cells fold rather than end in an ellipsis
        left = i == 0 or h == "layer"
        t.add_column(h, justify="left" if left else "right", overflow="fold", min_width=width)
    for row in rows:
        t.add_row(*row)
    return t


def _layer_rows(r: CompareReport) -> list[list[str]]:
    rows = []
    for run in r.runs:
        changed = [layer for layer in run.layers if layer.sqnr_db != math.inf]
        for layer in changed[:LAYERS_SHOWN]:
            rows.append([run.spec, printable(layer.name), _g(layer.sqnr_db), _g(layer.cosine, 6)])
        if not changed:
            rows.append([run.spec, f"(all {len(run.layers)} layers identical)", "inf", "1"])
    return rows


_SHORT = (99.0, 90.0, 50.0, 10.0, 1.0)  # the terminal's columns; Markdown and --json: all


def _kld_rows(
    r: CompareReport, shown: tuple[float, ...] | None = None
) -> tuple[tuple[str, ...], list[list[str]]]:
    pcts = shown or PERCENTILES
    head = ("format", "what", "max", *(f"{p:g}%" for p in pcts), "min")
    rows = []
    for run in r.runs:
        if run.lm is None:
            continue
        for what, d in (("KLD", run.lm.kld), ("Δp", run.lm.delta_p)):
            at = dict(d.percentiles)
            cells = [d.max, *(at[p] for p in pcts), d.min]
            rows.append([run.spec, what, *(_g(v, 3) for v in cells)])
    return head, rows


def compare_view(r: CompareReport) -> RenderableType:
    head, rows = compare_rows(r)
    parts: list[RenderableType] = [Text(_header(r)), _table("outputs against fp32", head, rows)]
    parts.append(_table("memory and time", *memory_rows(r)))
    if r.kind is not ModelKind.ENCODER:
        parts.append(_table("perplexity (± one standard error)", *ppl_rows(r)))
        parts.append(_table("KLD and Δp distributions", *_kld_rows(r, _SHORT)))
    parts.append(
        _table(
            f"worst layers (SQNR of each layer's output against fp32, first sequence; "
            f"{LAYERS_SHOWN} per format)",
            ("format", "layer", "SQNR dB", "cosine"),
            _layer_rows(r),
        )
    )
    parts.append(
        Text(
            "figures to 4 significant digits (--json: in full); loaded: parameters and buffers "
            "held; packed: the weights stored in the format (dtlab model memory); peak RSS: the "
            "process so far; s/forward: wall clock per batch"
        )
    )
    return Group(*parts)


def compare_csv(r: CompareReport) -> str:
    """One row per format and layer: the summary cells, then the layer's SQNR and cosine."""
    head, rows = compare_rows(r)
    mhead, mrows = memory_rows(r)
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow([*head, *mhead[1:], "layer", "layer_sqnr_db", "layer_cosine"])
    for run, row0, mrow in zip(r.runs, rows, mrows[1:], strict=True):
        row = [*row0, *mrow[1:]]
        for layer in run.layers or ():
            w.writerow([*row, layer.name, repr(layer.sqnr_db), repr(layer.cosine)])
        if not run.layers:
            w.writerow([*row, "", "", ""])
    return out.getvalue()


def _md_table(head: tuple[str, ...], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(markdown_cell(h) for h in head) + " |"]
    lines.append("|" + "---|" * len(head))
    lines += ["| " + " | ".join(markdown_cell(c) for c in row) + " |" for row in rows]
    return lines


def compare_markdown(r: CompareReport) -> str:
    lines = [f"# dtlab model compare: {markdown_cell(r.model)}", ""]
    lines += [markdown_cell(line) + "  " for line in _header(r).splitlines()] + [""]
    lines += [*_md_table(*compare_rows(r)), ""]
    lines += [*_md_table(*memory_rows(r)), ""]
    if r.kind is not ModelKind.ENCODER:
        lines += ["## Perplexity", "", *_md_table(*ppl_rows(r)), ""]
        lines += ["## KLD and Δp distributions", "", *_md_table(*_kld_rows(r)), ""]
    lines += ["## Worst layers", ""]
    lines += [*_md_table(("format", "layer", "SQNR dB", "cosine"), _layer_rows(r)), ""]
    return "\n".join(lines)
