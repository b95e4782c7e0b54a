"""The explorer page without a browser: what dtlab explore writes, how big, what it names."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dtlab.cli.app import app
from dtlab.formats import CATALOG, get_format
from dtlab.html import explorer_page
from dtlab.html.explorer import engine_data

runner = CliRunner()


def test_the_explorer_is_under_300_kb_and_names_no_url() -> None:
    page = explorer_page()
    size = len(page.encode("utf-8"))
    assert size < 300_000, size
    assert re.findall(r"[a-z][a-z0-9+.-]*://", page, flags=re.I) == []
    assert not re.search(r"\s(src|href)\s*=", page)  # nothing loaded from anywhere
    assert "Content-Security-Policy" in page and "connect-src 'none'" in page


def test_the_page_carries_every_catalogue_format_and_every_name() -> None:
    data = engine_data()
    assert [f["name"] for f in data["catalog"]] == list(CATALOG)
    assert data["lookup"]["bf16"] == "bfloat16" and data["lookup"]["f8_e4m3"] == "float8_e4m3fn"
    fp8 = next(f for f in data["catalog"] if f["name"] == "float8_e4m3fn")
    assert fp8 == {"kind": "float", "name": "float8_e4m3fn", "exp_bits": 4, "man_bits": 3,
                   "bias": 7, "signed": True, "has_inf": False, "nan": "all-ones",
                   "subnormals": True, "container_bits": 8}  # fmt: skip


def test_dtlab_explore_writes_the_page_with_the_formats_asked(tmp_path: Path) -> None:
    out = tmp_path / "fp8.html"
    result = runner.invoke(app, ["explore", "-o", str(out), "--formats", "e5m3,e4m3:bias=5,int7"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == f"wrote {out}"
    page = out.read_text(encoding="utf-8")
    data = json.loads(re.search(r'id="dtlab-data">(.*?)</script>', page).group(1))  # type: ignore[union-attr]
    names = [get_format(s).name for s in ("e5m3", "e4m3:bias=5", "int7")]
    assert data["formats"] == names == ["float9_e5m3", "float8_e4m3b5fn", "int7"]
    assert data["start"]["format"] == "float9_e5m3"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--formats", "e9m9x"], "unknown format 'e9m9x'"),
        (["--formats", ","], "--formats names nothing"),
        (["-o", "page.txt"], "the explorer is written as .html"),
    ],
)
def test_dtlab_explore_refuses_bad_options(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(
        app,
        ["explore", *args] if "-o" in args else ["explore", "-o", str(tmp_path / "x.html"), *args],
    )
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_dtlab_explore_and_report_say_what_they_wrote_in_json(tmp_path: Path) -> None:
    out = tmp_path / "e.html"
    result = runner.invoke(app, ["explore", "-o", str(out), "--json"])
    doc = json.loads(result.stdout)
    size = out.stat().st_size
    assert doc == {
        "schema": "dtlab.page/1",
        "result": {"output": str(out), "kind": "explorer", "bytes": size},
    }
    cast = tmp_path / "cast.json"
    cast.write_text(runner.invoke(app, ["cast", "normal:100", "--as", "fp8", "--json"]).stdout)
    result = runner.invoke(app, ["report", str(cast), "-o", str(tmp_path / "r.html"), "--json"])
    assert json.loads(result.stdout)["result"]["kind"] == "dtlab.cast/1"
