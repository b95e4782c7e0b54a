"""dtlab quantize: the spec grammar, the glue to integer and block quantizers, the command."""

import json
from fractions import Fraction
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from dtlab.analysis.blockquant import block_metrics
from dtlab.analysis.comparison import quantize_analysis
from dtlab.analysis.intquant import int_metrics, int_quantize
from dtlab.cli.app import app
from dtlab.errors import DtlabError
from dtlab.formats.quantizer_spec import int_quantizer

runner = CliRunner()
W = torch.randn(32, 300, generator=torch.Generator().manual_seed(2)) * 0.05


def test_specs_map_to_the_quantizers() -> None:
    a = quantize_analysis(
        W, ["int8", "int8:channel", "int4:g128:mse", "uint8", "int8:p99", "mxfp4:rceil", "nf4"]
    )
    rows = {r.spec: r for r in a.rows}
    direct = int_metrics(
        W, int_quantize(W, int_quantizer("int4", axis=1, group_size=128, method="mse"))
    )
    assert rows["int4:g128:mse"].metrics == direct.metrics
    assert rows["int4:g128:mse"].effective_bits == 4 + Fraction(32 * 3, 300)  # 3 groups per row
    assert rows["int8:channel"].detail.startswith("per channel along axis 0")
    assert rows["int8:channel"].effective_bits == 8 + Fraction(32, 300)
    assert rows["uint8"].detail.split(", ")[1] == "asymmetric"
    assert "percentile 99" in rows["int8:p99"].detail
    assert rows["mxfp4:rceil"].metrics == block_metrics(W, "mxfp4:rceil").metrics
    assert rows["nf4"].effective_bits == Fraction(9, 2)
    ranked = [r.metrics.sqnr_db for r in a.ranked()]
    assert ranked == sorted(ranked, reverse=True)


@pytest.mark.parametrize(
    ("spec", "message"),
    [("int8:g0", "group size"), ("int8:wat", "unknown option"), ("fp8", "dtlab cast"),
     ("mxfp4:sideways", "scale rule"), ("mxfp9", "unknown format")],
)  # fmt: skip
def test_bad_specs(spec: str, message: str) -> None:
    with pytest.raises(DtlabError, match=message):
        quantize_analysis(W, [spec])


def test_quantize_command(tmp_path: Path) -> None:
    r = runner.invoke(
        app, ["quantize", "normal:6000", "--shape", "20x300", "--as", "int8,int4:g64,mxfp4"]
    )
    assert r.exit_code == 0, r.stderr
    assert "int4:g64" in r.stdout and "bits/value" in r.stdout
    r = runner.invoke(app, ["quantize", "normal:6000", "--shape", "20x300", "--as", "nf4", "--json",
                            "--plot", str(tmp_path / "q.png")])  # fmt: skip
    doc = json.loads(r.stdout)
    assert (
        doc["schema"] == "dtlab.quantize/1" and doc["result"]["rows"][0]["effective_bits"] == "4.5"
    )
    assert (tmp_path / "q.png").read_bytes()[:4] == b"\x89PNG"
    r = runner.invoke(app, ["quantize", "normal:10", "--shape", "3x3"])
    assert r.exit_code == 2 and "do not make shape 3x3" in r.stderr
