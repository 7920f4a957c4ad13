"""Every supported trace format → canonical span dicts: detection, iteration with per-file stats, conversion.

``detect_format`` sniffs decompressed first bytes (gzip is transparent, by magic bytes);
``iter_spans`` never raises for data problems — bad records are skipped or repaired and
tallied in ``Problems`` (with ``file:line`` examples) and per-file ``FileStats``;
``convert`` writes canonical JSONL with orjson, one span per line, keys in ``make_span``
order, loadable by halo-engine 0.3.5.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson

from engine.safe_io import atomic_writer
from engine.traces import conventions
from engine.traces.formats.common import BOM, cap_values, json_safe, open_binary, read_bytes, read_head
from engine.traces.formats.stream import preview, should_stream
from engine.traces.problems import Problems
from engine.traces.span import Span

FORMATS = (
    "canonical",
    "canonical_bom",
    "otlp_json",
    "otel_sdk",
    "agents_sdk",
    "tau_bench",
    "swe_agent",
    "multi_agent",
    "openai_messages",
    "langfuse",
    "phoenix",
)
NOT_TRACE_DATA = "not_trace_data"  # detect_format's answer for JSON of no shape we know
TRACE_SUFFIXES = (".json", ".jsonl", ".ndjson", ".traj", ".gz")
_FIRST_LINE_LIMIT = 64 * 1024 * 1024


@dataclass
class FileStats:
    """What one input file yielded."""

    path: str
    format: str
    spans: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    repaired: dict[str, int] = field(default_factory=dict)


@dataclass
class IngestStats:
    """Per-file stats plus the overall bad-input tally."""

    files: list[FileStats] = field(default_factory=list)
    problems: Problems = field(default_factory=Problems)

    @property
    def spans(self) -> int:
        return sum(f.spans for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready stats (for ``--json`` outputs and findings' dataset summary)."""
        return {
            "spans": self.spans,
            "files": [
                {"path": f.path, "format": f.format, "spans": f.spans, "skipped": f.skipped, "repaired": f.repaired}
                for f in self.files
            ],
            "problems": self.problems.to_dict(),
        }

    def summary(self) -> str:
        """One line for humans: spans, files, skipped and repaired by reason."""
        parts = [f"{self.spans} spans from {len(self.files)} files"]
        if self.problems.skipped:
            parts.append(
                "skipped " + ", ".join(f"{k}={v}" for k, v in sorted(self.problems.skipped.items()))
            )
        if self.problems.repaired:
            parts.append(
                "repaired " + ", ".join(f"{k}={v}" for k, v in sorted(self.problems.repaired.items()))
            )
        return "; ".join(parts)


def format_module(name: str) -> ModuleType:
    """The converter module for a format name (each has ``iter_file(path, problems)``)."""
    if name not in FORMATS:
        raise ValueError(f"unknown trace format {name!r}; known: {', '.join(FORMATS)}")
    return importlib.import_module(f"engine.traces.formats.{name}")


# ---------------------------------------------------------------- detection


def classify(obj: Any) -> str | None:
    """Name the format of one parsed JSON value (a whole document or one JSONL record)."""
    if isinstance(obj, dict):
        if "resourceSpans" in obj or "resource_spans" in obj:
            return "otlp_json"
        if obj.get("object") in ("trace.span", "trace"):
            return "agents_sdk"
        data = obj.get("data")
        if isinstance(data, list):
            first = data[0] if data and isinstance(data[0], dict) else {}
            if first.get("object") in ("trace.span", "trace"):
                return "agents_sdk"
            if "traceId" in first or "parentObservationId" in first:
                return "langfuse"
            if "span_kind" in first or ("context" in first and "status_code" in first):
                return "phoenix"
            if "start_time_unix_nano" in first:  # Phoenix's /spans/otlpv1 response
                return "phoenix"
        if "traceId" in obj and "type" in obj and "startTime" in obj:
            return "langfuse"
        if "span_kind" in obj and isinstance(obj.get("context"), dict):
            return "phoenix"
        mod = format_module("canonical")
        if mod.looks_like(obj):
            return "canonical"
        if isinstance(obj.get("context"), dict) or isinstance(obj.get("spans"), list):
            return "otel_sdk"
        for name in ("swe_agent", "multi_agent", "openai_messages"):
            if format_module(name).looks_like(obj):
                return name
        return None
    if isinstance(obj, list):
        if format_module("tau_bench").looks_like(obj):
            return "tau_bench"
        if format_module("openai_messages").looks_like(obj):
            return "openai_messages"
        head = obj[0] if obj and isinstance(obj[0], dict) else None
        if head is not None:
            inner = classify(head)
            if inner in ("canonical", "otlp_json", "agents_sdk", "otel_sdk", "langfuse", "phoenix"):
                return inner
    return None


_HEAD_HINTS = (
    (re.compile(rb'"resource_?[sS]pans"'), "otlp_json"),
    (re.compile(rb'"object"\s*:\s*"trace(\.span)?"'), "agents_sdk"),
    (re.compile(rb'"parentObservationId"|"traceId"\s*:'), "langfuse"),
    (re.compile(rb'"span_kind"'), "phoenix"),
    (re.compile(rb'"context"\s*:\s*\{'), "otel_sdk"),
    (re.compile(rb'"traj"\s*:'), "tau_bench"),
    (re.compile(rb'"trajectory"\s*:'), "swe_agent"),
    (re.compile(rb'"history"\s*:'), "multi_agent"),
    (re.compile(rb'"role"\s*:'), "openai_messages"),
)


