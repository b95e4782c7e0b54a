"""The pre-cast scan on a dask.distributed cluster: one task per shard, and tensors of many
chunks split into tasks of ``TASK_CHUNKS`` chunks each.

Workers open the checkpoint from the path themselves (a file system every worker sees, as
clusters have): only the options go out, and only partial metrics come back. A whole tensor
comes back as its ``TensorScan``; a split one as its chunks' partials, which the client merges
in chunk order with ``scan.tensor_scan``, the very fold the single-process scan runs. So the
report is the same bit for bit: the float sums are added in the same order. (The per-chunk
partials are themselves independent of the thread count: the C kernel merges its blocks in
block order.)

``address``: a scheduler (``tcp://host:8786``), or ``local:N`` for a ``LocalCluster`` of N
worker processes on 127.0.0.1, one thread each, no dashboard, closed after the scan.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dtlab.checkpoint.handle import Checkpoint, open_checkpoint
from dtlab.checkpoint.header import TensorEntry
from dtlab.errors import DtlabError, OptionError, first_line

if TYPE_CHECKING:
    from dtlab.analysis.metrics import Partial
    from dtlab.checkpoint.scan import TensorScan
    from dtlab.formats.quantizer_spec import Target

__all__ = ["TASK_CHUNKS", "scan_on_dask"]

TASK_CHUNKS = 16  # a tensor of more chunks than this is split into tasks of this many
CONNECT_TIMEOUT = "10s"
Job = tuple[str, bool, "tuple[Target, ...]", float, int]  # source, allow_pickle, targets, dB, chunk


@dataclass(frozen=True)
class Piece:
    """What a task scans of one tensor: all of it (``part`` None), or chunks [i, j)."""

    name: str
    part: tuple[int, int] | None = None


def plan(
    ckpt: Checkpoint, entries: tuple[TensorEntry, ...], fmts: tuple[Target, ...], chunk: int
) -> list[list[Piece]]:
    """The tasks: one per shard with its tensors whole, in order, then one per range of
    ``TASK_CHUNKS`` chunks of each tensor that has more chunks than that (of those that
    ``scan_tensor.splittable`` allows: quantizers and packed weights go whole)."""
    from dtlab.checkpoint.reader import chunk_count
    from dtlab.checkpoint.scan_tensor import splittable

    shards: dict[str, list[Piece]] = {}
    split: list[list[Piece]] = []
    for e in entries:
        n = chunk_count(ckpt, e.name, chunk, decoded=True) if splittable(ckpt, e, fmts) else 0
        if n <= TASK_CHUNKS:
            shards.setdefault(str(e.file), []).append(Piece(e.name))
            continue
        for i in range(0, n, TASK_CHUNKS):
            split.append([Piece(e.name, (i, min(i + TASK_CHUNKS, n)))])
    return [*split, *shards.values()]  # the longest first, so that they do not finish last


def scan_on_dask(
    address: str,
    ckpt: Checkpoint,
    entries: tuple[TensorEntry, ...],
    job: Job,
    report: Callable[[TensorScan, int], None],
) -> int:
    """Scan ``entries`` on the cluster, calling ``report`` as each tensor's last task ends;
    returns the number of workers."""
    from dtlab.checkpoint.scan_tensor import tensor_scan

    distributed = _distributed()
    source, allow_pickle, fmts, threshold, chunk = job
    remote_job: Job = (str(Path(source).resolve()), allow_pickle, fmts, threshold, chunk)
    tasks = plan(ckpt, entries, fmts, chunk)
    by_name = {e.name: e for e in entries}  # packed weights too, by their logical names
    pieces_of: dict[str, int] = {}
    for pieces in tasks:
        for p in pieces:
            pieces_of[p.name] = pieces_of.get(p.name, 0) + 1
    parts: dict[str, dict[int, list[list[Partial]]]] = {}
    with _client(distributed, address) as (client, local):
        futures = {client.submit(run_task, remote_job, t, local, pure=False): t for t in tasks}
        for future in distributed.as_completed(futures):
            for piece, out in zip(futures[future], future.result(), strict=True):
                e = by_name[piece.name]
                if piece.part is None:
                    report(out, e.nbytes)
                    continue
                got = parts.setdefault(piece.name, {})
                got[piece.part[0]] = out
                if len(got) == pieces_of[piece.name]:  # merged in chunk order
                    chunks = itertools.chain.from_iterable(got[i] for i in sorted(got))
                    report(tensor_scan(e, fmts, threshold, chunks), e.nbytes)
        return len(client.scheduler_info(n_workers=-1)["workers"])


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise DtlabError(
            "the Dask scan needs dask.distributed: pip install 'dtlab[dask]'"
        ) from None
    return distributed


@contextmanager
def _client(distributed: Any, address: str) -> Iterator[tuple[Any, bool]]:
    """A client of the scheduler at ``address``, or of a LocalCluster for ``local:N``."""
    if address.startswith("local:"):
        n = address[len("local:") :]
        if not n.isdigit() or int(n) < 1:
            raise OptionError(f"dask {address!r}: write local:N with N >= 1 worker processes")
        with distributed.LocalCluster(
            n_workers=int(n),
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,  # not its closing notes (a slow worker killed at exit)
        ) as cluster, distributed.Client(cluster) as client:  # fmt: skip
            yield client, True
        return
    try:
        client = distributed.Client(address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        raise DtlabError(
            f"cannot reach the Dask scheduler at {address!r} ({first_line(exc)})"
        ) from None
    with client:
        yield client, False


_opened: dict[tuple[str, bool, int, int], Checkpoint] = {}  # a worker's checkpoints, by file


def run_task(job: Job, pieces: list[Piece], one_thread: bool) -> list[Any]:
    """On a worker: each piece's TensorScan (whole) or its chunks' partials (a range)."""
    import torch

    from dtlab.checkpoint.scan_tensor import chunk_partials, scan_tensor

    source, allow_pickle, fmts, threshold, chunk = job
    if one_thread:
        torch.set_num_threads(1)  # a LocalCluster's workers share this machine's cores
    st = os.stat(source)
    key = (source, allow_pickle, st.st_mtime_ns, st.st_size)
    ckpt = _opened.get(key)
    if ckpt is None:
        ckpt = _opened[key] = open_checkpoint(source, allow_pickle=allow_pickle)
    out: list[Any] = []
    for p in pieces:
        if p.part is None:
            out.append(scan_tensor(ckpt, p.name, fmts, threshold, chunk))
        else:
            out.append(list(chunk_partials(ckpt, p.name, fmts, chunk, p.part)))
    return out
