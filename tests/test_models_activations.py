"""dtlab model activations: a planted overflow (one module's weight scaled so that its output
passes 65,504) is named first, for fp16 in the fp32 scan and natively with --run-in fp16; the
counts agree with direct torch computations on the same outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from dtlab.cli.app import app
from dtlab.models.activations import scan_activations
from dtlab.models.evaltext import eval_set, load_text
from dtlab.models.loading import load_model, load_tokenizer
from dtlab.models.sources import resolve_model
from tiny_models import save_tiny

runner = CliRunner()
LLAMA_SPOT = "model.layers.0.mlp.down_proj"
T5_SPOT = "encoder.block.0.layer.1.DenseReluDense.wo"


def _scale_llama(m: torch.nn.Module) -> None:
    m.model.layers[0].mlp.down_proj.weight.mul_(1e8)


def _scale_t5(m: torch.nn.Module) -> None:
    m.encoder.block[0].layer[1].DenseReluDense.wo.weight.mul_(1e6)


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("planted")
    return {
        "llama": save_tiny("llama", root / "llama", edit=_scale_llama),
        "t5": save_tiny("t5", root / "t5", edit=_scale_t5),
        "clean": save_tiny("llama", root / "clean"),
    }


@pytest.mark.parametrize(("kind", "spot"), [("llama", LLAMA_SPOT), ("t5", T5_SPOT)])
def test_planted_overflow_is_named_first(planted: dict[str, Path], kind: str, spot: str) -> None:
    r = scan_activations(
        str(planted[kind]), ["fp16", "bf16"], run_in="fp16", sequences=2, seq_len=32
    )
    fp16, bf16 = r.targets
    assert fp16.first_overflow == spot and fp16.least_headroom[0][0] == spot
    assert bf16.first_overflow is None and bf16.overflowing_modules == 0
    assert r.native is not None and r.native.first_nonfinite == spot
    assert r.native.nan + r.native.inf > 0 and r.native.before
    assert spot not in {name for name, _ in r.native.before}
    before = [
        m.name for m in r.modules if m.order < next(x.order for x in r.modules if x.name == spot)
    ]
    assert not any(m.fits[0].overflow for m in r.modules if m.name in before)


def test_counts_match_direct_torch(planted: dict[str, Path]) -> None:
    folder = planted["llama"]
    r = scan_activations(str(folder), ["fp16", "fp8"], sequences=2, seq_len=32)
    rec = next(m for m in r.modules if m.name == LLAMA_SPOT)
    source = resolve_model(str(folder))
    text, where = load_text()
    es = eval_set(
        load_tokenizer(source), source.kind, text=text, source=where, sequences=2, seq_len=32
    )
    loaded = load_model(source)
    seen: list[torch.Tensor] = []
    loaded.module.get_submodule(LLAMA_SPOT).register_forward_hook(
        lambda _m, _i, o: seen.append(o.detach().clone())
    )
    for batch in es.batches:
        loaded.run(batch)
    out = torch.cat([t.reshape(-1) for t in seen])
    assert rec.values == out.numel() and rec.calls == len(es.batches)
    assert rec.absmax == float(out.abs().max())
    # fp16 under round-to-nearest-even: |x| >= 65520 (halfway to 2^16) rounds past 65504
    assert rec.fits[0].overflow == int((out.abs() >= 65520).sum()) > 0
    # fp8 e4m3fn: |x| > 464 (halfway between 448 and 480, ties to the even 448)
    assert rec.fits[1].overflow == int((out.abs() > 464).sum())
    nonzero = out[out != 0]
    assert rec.smallest_binade == int(torch.frexp(nonzero.abs().min())[1]) - 1


def test_clean_model_has_no_overflow_and_native_run_is_finite(planted: dict[str, Path]) -> None:
    r = scan_activations(str(planted["clean"]), ["fp16"], run_in="bf16", sequences=1, seq_len=16)
    assert r.targets[0].first_overflow is None
    assert (
        r.native is not None and r.native.first_nonfinite is None and r.native.dtype == "bfloat16"
    )


def test_cli_activations(planted: dict[str, Path], tmp_path: Path) -> None:
    args = [
        "model",
        "activations",
        str(planted["llama"]),
        "--to",
        "fp16,fp8",
        "--sequences",
        "1",
        "--seq-len",
        "16",
    ]
    res = runner.invoke(app, [*args, "--run-in", "fp16"])
    assert res.exit_code == 0, res.stderr
    assert "first inf/NaN in" in res.stdout and "first to overflow" in res.stdout
    csv_path = tmp_path / "a.csv"
    res = runner.invoke(app, [*args, "--json", "--csv", str(csv_path)])

    def refuse(constant: str) -> None:
        raise AssertionError(constant)

    doc = json.loads(res.stdout, parse_constant=refuse)
    assert doc["schema"] == "dtlab.model-activations/1"
    assert doc["result"]["targets"][0]["first_overflow"] == LLAMA_SPOT
    assert csv_path.read_text().splitlines()[0].startswith("#,module,type")
    bad = runner.invoke(app, [*args, "--run-in", "fp8"])
    assert bad.exit_code == 2 and "float16 or bfloat16" in bad.stderr


def test_fail_on_and_plot(planted: dict[str, Path], tmp_path: Path) -> None:
    base = ["model", "activations", str(planted["llama"]), "--sequences", "1", "--seq-len", "16"]
    png = tmp_path / "h.png"
    res = runner.invoke(app, [*base, "--fail-on", "overflow", "--plot", str(png)])
    assert res.exit_code == 1 and LLAMA_SPOT in res.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    clean = ["model", "activations", str(planted["clean"]), "--sequences", "1", "--seq-len", "16"]
    assert runner.invoke(app, [*clean, "--fail-on", "overflow,nan"]).exit_code == 0
    assert runner.invoke(app, [*clean, "--fail-on", "headroom<200"]).exit_code == 1
    bad = runner.invoke(app, [*clean, "--fail-on", "headroom<x"])
    assert bad.exit_code == 2 and "--fail-on" in bad.stderr
