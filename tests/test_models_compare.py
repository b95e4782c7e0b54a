"""dtlab model compare: the statistics against direct torch computations on tiny random
models (Llama, GPT-2, BERT, T5 built here, nothing downloaded), a model against itself giving
exactly zero, fake quantization through dtlab's own quantizers, and bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from dtlab.analysis.intquant import int_quantize
from dtlab.checkpoint import open_checkpoint
from dtlab.checkpoint.memory import memory_table
from dtlab.cli.app import app
from dtlab.formats.quantizer_spec import parse_quantizer
from dtlab.models import ModelKind, compare_model, resolve_model
from dtlab.models.evaltext import eval_set, load_text
from dtlab.models.fakequant import fake_quantize_model
from dtlab.models.loading import load_model, load_tokenizer
from tiny_models import save_tiny

runner = CliRunner()
SEQ = dict(sequences=4, seq_len=32, batch_size=4)  # one batch: the direct runs see the same shapes


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    return {k: save_tiny(k, root / k) for k in ("llama", "gpt2", "bert", "t5")}


def _direct_logits(folder: Path, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """fp32 logits of the scored positions and their targets, computed here with plain torch."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    text, _ = load_text()
    ids = torch.tensor(tok(text, add_special_tokens=False)["input_ids"][: 4 * 32]).reshape(4, 32)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval().to(dtype)
    with torch.inference_mode():
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=False).logits
    return logits[:, :-1].reshape(-1, logits.shape[-1]).float(), ids[:, 1:].reshape(-1)


def test_causal_lm_statistics_match_direct_torch(tiny: dict[str, Path]) -> None:
    folder = tiny["llama"]
    r = compare_model(str(folder), ["bf16"], **SEQ)
    s = r.runs[0].lm
    assert s is not None and r.kind is ModelKind.CAUSAL_LM
    ref, y = _direct_logits(folder, torch.float32)
    got, _ = _direct_logits(folder, torch.bfloat16)
    lb, lq = F.log_softmax(ref.double(), -1), F.log_softmax(got.double(), -1)
    kld = F.kl_div(lq, lb, log_target=True, reduction="none").sum(-1)
    assert s.tokens == y.numel() == 4 * 31
    assert s.kld.mean == float(kld.mean())  # the same float64 sums, in the same order
    assert s.kld.max == float(kld.max())
    assert s.same_top1 == float((ref.argmax(-1) == got.argmax(-1)).double().mean())
    nll = F.cross_entropy(got.double(), y, reduction="none")
    nll_base = F.cross_entropy(ref.double(), y, reduction="none")
    assert s.ppl == math.exp(float(nll.mean()))
    assert s.ppl_base == math.exp(float(nll_base.mean()))
    dp = lq.gather(1, y[:, None])[:, 0].exp() - lb.gather(1, y[:, None])[:, 0].exp()
    assert s.delta_p.mean == float(dp.mean())
    assert s.rms_delta_p == pytest.approx(float(dp.pow(2).mean().sqrt()), rel=1e-15, abs=0)
    assert r.runs[0].max_abs_diff == float((got - ref).abs().max())


def test_model_against_itself_is_exactly_zero(tiny: dict[str, Path]) -> None:
    r = compare_model(str(tiny["gpt2"]), ["fp32"], **SEQ)
    run = r.runs[0]
    s = run.lm
    assert s is not None
    assert (s.kld.max, s.kld.min, s.kld.mean) == (0.0, 0.0, 0.0)
    assert (s.delta_p.max, s.delta_p.min, s.rms_delta_p) == (0.0, 0.0, 0.0)
    assert (s.same_top1, s.ppl_ratio, s.ln_ppl_ratio, s.ppl_diff) == (1.0, 1.0, 0.0, 0.0)
    assert (run.max_abs_diff, run.mean_abs_diff) == (0.0, 0.0)
    assert run.layers and all(layer.sqnr_db == math.inf for layer in run.layers)


def test_encoder_cosines_and_retrieval(tiny: dict[str, Path]) -> None:
    folder = tiny["bert"]
    r = compare_model(str(folder), ["fp32", "bf16"], sequences=12, seq_len=64)
    same, bf = (run.encoder for run in r.runs)
    assert same is not None and bf is not None and r.kind is ModelKind.ENCODER
    assert (same.cosine_min, same.top_k_agreement, same.top1_agreement) == (1.0, 1.0, 1.0)
    source = resolve_model(str(folder))
    text, where = load_text()
    es = eval_set(
        load_tokenizer(source),
        source.kind,
        text=text,
        source=where,
        sequences=12,
        seq_len=64,
        batch_size=16,
    )
    from transformers import AutoModel

    model = AutoModel.from_pretrained(folder, dtype=torch.float32).eval()
    embs = []
    for dtype in (torch.float32, torch.bfloat16):
        model.to(dtype)
        with torch.inference_mode():
            inputs = es.batches[0].inputs
            h = model(**inputs).last_hidden_state
            m = inputs["attention_mask"].unsqueeze(-1).to(h.dtype)
            embs.append(((h * m).sum(1) / m.sum(1)).double())
    cos = F.cosine_similarity(embs[0], embs[1], dim=-1)
    assert bf.passages == 12
    # a different formula for the same cosines: equal to float64 rounding
    assert bf.cosine_mean == pytest.approx(float(cos.mean()), rel=1e-12, abs=0)
    assert bf.cosine_min == pytest.approx(float(cos.min()), rel=1e-12, abs=0)


