"""The one data file a ``run_code`` call may read: rollup rows of every trace, spans of the selected ones.

The host writes plain rows (it owns the trace store; the sandbox does not import it). Spans are
capped in bytes so a selection can never move gigabytes into WASM memory; what was left out is
said in ``meta`` so sandboxed code (and the model reading its output) knows.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

DEFAULT_SPAN_BYTES = 32 << 20


def write_data(
    path: Path,
    rollups: Iterable[Mapping[str, Any]],
    spans: Iterable[Mapping[str, Any]] = (),
    *,
    max_span_bytes: int = DEFAULT_SPAN_BYTES,
    note: str = "",
) -> dict[str, Any]:
    """Write ``{"meta", "rollups", "spans"}`` atomically; returns the meta (counts and what was cut).

    Rollups go column-wise (``{"columns": [...], "rows": [[...], ...]}``): every row has the same
    keys, and naming them once halves the file and the parse inside the sandbox.
    """
    columns: list[str] = []
    rows: list[list[Any]] = []
    for row in rollups:
        if not columns:
            columns = list(row)
        rows.append([row.get(c) for c in columns])
    span_blobs: list[bytes] = []
    size = 0
    dropped = 0
    for span in spans:
        blob = orjson.dumps(span, option=orjson.OPT_NON_STR_KEYS)
        if size + len(blob) > max_span_bytes:
            dropped += 1
            continue
        span_blobs.append(blob)
        size += len(blob)
    meta = {"traces": len(rows), "spans": len(span_blobs), "spans_left_out": dropped,
            "span_bytes": size, "max_span_bytes": max_span_bytes, "note": note}
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(b'{"meta":' + orjson.dumps(meta) + b',"rollups":')
        fh.write(orjson.dumps({"columns": columns, "rows": rows}, option=orjson.OPT_NON_STR_KEYS))
        fh.write(b',"spans":[')
        fh.write(b",".join(span_blobs))
        fh.write(b"]}")
    os.replace(tmp, path)
    return meta
