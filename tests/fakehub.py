"""A Hugging Face Hub on 127.0.0.1 for tests: model folders served as the Hub's API and its
``resolve`` URLs serve them, to the real ``huggingface_hub`` client pointed at it through
``HF_ENDPOINT``.

What the client checks is what it gets: ``/api/models/ORG/NAME[/revision/REV]`` answers the
listing (``id``, ``sha``, ``siblings``); ``/ORG/NAME/resolve/REV/FILE`` answers HEAD and GET
with ``X-Repo-Commit``, ``ETag`` and ``Content-Length``, a ``Range`` with 206 and
``Content-Range``; errors carry ``X-Error-Code`` as the Hub's do (``RepoNotFound`` 401,
``RevisionNotFound`` 404, ``EntryNotFound`` 404, ``GatedRepo`` 401 without a token and 403
with a wrong one). Every byte range served is recorded, so a test can say which bytes of a
file the client read.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

SHA = "0123456789abcdef0123456789abcdef01234567"
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


@dataclass
class Repo:
    folder: Path
    gated_token: str | None = None  # the token that opens a gated repository
    delay: float = 0.0  # seconds before any answer about this repository (a slow server)


@dataclass
class FakeHub:
    repos: dict[str, Repo]
    served: list[tuple[str, str, int, int]] = field(default_factory=list)  # repo, file, [b, e)
    requests: list[tuple[str, str]] = field(default_factory=list)  # method, path
    tokens: list[str | None] = field(default_factory=list)
    url: str = ""
    stop: threading.Event = field(default_factory=threading.Event)

    def bytes_served(self, repo: str, file: str) -> list[tuple[int, int]]:
        return [(b, e) for r, f, b, e in self.served if (r, f) == (repo, file)]


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub  # set on the subclass each server makes

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: pytest shows stderr of failing tests only, and this one would be noise

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _error(self, status: int, code: str) -> None:
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _answer(self, body: bool) -> None:
        hub = self.hub
        path = unquote(urlsplit(self.path).path)
        hub.requests.append((self.command, path))
        hub.tokens.append(self.headers.get("Authorization"))
        api = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/(.+))?", path)
        resolve = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if api is None and resolve is None:
            return self._error(404, "NotFound")
        repo_id, rev = (api or resolve).group(1), (api or resolve).group(2)  # type: ignore[union-attr]
        repo = hub.repos.get(repo_id)
        if repo is None:
            return self._error(401, "RepoNotFound")
        if repo.delay and hub.stop.wait(repo.delay):
            return None  # the test is over: answer nothing
        if rev not in (None, "main", SHA):
            return self._error(404, "RevisionNotFound")
        if api is not None:
            return self._listing(repo_id, repo)
        if repo.gated_token is not None:
            token = self.headers.get("Authorization")
            if token != f"Bearer {repo.gated_token}":
                return self._error(403 if token else 401, "GatedRepo")
        return self._file(repo_id, repo, resolve.group(3), body)  # type: ignore[union-attr]

    def _listing(self, repo_id: str, repo: Repo) -> None:
        info = {
            "id": repo_id,
            "sha": SHA,
            "private": False,
            "gated": "manual" if repo.gated_token else False,
            "siblings": [{"rfilename": f} for f in _files(repo.folder)],
        }
        raw = json.dumps(info).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _file(self, repo_id: str, repo: Repo, name: str, body: bool) -> None:
        file = repo.folder / name
        if ".." in Path(name).parts or not file.is_file():
            return self._error(404, "EntryNotFound")
        st = file.stat()
        size = st.st_size
        begin, end = 0, size
        wanted = _RANGE.fullmatch(self.headers.get("Range", ""))
        if wanted is not None:
            begin = int(wanted[1])
            end = min(int(wanted[2]) + 1 if wanted[2] else size, size)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {begin}-{end - 1}/{size}")
        else:
            self.send_response(200)
        etag = hashlib.sha256(f"{name}:{size}:{st.st_mtime_ns}".encode()).hexdigest()
        self.send_header("X-Repo-Commit", SHA)
        self.send_header("ETag", f'"{etag}"')
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(end - begin))
        self.end_headers()
        if body:
            self.hub.served.append((repo_id, name, begin, end))
            with open(file, "rb") as f:  # only the bytes asked for are read
                f.seek(begin)
                self.wfile.write(f.read(end - begin))


@contextmanager
def serve(repos: dict[str, Repo]) -> Iterator[FakeHub]:
    """A FakeHub listening on 127.0.0.1 (a free port) until the block ends."""
    hub = FakeHub(repos)
    handler = type("Handler", (_Handler,), {"hub": hub})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.block_on_close = False
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        hub.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