def test_seq2seq_runs_and_self_is_zero(tiny: dict[str, Path]) -> None:
    r = compare_model(str(tiny["t5"]), ["fp32", "int8"], **SEQ)
    assert r.kind is ModelKind.SEQ2SEQ_LM and r.scored_tokens == 4 * 16
    same, q = (run.lm for run in r.runs)
    assert same is not None and q is not None
    assert same.kld.max == 0.0 and q.kld.mean > 0.0


def test_fake_quantized_weights_are_dtlabs_quantizers(tiny: dict[str, Path]) -> None:
    """GPT-2's Conv1D stores weights as (in, out): channels still mean output features."""
    source = resolve_model(str(tiny["gpt2"]))
    loaded = load_model(source)
    w = loaded.module.transformer.h[0].attn.c_attn.weight.detach().clone()
    lin = loaded.module.lm_head.weight.detach().clone()
    fq = fake_quantize_model(loaded.module, parse_quantizer("int8:channel"))
    want = int_quantize(w.t(), parse_quantizer("int8:channel")).dequantize().t()
    assert torch.equal(loaded.module.transformer.h[0].attn.c_attn.weight, want)
    assert "transformer.wte" in dict(fq.kept) and "lm_head" not in fq.quantized  # tied to wte
    assert torch.equal(loaded.module.lm_head.weight, lin)


def test_memory_per_format(tiny: dict[str, Path]) -> None:
    folder = tiny["llama"]
    r = compare_model(str(folder), ["bf16", "int4:g16"], **SEQ)
    bf, i4 = r.runs
    assert bf.memory.loaded_bytes * 2 == r.reference.loaded_bytes
    table = memory_table(open_checkpoint(str(folder)), ["bf16", "int4:g16"])
    assert (bf.memory.packed_bytes, i4.memory.packed_bytes) == tuple(t.nbytes for t in table.totals)
    assert i4.method == "weights" and i4.quantized_layers == 14 and i4.kept_layers == 2


def test_activation_emulation_changes_outputs(tiny: dict[str, Path]) -> None:
    r = compare_model(str(tiny["llama"]), ["fp32", "int8"], activations="fp8", **SEQ)
    assert r.runs[1].method == "weights+activations" and r.runs[0].method == "cast"
    assert r.runs[1].lm is not None and r.runs[1].lm.kld.mean > 0


def test_embedded_minilm_bf16() -> None:
    r = compare_model(None, ["fp32", "bf16"], sequences=16, seq_len=64)
    same, bf = (run.encoder for run in r.runs)
    assert same is not None and bf is not None
    assert same.cosine_min == 1.0 and 0.999 < bf.cosine_min < 1.0


def _one_line_error(args: list[str]) -> str:
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    return lines[0]


def test_bad_input_is_one_line(tiny: dict[str, Path], tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no config.json" in _one_line_error(["model", "compare", str(empty)])
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "config.json").write_text(json.dumps({"model_type": "nonesuch"}))
    (odd / "model.safetensors").write_bytes(b"")
    assert "unknown architecture" in _one_line_error(["model", "compare", str(odd)])
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "config.json").write_text(
        json.dumps({"model_type": "x", "auto_map": {"AutoModel": "m.M"}})
    )
    (remote / "model.safetensors").write_bytes(b"")
    assert "--trust-remote-code" in _one_line_error(["model", "compare", str(remote)])
    short = tmp_path / "short.txt"
    short.write_text("too short")
    line = _one_line_error(["model", "compare", str(tiny["llama"]), "--text", str(short)])
    assert "too short" in line
    assert "fp7" in _one_line_error(["model", "compare", str(tiny["llama"]), "--as", "fp7"])


def test_cli_json_csv_markdown(tiny: dict[str, Path], tmp_path: Path) -> None:
    csv_path, md_path = tmp_path / "c.csv", tmp_path / "c.md"
    args = [
        "model",
        "compare",
        str(tiny["llama"]),
        "--as",
        "fp32,int8",
        "--sequences",
        "2",
        "--seq-len",
        "16",
    ]
    res = runner.invoke(app, [*args, "--json", "--csv", str(csv_path), "--markdown", str(md_path)])
    assert res.exit_code == 0, res.stderr

    def refuse(constant: str) -> None:
        raise AssertionError(constant)

    doc = json.loads(res.stdout, parse_constant=refuse)
    assert doc["schema"] == "dtlab.model-compare/1"
    runs = doc["result"]["runs"]
    assert [r["spec"] for r in runs] == ["fp32", "int8"]
    assert runs[0]["lm"]["kld"]["max"] == 0.0 and runs[0]["layers"][0]["sqnr_db"] == "inf"
    assert csv_path.read_text().startswith("format,KLD mean")
    assert "| int8 | weights | 14/2 |" in md_path.read_text()
    text = runner.invoke(app, args)
    assert text.exit_code == 0 and "same top-1" in text.stdout and "worst layers" in text.stdout


def test_compare_fail_on_and_plot(tiny: dict[str, Path], tmp_path: Path) -> None:
    base = ["model", "compare", str(tiny["llama"]), "--sequences", "1", "--seq-len", "16"]
    png = tmp_path / "c.png"
    res = runner.invoke(app, [*base, "--as", "fp32,nf4", "--fail-on", "kld>0", "--plot", str(png)])
    assert res.exit_code == 1 and "nf4: mean KLD" in res.stderr and "fp32" not in res.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert runner.invoke(app, [*base, "--as", "fp32", "--fail-on", "kld>0,top1<100"]).exit_code == 0
    bad = runner.invoke(app, [*base, "--as", "fp32", "--fail-on", "overflow"])
    assert bad.exit_code == 2 and "kld>N" in bad.stderr
