"""The index cache: a derived, regenerable ``TraceIndex`` per input file, outside the user's tree.

Keyed by the file's absolute path; reused when size, mtime and the hashes of the head and
tail bytes match; extended in place when the file only grew (the old prefix's last bytes
must be unchanged); rebuilt otherwise. One binary file per index: a magic line, an orjson
header (rollups, vocabulary, problems) and the raw span arrays. Writes are atomic
(temp file + ``os.replace``); anything unreadable is silently rebuilt.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
from array import array
from pathlib import Path
from typing import Any

import orjson

from engine.traces import canonical_reader as R
from engine.traces.index import TraceIndex
from engine.traces.problems import Problems

MAGIC = b"HALOIDX2\n"
HASH_BYTES = 64 * 1024
_ARRAYS = (("off", "q"), ("ln", "i"), ("tr", "i"), ("sid", "Q"), ("pid", "Q"))
_MASKS = (R.M_MODEL, R.M_AGENT, R.M_SERVICE, R.M_TOOL)


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


def dump(idx: TraceIndex, fp: dict[str, Any]) -> bytes:
    """Serialize an index (header + arrays) to bytes."""
    st = idx.state
    rows = []
    for r in st.rows:
        r2 = list(r)
        for m in _MASKS:
            r2[m] = format(r2[m], "x")  # facet bitmasks can exceed 64 bits
        rows.append(r2)
    tspan_lens = array("i", (len(a) for a in st.tspans))
    header = {
        "path": idx.path,
        "fp": fp,
        "end": idx.end,
        "lineno": idx.lineno,
        "complete": idx.complete,
        "tids": st.tids,
        "rows": rows,
        "vocab": st.vocab,
        "slow": sorted(st.slow),
        "broken": sorted(idx.broken),
        "gaps": list(st.gaps),
        "problems": {
            "skipped": dict(idx.problems.skipped),
            "repaired": dict(idx.problems.repaired),
            "examples": idx.problems.examples,
        },
    }
    head = orjson.dumps(header)
    parts = [MAGIC, struct.pack("<Q", len(head)), head]
    for name, _ in _ARRAYS:
        data = getattr(st, name).tobytes()
        parts += [struct.pack("<Q", len(data)), data]
    lens = tspan_lens.tobytes()
    spans = b"".join(a.tobytes() for a in st.tspans)
    parts += [struct.pack("<Q", len(lens)), lens, struct.pack("<Q", len(spans)), spans]
    return b"".join(parts)


def load(data: bytes) -> tuple[TraceIndex, dict[str, Any]]:
    """Inverse of ``dump``; raises ``ValueError`` on anything malformed."""
    if not data.startswith(MAGIC):
        raise ValueError("not a halo index")
    pos = len(MAGIC)

    def chunk() -> bytes:
        nonlocal pos
        if pos + 8 > len(data):
            raise ValueError("truncated index")
        (n,) = struct.unpack_from("<Q", data, pos)
        pos += 8
        if pos + n > len(data):
            raise ValueError("truncated index")
        out = data[pos : pos + n]
        pos += n
        return out

    header = orjson.loads(chunk())
    idx = TraceIndex(header["path"])
    st = idx.state
    for name, code in _ARRAYS:
        a = array(code)
        a.frombytes(chunk())
        setattr(st, name, a)
    lens = array("i")
    lens.frombytes(chunk())
    allspans = array("i")
    allspans.frombytes(chunk())
    st.tids = header["tids"]
    st.tmap = {t: i for i, t in enumerate(st.tids)}
    rows = header["rows"]
    for r in rows:
        for m in _MASKS:
            r[m] = int(r[m], 16)
    st.rows = rows
    st.vocab = header["vocab"]
    st.vbit = {v: 1 << i for i, v in enumerate(st.vocab)}
    st.slow = set(header["slow"])
    st.gaps = array("q", header["gaps"])
    idx.broken = set(header["broken"])
    tspans = []
    p = 0
    for n in lens:
        tspans.append(allspans[p : p + n])
        p += n
    st.tspans = tspans
    if len(st.tids) != len(rows) or len(tspans) != len(rows) or p != len(allspans):
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


def write_atomic(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` via a temp file in the same directory and ``os.replace``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ---------------------------------------------------------------- the policy


def index_path_for(path: str, cache_dir: Path) -> Path:
    return cache_dir / "index" / (cache_key(path) + ".idx")


def open_index(
    path: str | os.PathLike[str],
    cache_dir: Path | None = None,
    use_cache: bool = True,
    label: str | None = None,
) -> tuple[TraceIndex, str]:
    """The index of ``path``: reused, extended or rebuilt; returns ``(index, how)`` with how in
    ``cold | warm | incremental | uncached``."""
    path = os.path.abspath(os.fspath(path))
    if not use_cache:
        return TraceIndex.build(path, label=label), "uncached"
    cache_dir = cache_dir or default_cache_dir()
    target = index_path_for(path, cache_dir)
    fp_now = fingerprint(path)
    cached = _try_load(target, path)
    if cached is not None:
        idx, fp_old = cached
        if fp_old == fp_now:
            return idx, "warm"
        if _only_grew(path, fp_old, fp_now) and idx.complete and idx.end == fp_old["size"]:
            idx.extend(label=label)
            _save(target, idx, fingerprint(path, idx.end))
            return idx, "incremental"
    idx = TraceIndex.build(path, label=label)
    _save(target, idx, fingerprint(path, idx.end))
    return idx, "cold"


def _try_load(target: Path, path: str) -> tuple[TraceIndex, dict[str, Any]] | None:
    try:
        data = target.read_bytes()
    except OSError:
        return None
    try:
        idx, fp = load(data)
    except (ValueError, KeyError, TypeError, IndexError, struct.error, orjson.JSONDecodeError):
        return None  # corrupt or from another version: rebuilt silently
    if idx.path != path:
        return None
    return idx, fp


def _only_grew(path: str, old: dict[str, Any], new: dict[str, Any]) -> bool:
    """The file is longer and its old prefix's head and last bytes are unchanged."""
    if new["size"] <= old["size"]:
        return False
    return fingerprint(path, old["size"]) | {"mtime_ns": old["mtime_ns"]} == old


def _save(target: Path, idx: TraceIndex, fp: dict[str, Any]) -> None:
    try:
        write_atomic(target, dump(idx, fp))
    except OSError:
        pass  # an unwritable cache costs speed, never correctness
