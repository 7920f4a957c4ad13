"""The index cache: a derived, regenerable ``TraceIndex`` per input file, outside the user's tree.

Keyed by the file's absolute path; reused when size, mtime and the hashes of the head and
tail bytes match; extended in place when the file only grew (the old prefix's last bytes
must be unchanged); rebuilt otherwise. Layout per input file, under ``<cache>/index/``:
``<key>.idx`` (a magic line, an orjson header with vocabulary, problems and scan state, then
the per-trace rollups column by column), one raw file per span array
(``<key>.<generation>.<off|ln|tr|sid|pid>.bin``) and the content index
(``<key>.<generation>.cix.bin``, ``content_index``; memory-mapped, never read whole). An append
writes only the new spans' bytes to the array files, re-hashes the content index from the last
group on, and then replaces the ``.idx`` atomically; a full rebuild writes a new generation
first. Anything unreadable, short or inconsistent is silently rebuilt.
"""

from __future__ import annotations

import glob
import hashlib
import os
import secrets
import struct
import tempfile
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import accumulate
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from engine.traces import canonical_reader, content_index
from engine.traces.index import TraceIndex
from engine.traces.index_parallel import build_parallel
from engine.traces.parallel import resolve_jobs
from engine.traces.problems import Problems

MAGIC = b"HALOIDX4\n"
HASH_BYTES = 64 * 1024
_ARRAYS = (("off", "q"), ("ln", "i"), ("tr", "i"), ("sid", "Q"), ("pid", "Q"))
_MASKS = (canonical_reader.M_MODEL, canonical_reader.M_AGENT, canonical_reader.M_SERVICE, canonical_reader.M_TOOL)
CONTENT_FORMAT = [content_index.BLOCK, content_index.BITS, content_index.GROUP]  # a cache built with other parameters is rebuilt


