"""The report page: any dtlab result (its JSON document) as one self-contained HTML file.

The summary, plots and parameters are written into the page as HTML and SVG (they print and
read without JavaScript); the table of every row is drawn by assets/report.js from the rows
embedded as JSON, so that sorting and filtering thousands of rows stays quick.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from string import Template
from typing import Any

from dtlab import __version__
from dtlab.html.kinds import REPORT_KINDS, build_report
from dtlab.html.model import Report, ReportError
from dtlab.html.page import asset, document, json_script
from dtlab.render.jsonable import to_data
from dtlab.render.text import printable

MAX_RESULT_BYTES = 256 << 20  # a scan of 5,000 tensors is about 15 MB of JSON

__all__ = ["REPORT_KINDS", "read_result", "render_report", "report_file", "report_page"]


def read_result(path: Path) -> tuple[str, Any]:
    """The schema and result of a dtlab JSON document (what ``--json`` prints), or a
    ReportError naming what is wrong with the file."""
    if not path.exists():
        raise ReportError(f"{path}: no such file")
    if not path.is_file():
        raise ReportError(f"{path}: not a regular file")
    size = path.stat().st_size
    if size > MAX_RESULT_BYTES:
        raise ReportError(
            f"{path}: {size:,} bytes is more than a dtlab result ({MAX_RESULT_BYTES:,} at most)"
        )
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise ReportError(f"{path}: not UTF-8 text, so not a dtlab JSON result") from None
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise ReportError(f"{path}: JSON nested too deeply") from None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("schema"), str)
        or "result" not in data
    ):
        raise ReportError(
            f'{path}: not a dtlab result (expected {{"schema": ..., "result": ...}}, '
            "as dtlab prints with --json)"
        )
    return data["schema"], data["result"]


def report_page(schema: str, payload: Any, *, source: str | None = None) -> str:
    """The report of a result: a result dataclass (as a command returns it) or its JSON data."""
    try:
        data = to_data(payload)
    except RecursionError:
        raise ReportError("the result is nested too deeply to be a dtlab result") from None
    return render_report(build_report(schema, data), source)


def report_file(path: Path) -> tuple[str, str]:
    """The schema and the report page of a result file written by ``dtlab ... --json > FILE``."""
    schema, result = read_result(path)
    return schema, report_page(schema, result, source=str(path))


def _cards(report: Report) -> str:
    out = []
    for c in report.cards:
        lines = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in c.lines)
        items = "".join(f"<li>{escape(printable(i))}</li>" for i in c.items)
        worst = f'<p class="worst">worst:</p><ol>{items}</ol>' if items else ""
        tone = escape(c.tone)
        out.append(
            f'<div class="card tone-{tone}"><h3>{escape(printable(c.title))}</h3>'
            f'<span class="badge {tone}">{tone}</span><dl>{lines}</dl>{worst}</div>'
        )
    return "".join(out)


def _plots(report: Report) -> str:
    return "".join(
        f"<figure><figcaption>{escape(p.caption)}</figcaption>{p.svg}</figure>"
        for p in report.plots
    )


def _params(report: Report, source: str | None) -> str:
    rows = [*report.params, ("result schema", report.schema), ("report by", f"dtlab {__version__}")]
    if source:
        rows.append(("result file", source))
    return "".join(f"<tr><th>{escape(k)}</th><td>{escape(printable(v))}</td></tr>" for k, v in rows)


def render_report(report: Report, source: str | None = None) -> str:
    """The page of a Report."""
    table = {
        "columns": [
            {"key": c.key, "label": c.label, "kind": c.kind, "facet": c.facet}
            for c in report.columns
        ],
        "rows": [list(r) for r in report.rows],
    }
    body = Template(asset("report_body.html")).substitute(
        title=escape(report.title),
        headline=escape(printable(report.headline)),
        cards=_cards(report),
        notes="".join(f"<p class='note'>{escape(n)}</p>" for n in report.notes),
        plots=_plots(report),
        params=_params(report, source),
        data=json_script("report-data", table),
    )
    return document(f"{report.title} report", ["common.css", "report.css"], body, ["report.js"])
