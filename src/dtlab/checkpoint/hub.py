"""Hub models by name: a checkpoint opened from the Hugging Face Hub's headers alone.

``open_named("org/name@rev")`` reads, through ``huggingface_hub`` (which honours
``HF_ENDPOINT``, ``HF_TOKEN``, ``HF_HOME`` and the cache as it always does), the repository's
file listing (``model_info``), its index (``hf_hub_download``: cached), and each shard's header
by two range requests: the 8-byte length, then exactly the JSON after it. No byte of tensor
data is asked for (``get_safetensors_metadata`` asks for the first 100 kB, data included).
A shard already in the cache is read there instead. The bytes fetched pass the same checks as a
local file's: ``header.check_length`` caps the length before anything is allocated,
``header.parse_header`` is the strict parser, ``files.check_shards`` the index's rules.

A local path always wins over a Hub name; ``hf://org/name`` names the Hub only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from dtlab.checkpoint.handle import Checkpoint, open_checkpoint
from dtlab.checkpoint.header import CheckpointError, show

__all__ = [
    "HUB_PREFIX",
    "HubRef",
    "Opened",
    "open_hub_checkpoint",
    "open_named",
    "parse_hub_ref",
    "refuse_remote_scan",
]

HUB_PREFIX = "hf://"
# huggingface_hub's validate_repo_id, with the namespace required: ORG/NAME
_REPO = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}")


@dataclass(frozen=True)
class HubRef:
    """A Hub model: ``repo_id`` (``org/name``), an optional revision, and the text given."""

    repo_id: str
    revision: str | None
    written: str

    @property
    def shown(self) -> str:
        """``org/name@rev`` for messages and file names (``main`` when no revision is given)."""
        return f"{self.repo_id}@{self.revision or 'main'}"


def parse_hub_ref(text: str) -> HubRef | None:
    """``org/name``, ``org/name@rev`` or ``hf://`` with either; None when ``text`` is no such
    name (a path such as ``./model`` or ``a/b/c``)."""
    body = text[len(HUB_PREFIX) :] if text.startswith(HUB_PREFIX) else text
    repo, at, rev = body.partition("@")
    if not _REPO.fullmatch(repo) or "--" in repo or ".." in repo or len(repo) > 96:
        return None
    if at and (not rev or not rev.isprintable() or any(c.isspace() for c in rev)):
        return None
    return HubRef(repo, rev or None, text)


@dataclass(frozen=True)
class Opened:
    """A checkpoint, and a note saying which of two things its name meant (or None)."""

    checkpoint: Checkpoint
    note: str | None


def open_named(text: str, *, allow_pickle: bool = False) -> Opened:
    """A local path when one exists (a name that is also a Hub name gets a note saying so);
    otherwise the Hub model ``org/name[@rev]``; ``hf://`` names the Hub only."""
    ref = parse_hub_ref(text)
    if text.startswith(HUB_PREFIX):
        if ref is None:
            raise CheckpointError(f"{show(text)}: not a Hub model name (hf://ORG/NAME[@REVISION])")
        return Opened(open_hub_checkpoint(ref), None)
    if ref is None or Path(text).exists():
        ckpt = open_checkpoint(text, allow_pickle=allow_pickle)
        note = None if ref is None else f"{text}: the local path (for the Hub model: hf://{text})"
        return Opened(ckpt, note)
    ckpt = open_hub_checkpoint(ref)
    return Opened(ckpt, f"{text}: no such local path; read from the Hub at {_endpoint(None)}")


def refuse_remote_scan(text: str | None) -> None:
    """A scan reads every weight: for a Hub model (a name that is no local path) it says so
    and how to download it, rather than download gigabytes unasked."""
    if text is None:
        return
    ref = parse_hub_ref(text)
    if ref is None or (not text.startswith(HUB_PREFIX) and Path(text).exists()):
        return
    what = "is a Hub model" if text.startswith(HUB_PREFIX) else "is no local path but a Hub model"
    raise CheckpointError(
        f"{show(text)} {what}: a scan reads every weight, so download it first "
        f"(hf download {ref.repo_id}{' --revision ' + ref.revision if ref.revision else ''} "
        "--local-dir DIR) and scan DIR"
    )


def open_hub_checkpoint(
    ref: HubRef,
    *,
    endpoint: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | Path | None = None,
    timeout: float | None = None,
) -> Checkpoint:
    """The checkpoint of a Hub model from its listing, index and shard headers only.

    ``endpoint``, ``token``, ``cache_dir``: huggingface_hub's (``HF_ENDPOINT``, ``HF_TOKEN``,
    ``HF_HOME``/``HF_HUB_CACHE`` by default). ``timeout``: seconds a request may wait for the
    server (``HF_HUB_DOWNLOAD_TIMEOUT`` by default, 10). Raises CheckpointError, one line.
    """
    from huggingface_hub import constants

    from dtlab.checkpoint.hub_http import Hub

    hub = Hub(
        ref,
        _endpoint(endpoint),
        token,
        cache_dir,
        constants.HF_HUB_DOWNLOAD_TIMEOUT if timeout is None else timeout,
    )
    return hub.checkpoint()


def _endpoint(endpoint: str | None) -> str:
    if endpoint is not None:
        return endpoint.rstrip("/")
    from huggingface_hub import constants

    return constants.ENDPOINT