def default_cache_dir() -> Path:
    """``$HALO_CACHE_DIR``, else ``$XDG_CACHE_HOME/pytest-halo``, else ``~/.cache/pytest-halo``."""
    env = os.environ.get("HALO_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "pytest-halo"
    return Path.home() / ".cache" / "pytest-halo"


def cache_key(path: str | os.PathLike[str]) -> str:
    """A file name unique to the absolute path (basename kept for humans)."""
    p = os.path.abspath(os.fspath(path))
    digest = hashlib.sha256(p.encode("utf-8", "surrogatepass")).hexdigest()[:20]
    return f"{os.path.basename(p)[:60]}.{digest}"


def _hash_range(fh: Any, start: int, end: int) -> str:
    fh.seek(max(0, start))
    return hashlib.blake2b(fh.read(max(0, end - max(0, start))), digest_size=16).hexdigest()


def fingerprint(path: str, size: int | None = None) -> dict[str, Any]:
    """Size, mtime and hashes of the first and the last 64 KB (of the first ``size`` bytes)."""
    st = os.stat(path)
    size = st.st_size if size is None else size
    with open(path, "rb") as fh:
        return {
            "size": size,
            "mtime_ns": st.st_mtime_ns,
            "head": _hash_range(fh, 0, min(size, HASH_BYTES)),
            "tail": _hash_range(fh, size - HASH_BYTES, size),
        }


# ---------------------------------------------------------------- (de)serialization


_NUMERIC = tuple(
    i for i in range(canonical_reader.ROW_LEN) if i not in (canonical_reader.START, canonical_reader.END, canonical_reader.NODEID, canonical_reader.OUTCOME, *_MASKS)
)
_TIME_CHARS = 30
_I63 = 1 << 63


def _dump_columns(cols: list[list[Any]], n: int) -> tuple[dict[str, Any], list[bytes]]:
    """Rollup columns → numbers as int64 blobs, times as one fixed-width text blob, the rest in the header."""
    meta: dict[str, Any] = {"n": n}
    blobs = [array("q", cols[c]).tobytes() for c in _NUMERIC]
    for c in (canonical_reader.START, canonical_reader.END):
        text = "".join(cols[c])
        if len(text) != _TIME_CHARS * n or not text.isascii():
            raise ValueError("non-canonical time in rollup")
        blobs.append(text.encode("ascii"))
    for c in _MASKS:
        col = cols[c]
        meta[f"m{c}"] = col if not col or max(col) < _I63 else [format(m, "x") for m in col]
    meta["nodeid"] = cols[canonical_reader.NODEID]
    meta["outcome"] = cols[canonical_reader.OUTCOME]
    return meta, blobs


def _load_columns(meta: dict[str, Any], blobs: list[Any]) -> list[list[Any]]:
    n = meta["n"]
    cols: list[Any] = [None] * canonical_reader.ROW_LEN
    for c, blob in zip(_NUMERIC, blobs, strict=False):
        a = array("q")
        a.frombytes(blob)
        cols[c] = a.tolist()
    for c, blob in zip((canonical_reader.START, canonical_reader.END), blobs[len(_NUMERIC) :], strict=True):
        text = bytes(blob).decode("ascii")
        cols[c] = [text[i : i + _TIME_CHARS] for i in range(0, len(text), _TIME_CHARS)]
    for c in _MASKS:
        col = meta[f"m{c}"]
        cols[c] = col if not col or type(col[0]) is int else [int(m, 16) for m in col]
    cols[canonical_reader.NODEID] = meta["nodeid"]
    cols[canonical_reader.OUTCOME] = meta["outcome"]
    if any(len(col) != n for col in cols):
        raise ValueError("bad rollup columns")
    return cols


def dump(idx: TraceIndex, fp: dict[str, Any], gen: str = "") -> bytes:
    """Serialize everything but the per-span arrays (those live in their own append-only files)."""
    st = idx.state
    rows_meta, row_blobs = _dump_columns(st.cols, len(st.tids))
    tspan_lens = array("i", map(len, st.tspans))
    header = {
        "path": idx.path,
        "fp": fp,
        "gen": gen,
        "nspans": len(st.off),
        "end": idx.end,
        "lineno": idx.lineno,
        "complete": idx.complete,
        "tids": st.tids,
        "rows": rows_meta,
        "vocab": st.vocab,
        "slow": sorted(st.slow),
        "broken": sorted(idx.broken),
        "content": CONTENT_FORMAT,
        "gaps": list(st.gaps),
        "problems": {
            "skipped": dict(idx.problems.skipped),
            "repaired": dict(idx.problems.repaired),
            "examples": idx.problems.examples,
        },
    }
    head = orjson.dumps(header)
    parts = [MAGIC, struct.pack("<Q", len(head)), head]
    blobs = [tspan_lens.tobytes(), b"".join(a.tobytes() for a in st.tspans), struct.pack("<Q", len(row_blobs))]
    blobs.extend(row_blobs)
    for blob in blobs:
        parts += [struct.pack("<Q", len(blob)), blob]
    return b"".join(parts)


def load(data: bytes, arrays: Any = None) -> tuple[TraceIndex, dict[str, Any]]:
    """Inverse of ``dump``; ``arrays(name, nbytes)`` returns a span array's bytes. ``ValueError`` when malformed."""
    if not data.startswith(MAGIC):
        raise ValueError("not a halo index")
    pos = len(MAGIC)
    view = memoryview(data)  # slices without copies

    def chunk() -> memoryview:
        nonlocal pos
        if pos + 8 > len(data):
            raise ValueError("truncated index")
        (n,) = struct.unpack_from("<Q", data, pos)
        pos += 8
        if pos + n > len(data):
            raise ValueError("truncated index")
        out = view[pos : pos + n]
        pos += n
        return out

    header = orjson.loads(chunk())
    if header.get("content") != CONTENT_FORMAT:
        raise ValueError("content index of another format")
    idx = TraceIndex(header["path"])
    st = idx.state
    nspans = header["nspans"]
    for name, code in _ARRAYS:
        a = array(code)
        raw = arrays(name, nspans * a.itemsize) if arrays is not None else b""
        if len(raw) != nspans * a.itemsize:
            raise ValueError(f"span array {name} is short")
        a.frombytes(raw)
        setattr(st, name, a)
    lens = array("i")
    lens.frombytes(chunk())
    allspans = array("i")
    allspans.frombytes(chunk())
    (nblobs,) = struct.unpack("<Q", chunk())
    row_blobs = [chunk() for _ in range(nblobs)]
    st.tids = header["tids"]
    st.tmap = dict(zip(st.tids, range(len(st.tids)), strict=False))
    st.cols = _load_columns(header["rows"], row_blobs)
    st.vocab = header["vocab"]
    st.vbit = {v: 1 << i for i, v in enumerate(st.vocab)}
    st.slow = set(header["slow"])
    st.gaps = array("q", header["gaps"])
    idx.broken = set(header["broken"])
    starts = array("q", accumulate(lens, initial=0))
    if starts[-1] != len(allspans) or len(lens) != len(st.tids):
        raise ValueError("inconsistent index")
    st.tspans = list(map(allspans.__getitem__, map(slice, starts[:-1], starts[1:])))
    if len(st.cols[0]) != len(st.tids):
        raise ValueError("inconsistent index")
    if not (len(st.off) == len(st.ln) == len(st.tr) == len(st.sid) == len(st.pid)):
        raise ValueError("inconsistent index")
    idx.end = header["end"]
    idx.lineno = header["lineno"]
    idx.complete = header["complete"]
    pr = header["problems"]
    idx.problems = Problems()
    idx.problems.skipped.update(pr["skipped"])
    idx.problems.repaired.update(pr["repaired"])
    idx.problems.examples = list(pr["examples"])
    return idx, header["fp"]


@contextmanager
def replacing(target: Path) -> Iterator[BinaryIO]:
    """A file in ``target``'s directory that replaces ``target`` when the block ends without error
    (removed otherwise), so a file another process has mapped is never truncated under it. Cache
    files only: no fsync (a lost cache file is rebuilt; ``engine.safe_io`` writes results)."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_atomic(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` via a temp file in the same directory and ``os.replace``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with replacing(target) as fh:
        fh.write(data)


# ---------------------------------------------------------------- the policy


def index_path_for(path: str, cache_dir: Path) -> Path:
    """The index's meta file; its span arrays sit beside it as ``<key>.<generation>.<array>.bin``."""
    return cache_dir / "index" / (cache_key(path) + ".idx")


def _array_path(target: Path, gen: str, name: str) -> Path:
    return target.with_name(f"{target.stem}.{gen}.{name}.bin")


def open_index(
    path: str | os.PathLike[str],
    cache_dir: Path | None = None,
    use_cache: bool = True,
    label: str | None = None,
    jobs: int | None = None,
) -> tuple[TraceIndex, str]:
    """The index of ``path``: reused, extended or rebuilt; returns ``(index, how)`` with how in
    ``cold | warm | incremental | uncached``. A cold build of a large file uses ``jobs`` processes
    (None: one per core, 1 for small files; ``parallel.default_jobs``)."""
    path = os.path.abspath(os.fspath(path))
    if not use_cache:
        n = resolve_jobs(jobs, os.path.getsize(path))
        if n <= 1:
            return TraceIndex.build(path, label=label), "uncached"
        idx = build_parallel(path, n, label)
        idx.content_in_memory()
        return idx, "uncached"
    cache_dir = cache_dir or default_cache_dir()
    target = index_path_for(path, cache_dir)
    fp_now = fingerprint(path)
    cached = _try_load(target, path)
    if cached is not None:
        idx, fp_old, gen = cached
        if fp_old == fp_now:
            return idx, "warm"
        if _only_grew(path, fp_old, fp_now) and idx.complete and idx.end == fp_old["size"]:
            before, covered = idx.span_count, idx.end
            idx.extend(label=label)
            fp = fingerprint(path, idx.end)
            if idx.renumbered:
                _save_full(target, idx, fp)
            else:
                _save_appended(target, idx, fp, gen, before, covered)
            return idx, "incremental"
    idx, ready = _cold_build(path, target, label, jobs)
    _save_full(target, idx, fingerprint(path, idx.end), ready)
    return idx, "cold"


def _cold_build(path: str, target: Path, label: str | None, jobs: int | None) -> tuple[TraceIndex, str | None]:
    """Scan (on ``jobs`` processes for a large file) and, beside it, the content index into a temp file."""
    n = resolve_jobs(jobs, os.path.getsize(path))
    if n <= 1:
        return TraceIndex.build(path, label=label, content=False), None
    ready: str | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, ready = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".cix.tmp")
        os.close(fd)
    except OSError:
        ready = None
    try:
        return build_parallel(path, n, label, ready), ready
    except BaseException:
        if ready is not None:
            try:
                os.unlink(ready)
            except OSError:
                pass
        raise