def _loads_any(data: bytes) -> Any:
    """orjson first; stdlib json for what orjson refuses (128-bit int ids from the OTel SDK's to_json)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data.decode("utf-8", errors="replace"))


def _first_lines(path: Path, n: int = 3, limit: int = _FIRST_LINE_LIMIT) -> list[bytes]:
    """Up to ``n`` non-blank leading lines (each read whole up to ``limit`` bytes, so a 50 MB first line still parses)."""
    out: list[bytes] = []
    with open_binary(path) as fh:
        while len(out) < n:
            line = fh.readline(limit)
            if not line:
                break
            if len(line) == limit and not line.endswith(b"\n"):
                break  # longer than the limit: its prefix cannot parse, and trying would cost GBs of memory
            line = line.strip()
            if line:
                out.append(line)
    return out


_CANONICAL_HINT = re.compile(rb'"(?:trace_id|span_id|parent_span_id)"\s*:')


def detect_format(path: str | os.PathLike[str]) -> str:
    """Sniff a file's format from its (decompressed) first bytes.

    Order: the first few lines as JSONL records (cheap, works for huge files), then the
    whole document when it is small enough (else a preview of its first 256 KB, never the whole
    file), then key hints in the first 64 KB (which also
    names files that are not valid JSON, e.g. with merge-conflict markers). Canonical JSONL
    that starts with a byte-order mark is ``canonical_bom`` (converted, not read in place);
    anything else that names no span ids is ``NOT_TRACE_DATA``, reported once per file.
    """
    p = Path(path)
    raw = read_head(p)
    head = raw.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        return "canonical"
    fmt = _sniff(p, head)
    return "canonical_bom" if fmt == "canonical" and raw.startswith(BOM) else fmt


def _sniff(p: Path, head: bytes) -> str:
    try:
        lines = _first_lines(p)
    except (OSError, EOFError, zlib.error):
        lines = [head.split(b"\n", 1)[0]]
    for i, line in enumerate(lines):
        try:
            fmt = classify(_loads_any(line.lstrip(b"\xef\xbb\xbf")))
        except (ValueError, RecursionError):
            continue
        if fmt:
            return fmt
        if i == 0:
            break  # the first line is a whole JSON value but no known record: a document, not JSONL
    try:
        if should_stream(p):  # a big document: name it from a preview of its first 256 KB
            fmt = classify(preview(p))
        else:
            fmt = classify(_loads_any(read_bytes(p).removeprefix(BOM)))
        if fmt:
            return fmt
    except (ValueError, RecursionError, OSError, EOFError, zlib.error):
        pass
    for rx, name in _HEAD_HINTS:
        if rx.search(head):
            return name
    return "canonical" if _CANONICAL_HINT.search(head) else NOT_TRACE_DATA


# ---------------------------------------------------------------- iteration


def expand_paths(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Files as given; directories expand (recursively, sorted) to their trace-looking files."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out.extend(
                sorted(
                    f
                    for f in p.rglob("*")
                    if f.is_file() and f.name.lower().endswith(TRACE_SUFFIXES) and not f.name.startswith(".")
                )
            )
        else:
            out.append(p)
    return out


def iter_spans(
    paths: Iterable[str | os.PathLike[str]],
    problems: Problems,
    formats: dict[str, str] | None = None,
    stats: IngestStats | None = None,
) -> Iterator[Span]:
    """Yield canonical spans from every file; never raises for bad data.

    ``formats`` maps a path (as given, or resolved) to a format name, bypassing detection.
    ``stats`` (optional) receives one ``FileStats`` per file.
    """
    for path in expand_paths(paths):
        fp = Problems()
        fmt = (formats or {}).get(str(path)) or (formats or {}).get(str(path.resolve()))
        fs = FileStats(str(path), fmt or "unknown")
        try:
            if fmt is None:
                fmt = detect_format(path)
                fs.format = fmt
            if fmt == NOT_TRACE_DATA:
                fp.skip(NOT_TRACE_DATA, str(path), "not trace data: no known trace format or span fields")
            elif fmt not in FORMATS:
                fp.skip("unknown_format", str(path), f"{fmt!r}; known: {', '.join(FORMATS)}")
            else:
                for span in format_module(fmt).iter_file(path, fp):
                    span["attributes"].setdefault(conventions.SOURCE_FORMAT, fmt)
                    if fmt != "canonical":  # the canonical reader caps with exact line numbers itself
                        cap_values(span, fp, f"{path}:span {fs.spans + 1}")
                    fs.spans += 1
                    yield span
        except (OSError, EOFError, zlib.error) as exc:  # missing, unreadable, truncated or corrupt gzip
            fp.skip("unreadable_file", str(path), f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # noqa: BLE001 - a converter bug on odd data must not abort the whole run
            fp.skip("converter_error", f"{path}:span {fs.spans + 1}", f"{type(exc).__name__}: {exc}")
        fs.skipped = dict(fp.skipped)
        fs.repaired = dict(fp.repaired)
        problems.merge(fp)
        if stats is not None:
            stats.files.append(fs)


def dump_span(span: Span) -> bytes:
    """One span as a JSON line body (orjson; values orjson refuses, like 128-bit ints, become strings)."""
    try:
        return orjson.dumps(span, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return orjson.dumps(json_safe(span), option=orjson.OPT_NON_STR_KEYS, default=str)


def convert(
    paths: Iterable[str | os.PathLike[str]],
    out_path: str | os.PathLike[str],
    formats: dict[str, str] | None = None,
) -> IngestStats:
    """Convert every input to one canonical JSONL file (written atomically) and return the stats."""
    stats = IngestStats()
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(out) as fh:  # unique temp, fsync, rename; never over a symlink, FIFO or device
        for span in iter_spans(paths, stats.problems, formats, stats):
            fh.write(dump_span(span))
            fh.write(b"\n")
    return stats
