"""Where the analysis gets its spans: a fast path for plain canonical JSONL, ``ingest`` for everything else.

The analysis must cost about as much as parsing its input once, so canonical JSONL (what
pytest capture writes, and what 1M-span dumps are) is read here with orjson per line and a
shape check; only lines that fail the check go through ``canonicalize_record`` (the same
coercion every reader applies). Other formats (tau-bench, OTLP, SWE-agent, gzip...) stream
through ``engine.traces.ingest.iter_spans``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson

from engine.traces import ingest
from engine.traces.formats.canonical import canonicalize_record
from engine.traces.problems import Problems
from engine.traces.span import Span


def _ok(obj: object) -> bool:
    """The shape the scanner indexes into without checks (anything else is canonicalized first)."""
    return (
        type(obj) is dict
        and type(obj.get("attributes")) is dict
        and type(obj.get("trace_id")) is str
        and type(obj.get("status")) is dict
        and type(obj.get("name")) is str
        and type(obj.get("start_time")) is str
        and type(obj.get("end_time")) is str
        and type(obj.get("span_id")) is str
    )


def iter_canonical_jsonl(path: Path, problems: Problems) -> Iterator[Span]:
    """orjson per line; malformed lines are skipped, odd-but-fixable records canonicalized."""
    loads = orjson.loads
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, 1):
            try:
                obj = loads(line)
            except orjson.JSONDecodeError as exc:
                if line.strip():
                    problems.skip("malformed_json", f"{path}:{lineno}", str(exc))
                continue
            if (  # the shape the scanner indexes into without checks (see _ok); inlined: runs per line
                type(obj) is dict
                and type(obj.get("attributes")) is dict
                and type(obj.get("status")) is dict
                and type(obj.get("trace_id")) is str
                and type(obj.get("name")) is str
                and type(obj.get("start_time")) is str
                and type(obj.get("end_time")) is str
                and type(obj.get("span_id")) is str
            ):
                yield obj
                continue
            span, reason, repairs = canonicalize_record(obj)
            if span is None:
                problems.skip(reason, f"{path}:{lineno}")
                continue
            for r in repairs:
                problems.repair(r, f"{path}:{lineno}")
            yield span


def iter_input_spans(paths: list[Path], problems: Problems, files: list[str]) -> Iterator[Span]:
    """Spans from every input path (directories expand); ``files`` receives the files actually read."""
    for path in ingest.expand_paths(paths):
        if not path.is_file():
            problems.skip("unreadable_file", str(path), "no such file")
            continue
        files.append(str(path))
        try:
            fmt = ingest.detect_format(path)
        except OSError as exc:
            problems.skip("unreadable_file", str(path), f"{type(exc).__name__}: {exc}")
            continue
        if fmt == "canonical" and not path.name.endswith(".gz"):
            try:
                yield from iter_canonical_jsonl(path, problems)
            except OSError as exc:
                problems.skip("unreadable_file", str(path), f"{type(exc).__name__}: {exc}")
        else:
            yield from ingest.iter_spans([path], problems, formats={str(path): fmt})
