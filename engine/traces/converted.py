"""Foreign-format inputs become canonical JSONL once, inside the cache directory, then go through the index.

One mechanism for every format: ``ingest.convert`` writes the canonical file; a small meta
file remembers the source's fingerprint and the conversion's bad-input tally, so an
unchanged source is never converted twice and its problems are still reported.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from engine.traces import ingest
from engine.traces.index_cache import cache_key, fingerprint, write_atomic
from engine.traces.problems import Problems


def converted(path: Path, fmt: str, base: Path) -> tuple[str, Problems | None]:
    """Canonical JSONL for a foreign-format file: converted once, reused while the source is unchanged."""
    key = cache_key(path)
    out = base / "converted" / (key + ".jsonl")
    meta = base / "converted" / (key + ".meta.json")
    fp = fingerprint(str(path))
    try:
        m = orjson.loads(meta.read_bytes())
        if m.get("fp") == fp and m.get("format") == fmt and out.is_file():
            p = Problems()
            p.skipped.update(m["problems"]["skipped"])
            p.repaired.update(m["problems"]["repaired"])
            p.examples = list(m["problems"]["examples"])
            return str(out), p
    except (OSError, ValueError, KeyError, TypeError):
        pass
    stats = ingest.convert([path], out, formats={str(path): fmt})
    write_atomic(
        meta,
        orjson.dumps({"fp": fp, "format": fmt, "source": str(path), "problems": stats.problems.to_dict()}),
    )
    return str(out), stats.problems