def _map_content(path: Path, covered: int) -> content_index.ContentIndex:
    """The content index file, memory-mapped (queries touch only the filter bytes they test)."""
    import numpy as np

    if covered == 0:
        return content_index.ContentIndex(b"", 0)
    need = content_index.index_bytes(covered)
    if os.path.getsize(path) < need:  # longer is a crash's leftover, like the span arrays' tails
        raise ValueError("content index is short")
    return content_index.ContentIndex(np.memmap(path, dtype=np.uint8, mode="r", shape=(need,)), covered)


def _write_content(target: Path, gen: str, idx: TraceIndex, ready: str | None = None) -> None:
    """Build the content index of generation ``gen`` (or move in the ``ready`` one), then map it."""
    final = _array_path(target, gen, "cix")
    if ready is not None:
        os.replace(ready, final)
        idx.content = _map_content(final, idx.end)
        return
    with replacing(final) as fh:
        content_index.build(idx.path, 0, idx.end, fh)
    idx.content = _map_content(final, idx.end)


def _try_load(target: Path, path: str) -> tuple[TraceIndex, dict[str, Any], str] | None:
    try:
        data = target.read_bytes()
    except OSError:
        return None
    gen = ""

    def arrays(name: str, nbytes: int) -> bytes:
        with open(_array_path(target, gen, name), "rb") as fh:
            return fh.read(nbytes)  # bytes past ``nbytes`` are an interrupted append: ignored

    try:
        if data.startswith(MAGIC):
            (n,) = struct.unpack_from("<Q", data, len(MAGIC))
            gen = str(orjson.loads(data[len(MAGIC) + 8 : len(MAGIC) + 8 + n]).get("gen", ""))
        idx, fp = load(data, arrays)
    except (OSError, ValueError, KeyError, TypeError, IndexError, struct.error, orjson.JSONDecodeError):
        return None  # corrupt, incomplete or from another version: rebuilt silently
    if idx.path != path:
        return None
    try:
        idx.content = _map_content(_array_path(target, gen, "cix"), idx.end)
    except (OSError, ValueError):
        return None
    return idx, fp, gen


