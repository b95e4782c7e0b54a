"""Plots are real PNG files drawn from the analysis they claim to show."""

from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from dtlab.analysis.format_fit import analyze
from dtlab.cli.app import app
from dtlab.errors import OptionError
from dtlab.formats import get_format
from dtlab.outputs import check_plot_path
from dtlab.render import plots

runner = CliRunner()


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_cast_plot_is_a_png_with_three_panels(tmp_path: Path) -> None:
    out = tmp_path / "cast.png"
    r = runner.invoke(app, ["cast", "normal:2e4", "--as", "fp8,fp4", "--plot", str(out)])
    assert r.exit_code == 0, r.stderr
    assert _png_size(out) == (1000, 1100)


def test_the_plot_draws_what_the_analysis_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: dict[str, object] = {}
    real = plots._sqnr

    def spy(ax, a):  # type: ignore[no-untyped-def]
        real(ax, a)
        drawn["heights"] = [round(p.get_height(), 9) for p in ax.patches]

    monkeypatch.setattr(plots, "_sqnr", spy)
    x = torch.randn(5000, generator=torch.Generator().manual_seed(0))
    a = analyze(x, [get_format("fp4"), get_format("bf16")])
    plots.analysis_plot(a, x, tmp_path / "a.png", "test")
    assert drawn["heights"] == [round(r.metrics.sqnr_db, 9) for r in a.ranked()]
    grid = plots._grid(get_format("fp4"), 10.0)
    magnitudes = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]  # OCP MX FP4 (E2M1), all 16 codes
    assert grid is not None and sorted(grid) == sorted(magnitudes + [-m for m in magnitudes])
    assert plots._grid(get_format("fp16"), 10.0) is None  # too many values to draw


def test_dot_plot_and_bad_paths(tmp_path: Path) -> None:
    out = tmp_path / "dot.png"
    r = runner.invoke(
        app, ["dot", "uniform:300", "--as", "bf16", "-a", "float32,format", "--plot", str(out)]
    )
    assert r.exit_code == 0 and _png_size(out)[0] == 1000
    r = runner.invoke(app, ["dot", "--plot", str(tmp_path / "x.jpg")])
    assert r.exit_code == 2 and "png" in r.stderr
    with pytest.raises(OptionError, match="no such folder"):
        check_plot_path(tmp_path / "missing" / "x.png")
