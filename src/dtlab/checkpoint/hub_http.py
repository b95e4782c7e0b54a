"""The Hub's side of ``checkpoint.hub``: the listing, the index through the cache, and each
shard's header by range requests at the commit the listing named; every failure of
huggingface_hub or httpx becomes a one-line CheckpointError."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dtlab.checkpoint.files import (
    INDEX_NAME,
    PICKLE_SUFFIXES,
    SINGLE_NAME,
    CheckpointKind,
    check_shard_name,
    check_shards,
    weight_map_of,
)
from dtlab.checkpoint.handle import Checkpoint
from dtlab.checkpoint.header import (
    MAX_HEADER_BYTES,
    CheckpointError,
    Header,
    check_length,
    parse_header,
    read_header,
    show,
)

if TYPE_CHECKING:
    import httpx2

    from dtlab.checkpoint.hub import HubRef

_FETCH_THREADS = 8  # shard headers asked for at once


@dataclass(frozen=True)
class Hub:
    ref: HubRef
    endpoint: str
    token: str | bool | None
    cache_dir: str | Path | None
    timeout: float

    def checkpoint(self) -> Checkpoint:
        sha, files = self._listing()
        kind, name = _pick(self.ref, files)
        rev = _Rev(self, sha)
        where = f"{self.ref.shown}/{name}"
        if kind is CheckpointKind.SAFETENSORS:
            headers: tuple[Header, ...] = (rev.header(name),)
        else:
            weight_map = weight_map_of(rev.index(name))
            shards: dict[Path, list[str]] = {}
            written: dict[Path, str] = {}
            full_names: dict[Path, str] = {}
            folder = posixpath.dirname(name)
            for tensor, file in weight_map.items():
                bad = check_shard_name(where, tensor, file)
                full = posixpath.normpath(posixpath.join(folder, file))
                if full not in files:
                    raise CheckpointError(f"{bad}, which is not in the repository (missing shard)")
                key = Path(f"{self.ref.shown}/{full}")
                shards.setdefault(key, []).append(tensor)
                written.setdefault(key, file)
                full_names.setdefault(key, full)
            fetched = rev.headers(full_names)
            headers = check_shards(where, weight_map, shards, written, fetched.__getitem__)
        return Checkpoint(
            path=Path(self.ref.shown),
            kind=kind,
            source=Path(where),
            tensors=tuple(e for h in headers for e in h.tensors),
            tied=tuple(g for h in headers for g in h.tied),
            headers=headers,
            origin=self.ref.written,
        )

    def _listing(self) -> tuple[str, frozenset[str]]:
        from huggingface_hub import HfApi

        with self.errors(None):
            info = HfApi(endpoint=self.endpoint, token=self.token).model_info(
                self.ref.repo_id, revision=self.ref.revision, timeout=self.timeout
            )
        files = frozenset(s.rfilename for s in info.siblings or ())
        return info.sha or self.ref.revision or "main", files

    @contextmanager
    def errors(self, file: str | None) -> Iterator[None]:
        """huggingface_hub's and httpx's exceptions as one-line CheckpointErrors."""
        import httpx2
        from huggingface_hub import errors as hf

        repo, shown = self.ref.repo_id, self.ref.shown
        what = f"{shown}/{file}" if file else shown
        try:
            yield
        except hf.GatedRepoError:
            raise CheckpointError(_gated(repo, self.endpoint)) from None
        except hf.RepositoryNotFoundError:
            raise CheckpointError(_not_found(repo, self.endpoint)) from None
        except hf.RevisionNotFoundError:
            raise CheckpointError(_no_revision(self.ref)) from None
        except hf.RemoteEntryNotFoundError:
            raise CheckpointError(f"{what}: no such file in the repository") from None
        except hf.OfflineModeIsEnabled:
            raise CheckpointError(
                f"{shown}: HF_HUB_OFFLINE is set, and reading headers needs the Hub: unset it, "
                f"or download the model (hf download {repo}) and give its folder"
            ) from None
        except hf.LocalEntryNotFoundError:
            raise CheckpointError(
                f"{what}: the Hub at {self.endpoint} did not answer and the file is not in the "
                "cache"
            ) from None
        except hf.HfHubHTTPError as exc:
            status = exc.response.status_code if exc.response is not None else "?"
            raise CheckpointError(f"{what}: the Hub answered HTTP {status}") from None
        except httpx2.TimeoutException:
            raise CheckpointError(
                f"{what}: the Hub at {self.endpoint} did not answer within {self.timeout:g} s "
                "(HF_HUB_DOWNLOAD_TIMEOUT)"
            ) from None
        except httpx2.HTTPError as exc:
            raise CheckpointError(
                f"{what}: cannot reach the Hub at {self.endpoint} ({type(exc).__name__})"
            ) from None


def _gated(repo: str, endpoint: str) -> str:
    return (
        f"{repo}: a gated model: accept its terms at {endpoint}/{repo}, then set HF_TOKEN to a "
        "token of that account"
    )


def _not_found(repo: str, endpoint: str) -> str:
    return f"{repo}: no such model on {endpoint} (a private one needs HF_TOKEN)"


def _no_revision(ref: HubRef) -> str:
    return f"{ref.repo_id}: no revision {ref.revision!r} (a branch, a tag or a commit)"


def _pick(ref: HubRef, files: frozenset[str]) -> tuple[CheckpointKind, str]:
    """The file that describes the checkpoint, by the local rule (files._in_folder): the single
    file, then the index, then a lone index or file of another name; also under ``model/``."""
    for folder in ("", "model/"):
        if folder + SINGLE_NAME in files:
            return CheckpointKind.SAFETENSORS, folder + SINGLE_NAME
        if folder + INDEX_NAME in files:
            return CheckpointKind.SHARDED, folder + INDEX_NAME
        here = sorted(f for f in files if posixpath.dirname(f) + "/" == folder or (
            not folder and "/" not in f))  # fmt: skip
        for kind, suffix in (
            (CheckpointKind.SHARDED, ".safetensors.index.json"),
            (CheckpointKind.SAFETENSORS, ".safetensors"),
        ):
            found = [f for f in here if f.endswith(suffix)]
            if len(found) == 1:
                return kind, found[0]
            if len(found) > 1:
                names = ", ".join(found[:4])
                raise CheckpointError(f"{ref.shown}: several *{suffix} files ({names})")
    pickles = sorted(f for f in files if f.endswith(PICKLE_SUFFIXES))
    if pickles:
        raise CheckpointError(
            f"{ref.shown}: pickle weights only ({pickles[0]}); headers are read from the Hub for "
            f"safetensors: download it (hf download {ref.repo_id}) and give its folder"
        )
    raise CheckpointError(
        f"{ref.shown}: no {SINGLE_NAME} or {INDEX_NAME} in the repository ({len(files)} files)"
    )


@dataclass(frozen=True)
class _Rev:
    """One commit of the repository: every file is asked for at the commit the listing gave."""

    hub: Hub
    sha: str

    def _cached(self, file: str) -> Path | None:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(
            self.hub.ref.repo_id, file, cache_dir=self.hub.cache_dir, revision=self.sha
        )
        return Path(found) if isinstance(found, str) else None

    def index(self, file: str) -> Path:
        """The index file, from the cache or downloaded into it, after a size check."""
        cached = self._cached(file)
        if cached is not None:
            return cached
        from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url

        h = self.hub
        url = hf_hub_url(h.ref.repo_id, file, revision=self.sha, endpoint=h.endpoint)
        with h.errors(file):
            meta = get_hf_file_metadata(url, token=h.token, timeout=h.timeout)
            if meta.size is not None and meta.size > MAX_HEADER_BYTES:
                raise CheckpointError(f"{h.ref.shown}/{file}: an index of {meta.size} bytes")
            return Path(
                hf_hub_download(
                    h.ref.repo_id,
                    file,
                    revision=self.sha,
                    cache_dir=h.cache_dir,
                    endpoint=h.endpoint,
                    token=h.token,
                    etag_timeout=h.timeout,
                    tqdm_class=_quiet_bar(),
                )
            )

    def headers(self, shards: dict[Path, str]) -> dict[Path, Header]:
        """The header of each shard (key: its path in messages, value: its file name), a few
        fetched at once; the first failure in index order is raised."""
        with ThreadPoolExecutor(min(_FETCH_THREADS, len(shards))) as pool:
            futures = {k: pool.submit(self.header, file, k) for k, file in shards.items()}
            return {k: f.result() for k, f in futures.items()}

    def header(self, file: str, key: Path | None = None) -> Header:
        """One file's header: its 8-byte length, then exactly the JSON, by range requests."""
        key = key or Path(f"{self.hub.ref.shown}/{file}")
        cached = self._cached(file)
        if cached is not None:
            return read_header(cached)
        where = show(key)
        head, size = self._range(file, 0, 8)
        n = check_length(where, head, size)
        raw, _ = self._range(file, 8, n) if n else (b"", size)
        if len(raw) != n:
            raise CheckpointError(
                f"{where}: the server sent {len(raw)} of the header's {n} bytes (truncated)"
            )
        return parse_header(key, n, size, raw)

    def _range(self, file: str, begin: int, length: int) -> tuple[bytes, int]:
        """Bytes [begin, begin + length) of a file (fewer if the server sends fewer), and the
        file's size from Content-Range; a server that ignores the range is read no further."""
        from huggingface_hub import get_session, hf_hub_url
        from huggingface_hub.utils._headers import build_hf_headers

        h = self.hub
        url = hf_hub_url(h.ref.repo_id, file, revision=self.sha, endpoint=h.endpoint)
        headers = build_hf_headers(token=h.token)
        headers["Range"] = f"bytes={begin}-{begin + length - 1}"
        with h.errors(file), get_session().stream(
            "GET", url, headers=headers, timeout=h.timeout
        ) as r:  # fmt: skip
            if r.status_code >= 400:
                raise CheckpointError(self._refused(r, file))
            size = _file_size(r, begin, f"{h.ref.shown}/{file}")
            data = bytearray()
            for piece in r.iter_bytes():
                data += piece
                if len(data) >= length:
                    break
        return bytes(data[:length]), size

    def _refused(self, r: httpx2.Response, file: str) -> str:
        h = self.hub
        code = r.headers.get("X-Error-Code")
        if code == "GatedRepo":
            return _gated(h.ref.repo_id, h.endpoint)
        if code == "RepoNotFound" or r.status_code == 401:
            return _not_found(h.ref.repo_id, h.endpoint)
        if code == "RevisionNotFound":
            return _no_revision(h.ref)
        if code == "EntryNotFound" or r.status_code == 404:
            return f"{h.ref.shown}/{file}: no such file in the repository"
        return f"{h.ref.shown}/{file}: the Hub answered HTTP {r.status_code}"


def _file_size(r: httpx2.Response, begin: int, where: str) -> int:
    if r.status_code == 206:
        m = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", r.headers.get("Content-Range", "").strip())
        if m is None or int(m[1]) != begin:
            raise CheckpointError(f"{where}: the server's Content-Range does not match the request")
        return int(m[3])
    if r.status_code == 200 and begin == 0 and r.headers.get("Content-Length", "").isdigit():
        return int(r.headers["Content-Length"])  # the whole file offered: only 8 bytes read
    raise CheckpointError(
        f"{where}: the server did not answer the range request (HTTP {r.status_code})"
    )


def _quiet_bar() -> Any:
    """A tqdm class that shows nothing: the index is small, and stderr is for messages."""
    from huggingface_hub.utils.tqdm import tqdm

    class Quiet(tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]

    return Quiet