def _only_grew(path: str, old: dict[str, Any], new: dict[str, Any]) -> bool:
    """The file is longer and its old prefix's head and last bytes are unchanged."""
    if new["size"] <= old["size"]:
        return False
    return fingerprint(path, old["size"]) | {"mtime_ns": old["mtime_ns"]} == old


def _save_full(target: Path, idx: TraceIndex, fp: dict[str, Any], content_ready: str | None = None) -> None:
    """New generation of span-array files and content index, then the meta file naming it; old
    generations removed. ``content_ready``: a content index file already built (moved in)."""
    gen = secrets.token_hex(6)
    try:
        for name, _ in _ARRAYS:
            write_atomic(_array_path(target, gen, name), getattr(idx.state, name).tobytes())
        _write_content(target, gen, idx, content_ready)
        write_atomic(target, dump(idx, fp, gen))
    except OSError:
        if content_ready is not None:
            try:
                os.unlink(content_ready)
            except OSError:
                pass
        if idx.content is None:
            idx.content_in_memory()
        return  # an unwritable cache costs speed, never correctness
    for old in target.parent.glob(f"{glob.escape(target.stem)}.*.bin"):
        if not old.name.startswith(f"{target.stem}.{gen}."):
            try:
                old.unlink()
            except OSError:
                pass


def _extend_content(target: Path, gen: str, idx: TraceIndex, covered: int) -> None:
    """The content index of ``idx.end`` bytes from the one of ``covered`` bytes: its whole groups are
    copied, the rest re-hashed, into a new file that replaces the old one (which other processes
    may have mapped: it is never truncated under them)."""
    first = covered - covered % content_index.GROUP_BYTES
    keep = first // content_index.GROUP_BYTES * content_index.GROUP_SIZE
    cix = _array_path(target, gen, "cix")
    with replacing(cix) as out, open(cix, "rb") as src:
        left = keep
        while left > 0:
            chunk = src.read(min(left, 1 << 20))
            if not chunk:
                raise ValueError("content index is short")
            out.write(chunk)
            left -= len(chunk)
        content_index.build(idx.path, first, idx.end, out)
    idx.content = _map_content(cix, idx.end)


def _save_appended(
    target: Path, idx: TraceIndex, fp: dict[str, Any], gen: str, before: int, covered: int
) -> None:
    """Append only the new spans to the array files, re-hash the content index from the group that
    held byte ``covered`` (the old end) on, then rewrite the (small) meta file.

    A crash between the two leaves arrays longer than the meta says; readers ignore the tail
    and the next append truncates it first (the content index is checked against the meta's end).
    """
    try:
        for name, _ in _ARRAYS:
            arr = getattr(idx.state, name)
            with open(_array_path(target, gen, name), "r+b") as fh:
                fh.truncate(before * arr.itemsize)
                fh.seek(before * arr.itemsize)
                fh.write(arr[before:].tobytes())
        _extend_content(target, gen, idx, covered)
        write_atomic(target, dump(idx, fp, gen))
    except (OSError, ValueError):
        _save_full(target, idx, fp)
