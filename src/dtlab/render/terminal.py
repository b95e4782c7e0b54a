"""Result dataclasses -> rich renderables for a terminal."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from dtlab.formats.report import FormatReport
from dtlab.numtext import APPROX, exact_or_approx, short, short_value
from dtlab.scalar import Anatomy, CodeAnatomy, IntOpResult
from dtlab.values import approx_decimal, exact_decimal

STYLE = {"sign": "bold red", "exponent": "bold green", "mantissa": "bold blue", "bits": "bold"}


def yes_no(flag: bool | None) -> str:
    return "—" if flag is None else ("yes" if flag else "no")


# ---- formats and info -------------------------------------------------------------------


def formats_table(reports: Sequence[FormatReport]) -> Table:
    title = "dtlab format catalogue (≈ marks a rounded figure; dtlab info shows it exactly)"
    table = Table(title=title, title_justify="left")
    table.add_column("format", no_wrap=True)
    for col in ("bits", "s/e/m", "max", "eps", "smallest >0", "finite values"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("inf / NaN codes", justify="center", no_wrap=True)
    table.add_column("torch dtype", no_wrap=True)
    for r in reports:
        sem = f"{r.sign_bits}/{r.exponent_bits}/{r.mantissa_bits}" if r.kind == "float" else "int"
        table.add_row(
            r.name,
            str(r.bits),
            sem,
            short(r.max, 8, 4),
            short(r.eps, 7, 4),
            short(r.smallest_subnormal if r.kind == "float" else 1, 7, 4),
            f"{r.finite_values:,}" if r.finite_values < 10**7 else short(r.finite_values, 6, 4),
            _nan_cell(r),
            (r.torch_dtype or "—").removeprefix("torch."),
        )
    return table


def _nan_cell(r: FormatReport) -> str:
    if r.kind == "int":
        return "—"
    inf = str(r.inf_codes) if r.has_inf else "no"
    nan = "no" if not r.nan_codes else short(r.nan_codes or 0, 6, 3)
    return f"{inf} / {nan}"


_INFO_ROWS: tuple[tuple[str, str], ...] = (
    ("kind", "kind"),
    ("aliases", "aliases"),
    ("bits", "bits"),
    ("sign / exponent / mantissa bits", "_sem"),
    ("bias", "bias"),
    ("stored in (unpacked)", "_container"),
    ("packed", "packing"),
    ("bytes per value, packed", "packed_bytes_per_value"),
    ("max", "max"),
    ("min", "min"),
    ("smallest normal (tiny)", "smallest_normal"),
    ("smallest subnormal", "smallest_subnormal"),
    ("eps (spacing above 1)", "eps"),
    ("epsneg (spacing below 1)", "epsneg"),
    ("resolution", "resolution"),
    ("precision (decimal digits)", "precision"),
    ("machep / negep", "_machep"),
    ("minexp / maxexp", "_minexp"),
    ("finite codes", "finite_codes"),
    ("finite values", "finite_values"),
    ("NaN codes", "nan_codes"),
    ("inf codes", "inf_codes"),
    ("NaN encoding", "nan_encoding"),
    ("has inf", "has_inf"),
    ("has -0", "has_negative_zero"),
    ("has subnormals", "has_subnormals"),
    ("has zero", "has_zero"),
    ("dynamic range", "dynamic_range_binades"),
    ("torch dtype", "torch_dtype"),
    ("numpy / ml_dtypes", "numpy_dtype"),
    ("safetensors", "safetensors_dtype"),
)


def info_table(reports: Sequence[FormatReport]) -> Table:
    table = Table(title_justify="left", show_lines=False)
    table.add_column("property", style="dim", no_wrap=True)
    for r in reports:
        table.add_column(r.name, justify="right", overflow="fold")
    for label, key in _INFO_ROWS:
        cells = [_info_cell(r, key) for r in reports]
        if all(c == "—" for c in cells):
            continue
        table.add_row(label, *cells)
    return table


def _info_cell(r: FormatReport, key: str) -> str:
    if key == "_sem":
        return "—" if r.kind == "int" else f"{r.sign_bits} / {r.exponent_bits} / {r.mantissa_bits}"
    if key == "_container":
        return f"{r.container_bits} bits"
    if key == "_machep":
        return "—" if r.machep is None else f"{r.machep} / {r.negep}"
    if key == "_minexp":
        return "—" if r.minexp is None else f"{r.minexp} / {r.maxexp}"
    value = getattr(r, key)
    if key == "dynamic_range_binades":
        return "—" if value is None else f"{APPROX}{value:.2f} binades"
    if isinstance(value, bool):
        return yes_no(value)
    if isinstance(value, tuple):
        return ", ".join(value) or "—"
    if isinstance(value, Fraction):
        return _exact_with_hint(value)
    if isinstance(value, int):
        return f"{value:,}"
    return "—" if value is None else str(value)


def _exact_with_hint(x: Fraction) -> str:
    """Exact when short, 2^e for powers of two, else ≈ with 7 digits (JSON keeps it exact)."""
    exact = exact_decimal(x)
    if exact is not None and len(exact) <= 16:
        return exact
    return short(x, width=0)


# ---- one value ----------------------------------------------------------------------------


def bit_fields(code: CodeAnatomy) -> Text:
    text = Text()
    for i, field in enumerate(code.fields):
        if i:
            text.append(" ")
        text.append(field.bits, style=STYLE.get(field.role, ""))
    return text


def _kv(rows: Iterable[tuple[str, RenderableType | str]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="dim", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in rows:
        table.add_row(key, value)
    return table


def code_block(code: CodeAnatomy, title: str | None = None) -> RenderableType:
    legend = " / ".join(f.role for f in code.fields)
    rows: list[tuple[str, RenderableType | str]] = [
        ("bits", Text.assemble(bit_fields(code), f"   {code.hex}   ({legend})")),
        ("category", code.category),
        ("formula", code.formula),
        ("exact value", _value_text(code)),
        ("previous", short_value(code.previous, 64, 20)),
        ("next", short_value(code.next, 64, 20)),
        ("ulp here", short(code.ulp, 24)),
    ]
    head = Text(title or f"{code.format.name}", style="bold")
    return Group(head, _kv(rows))


def _value_text(code: CodeAnatomy) -> str:
    v = code.value
    if not v.is_finite:
        return str(v)
    return ("-" if v.negative else "") + exact_or_approx(v.magnitude)


def anatomy_block(a: Anatomy) -> RenderableType:
    stored = a.stored
    rows: list[tuple[str, RenderableType | str]] = [
        ("input", _input_text(a)),
        ("stored bits", Text.assemble(bit_fields(stored), f"   {stored.hex}")),
        ("category", f"{stored.category}  ({a.outcome.value})"),
        ("formula", stored.formula),
        ("stored value", _value_text(stored)),
        ("abs error", "—" if a.abs_error is None else exact_or_approx(a.abs_error)),
        ("rel error", "—" if a.rel_error is None else _rel(a.rel_error)),
        ("previous", short_value(stored.previous, 64, 20)),
        ("next", short_value(stored.next, 64, 20)),
        ("ulp here", short(stored.ulp, 24)),
    ]
    fields = " / ".join(f.role for f in stored.fields)
    title = Text.assemble(
        (a.stored.format.name, "bold"),
        f"   ({fields}; {a.rounding.value}, overflow {a.overflow.value})",
    )
    return Group(title, _kv(rows))


def _input_text(a: Anatomy) -> str:
    v = a.input
    if not v.is_finite or v.is_zero:
        return str(v)
    exact = exact_decimal(v.magnitude)
    sign = "-" if v.negative else ""
    if exact is not None:
        return sign + exact
    return f"{a.text}  {APPROX} {sign}{approx_decimal(v.magnitude, 20)}  (no finite decimal form)"


def _rel(x: Fraction) -> str:
    return f"{short(x)}  ({APPROX}{float(x) * 100:.3g} %)" if x else "0"


# ---- integer arithmetic ---------------------------------------------------------------------


def int_op_block(r: IntOpResult) -> RenderableType:
    fmt = r.a.format
    width = fmt.bits

    def line(label: str, code: CodeAnatomy, note: str = "") -> tuple[str, Text]:
        value = str(code.value)
        return label, Text.assemble(bit_fields(code), f"  {value:>{len(str(fmt.min)) + 1}}{note}")

    head = Text.assemble((f"{fmt.name}", "bold"), f": {r.a.value} {r.op.symbol} {r.b.value}")
    rows = [
        line("a", r.a),
        line("b", r.b),
        ("exact", Text(f"{'':{width}}  {r.exact}" + ("   (out of range)" if r.overflowed else ""))),
        line("wrapped", r.wrapped, "   (low bits kept: what torch integer tensors give)"),
        line("saturated", r.saturated, "   (clamped to [min, max])"),
    ]
    return Group(head, _kv(rows))
