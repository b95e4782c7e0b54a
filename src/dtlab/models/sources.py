"""Which model a command means, checked before anything heavy loads.

A MODEL is ``minilm`` (the embedded all-MiniLM-L6-v2, also what no MODEL means), ``smollm2``
(SmolLM2-135M-Instruct, converted once from its GGUF: ``dtlab.models.cache``), or a local
Hugging Face folder holding ``config.json`` and safetensors weights. A folder whose config
asks for code of its own (``auto_map``) loads only with ``trust_remote_code``.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from pathlib import Path

from dtlab.errors import DtlabError, OptionAdvice

__all__ = ["EMBEDDED_NAMES", "ModelKind", "ModelSource", "resolve_model"]


class ModelKind(enum.Enum):
    """What a model outputs, and so how its runs are compared."""

    CAUSAL_LM = "causal-lm"  # next-token log-probabilities
    SEQ2SEQ_LM = "seq2seq-lm"  # decoder log-probabilities given an encoded input
    ENCODER = "encoder"  # one embedding per text


@dataclass(frozen=True)
class ModelSource:
    name: str  # as the user knows it
    folder: Path
    kind: ModelKind
    model_type: str
    architecture: str
    sentence_transformers: bool  # a sentence-transformers folder (modules.json)
    trust_remote_code: bool
    note: str  # what the weights are, where it matters ("" when nothing to say)


EMBEDDED_NAMES = ("minilm", "smollm2")
_SMOL_NOTE = (
    "SmolLM2-135M-Instruct from its Q4_1 GGUF: fp32 here means the dequantized Q4_1 weights"
)


def resolve_model(model: str | None, *, trust_remote_code: bool = False) -> ModelSource:
    """The model named by ``model`` (None: the embedded MiniLM), its kind read from its config."""
    key = (model or "minilm").strip()
    if key.lower() == "minilm" and not Path(key).exists():
        from dtlab.checkpoint import embedded_model

        folder = embedded_model().parent
        return _inspect("all-MiniLM-L6-v2 (embedded)", folder, trust_remote_code, "")
    if key.lower() == "smollm2" and not Path(key).exists():
        from dtlab.models.cache import smollm2_folder

        return _inspect("SmolLM2-135M-Instruct", smollm2_folder(), trust_remote_code, _SMOL_NOTE)
    return _inspect(key, Path(key), trust_remote_code, "")


def _inspect(name: str, folder: Path, trust: bool, note: str) -> ModelSource:
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise DtlabError(f"{folder} {what}: a MODEL is minilm, smollm2 or a model folder")
    config = _config(folder)
    if not any(folder.glob("*.safetensors")):
        raise DtlabError(f"{folder} holds no .safetensors weights")
    model_type = str(config.get("model_type", ""))
    archs = config.get("architectures") or []
    arch = str(archs[0]) if isinstance(archs, list) and archs else ""
    if config.get("auto_map") and not trust:
        raise OptionAdvice(
            f"{folder}: its config asks for the model's own code (auto_map); pass ",
            "trust_remote_code",
            " to run it",
        )
    _check_known(folder, model_type, trust and bool(config.get("auto_map")))
    return ModelSource(
        name=name,
        folder=folder,
        kind=_kind(arch, config),
        model_type=model_type,
        architecture=arch or model_type,
        sentence_transformers=(folder / "modules.json").is_file(),
        trust_remote_code=trust,
        note=note,
    )


def _config(folder: Path) -> dict[str, object]:
    path = folder / "config.json"
    if not path.is_file():
        raise DtlabError(f"{folder} has no config.json: not a Hugging Face model folder")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DtlabError(f"{path} cannot be read as JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DtlabError(f"{path} is not a JSON object")
    return data


def _check_known(folder: Path, model_type: str, remote: bool) -> None:
    from transformers import CONFIG_MAPPING

    if remote or model_type in CONFIG_MAPPING:
        return
    shown = repr(model_type) if model_type else "none"
    raise DtlabError(
        f"{folder}: unknown architecture (model_type {shown}); transformers has no such model"
    )


def _kind(arch: str, config: dict[str, object]) -> ModelKind:
    if arch.endswith("ForCausalLM") or arch.endswith("LMHeadModel"):
        return ModelKind.CAUSAL_LM
    if config.get("is_encoder_decoder") or arch.endswith("ForConditionalGeneration"):
        return ModelKind.SEQ2SEQ_LM
    return ModelKind.ENCODER
