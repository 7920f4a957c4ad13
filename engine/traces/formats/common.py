"""Helpers every format converter shares: reading (gzip-transparent), stable ids, attribute flattening and capping.

Kept here so each format module does one job (mapping its shape to canonical spans) and
all of them agree on how values are flattened, how huge values are capped and how
non-OTel ids become valid ones.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import orjson

from engine.traces import conventions
from engine.traces.problems import Problems
from engine.traces.span import Span

GZIP_MAGIC = b"\x1f\x8b"
MAX_VALUE_CHARS = 1_000_000  # one attribute value above this is capped (a 50 MB blob must not sink the index)
SYNTHETIC_EPOCH_NS = 1_700_000_000 * 1_000_000_000  # 2023-11-14: base for transcripts without clocks
SYNTHETIC_TIME = "halo.synthetic_time"
_VALUE_START = re.compile(r"\n(?=[\[{])")


def is_gzip(path: Path) -> bool:
    """True when the file is gzip-compressed (by magic bytes, whatever its name)."""
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def open_binary(path: Path) -> IO[bytes]:
    """Open a file for binary reading, decompressing gzip transparently."""
    if is_gzip(path):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def source_name(path: Path) -> str:
    """File name without ``.gz``: the identity synthesized ids derive from (compressing a file keeps its ids)."""
    return path.name.removesuffix(".gz")


def source_key(path: Path, data: bytes | None = None) -> str:
    """The identity synthesized ids derive from: the file's name (without ``.gz``) and a digest of its
    decompressed content. ``a/1.json`` and ``b/1.json`` are different runs; the directory is left out on
    purpose, so a file copied, moved or compressed keeps its ids and the same data read twice is one run."""
    if data is None:
        data = read_bytes(path)
    return f"{source_name(path)}|{hashlib.sha256(data).hexdigest()[:32]}"


def read_bytes(path: Path) -> bytes:
    """Whole file as bytes (gzip-transparent); for the document formats, which are small."""
    with open_binary(path) as fh:
        return fh.read()


def read_head(path: Path, n: int = 65536) -> bytes:
    """First ``n`` decompressed bytes: enough to sniff a format."""
    with open_binary(path) as fh:
        try:
            return fh.read(n)
        except (OSError, EOFError, zlib.error):  # truncated/corrupt gzip: nothing to sniff
            return b""


def iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """``(1-based line number, raw line without newline)`` for non-blank lines; streams huge files."""
    with open_binary(path) as fh:
        # open_binary gives a BufferedReader (plain file) or a GzipFile, which gets one wrapped around it
        reader = io.BufferedReader(fh) if isinstance(fh, gzip.GzipFile) else fh
        for lineno, raw in enumerate(reader, 1):
            line = raw.rstrip(b"\r\n")
            if line.strip():
                yield lineno, line


BOM = b"\xef\xbb\xbf"  # a UTF-8 byte-order mark some editors put at the start of a file


def decode_text(data: bytes, problems: Problems, where: str) -> str:
    """UTF-8 decode (a leading BOM dropped); invalid bytes are replaced (counted as a repair) so the rest of
    the record survives."""
    data = data.removeprefix(BOM)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.repair("invalid_utf8", where, str(exc)[:120])
        return data.decode("utf-8", errors="replace")


def stable_hex(n_chars: int, *parts: Any) -> str:
    """Deterministic non-zero hex id of ``n_chars`` from ``parts`` (re-converting gives identical ids)."""
    h = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8", "surrogatepass")).hexdigest()
    out = h[:n_chars]
    return out if out.strip("0") else "1".rjust(n_chars, "0")


def to_text(value: Any) -> str:
    """A JSON-ish value as attribute text: strings unchanged, everything else as compact JSON."""
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return str(value)


_INT64 = (-(2**63), 2**63 - 1)


def json_safe(v: Any) -> Any:
    """Ints beyond int64 become strings (orjson cannot write them); containers are copied."""
    if isinstance(v, bool):
        return v
    if isinstance(v, int) and not (_INT64[0] <= v <= _INT64[1]):
        return str(v)
    if isinstance(v, list):
        return [json_safe(x) for x in v]
    if isinstance(v, dict):
        return {str(k): json_safe(x) for k, x in v.items()}
    return v


def is_primitive(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


# Typed reads of one key of a loosely-shaped JSON object: the value when it has the expected
# type, else an empty value. Same result as ``obj.get(k) if isinstance(obj.get(k), T) else <empty>``.


def dict_at(obj: Mapping[str, Any], key: str) -> dict[str, Any]:
    """``obj[key]`` when it is a dict; a new empty dict when absent, ``None`` or of another type."""
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def list_at(obj: Mapping[str, Any], key: str) -> list[Any]:
    """``obj[key]`` when it is a list; a new empty list when absent, ``None`` or of another type."""
    value = obj.get(key)
    return value if isinstance(value, list) else []


def str_at(obj: Mapping[str, Any], key: str, default: str = "") -> str:
    """``obj[key]`` when it is a string (even empty); ``default`` when absent, ``None`` or of another type."""
    value = obj.get(key)
    return value if isinstance(value, str) else default


def flatten_into(out: dict[str, Any], prefix: str, value: Any, depth: int = 0) -> None:
    """Flatten nested dicts/lists into dotted OpenInference-style keys (``a.b.0.c``).

    Lists of primitives stay lists (a legal OTel attribute value); ``None`` is dropped.
    Depth is bounded so a pathological document cannot explode the key count.
    """
    if value is None:
        return
    if isinstance(value, dict) and depth < 8:
        if not value:
            return
        for k, v in value.items():
            flatten_into(out, f"{prefix}.{k}" if prefix else str(k), v, depth + 1)
        return
    if isinstance(value, (list, tuple)):
        if all(is_primitive(v) and v is not None for v in value):
            out[prefix] = list(value)
            return
        if depth < 8:
            for i, v in enumerate(value):
                flatten_into(out, f"{prefix}.{i}", v, depth + 1)
            return
    if is_primitive(value):
        out[prefix] = value
    else:
        out[prefix] = to_text(value)


def message_attrs(out: dict[str, Any], prefix: str, messages: list[Any]) -> None:
    """OpenAI chat messages → flattened OpenInference ``<prefix>.N.message.*`` attributes."""
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            continue
        base = f"{prefix}.{i}.message"
        role = m.get("role")
        if isinstance(role, str):
            out[f"{base}.role"] = role
        content = m.get("content")
        if content is not None:
            out[f"{base}.content"] = to_text(content)
        if isinstance(m.get("name"), str):
            out[f"{base}.name"] = m["name"]
        if isinstance(m.get("tool_call_id"), str):
            out[f"{base}.tool_call_id"] = m["tool_call_id"]
        calls = m.get("tool_calls")
        for j, tc in enumerate(calls if isinstance(calls, list) else []):
            if not isinstance(tc, dict):
                continue
            fn = tc.get("function")
            if not isinstance(fn, dict):  # flat shape: name/arguments on the call itself
                fn = tc
            tb = f"{base}.tool_calls.{j}.tool_call"
            if isinstance(tc.get("id"), str):
                out[f"{tb}.id"] = tc["id"]
            if fn.get("name") is not None:
                out[f"{tb}.function.name"] = str(fn.get("name"))
            if fn.get("arguments") is not None:
                out[f"{tb}.function.arguments"] = to_text(fn.get("arguments"))


def cap_values(span: Span, problems: Problems, where: str, limit: int = MAX_VALUE_CHARS) -> None:
    """Cap huge string attribute values in place, listing capped keys in ``halo.truncated_attributes``.

    Idempotent: a capped value (marker included) is never longer than ``limit``.
    """
    attrs = span.get("attributes")
    if not isinstance(attrs, dict):
        return
    capped: list[str] = []
    for k, v in attrs.items():
        if isinstance(v, str) and len(v) > limit:
            keep = limit - 64  # marker included, so a capped value is never capped again
            attrs[k] = v[:keep] + f"...[truncated {len(v) - keep} chars]"
            capped.append(k)
    if capped:
        prev = attrs.get(conventions.TRUNCATED_KEYS)
        if isinstance(prev, str):
            prev = [k for k in prev.split(",") if k]
        keys = [str(k) for k in prev] if isinstance(prev, list) else []
        attrs[conventions.TRUNCATED_KEYS] = list(dict.fromkeys(keys + capped))  # a list, as pytest capture writes it
        problems.repair("value_capped", where, ", ".join(capped)[:200])


def exception_attrs(events: Any) -> dict[str, Any]:
    """Fold the last ``exception`` event's attributes into span attributes (SpanRecord has no events)."""
    out: dict[str, Any] = {}
    if not isinstance(events, list):
        return out
    for ev in events:
        if not isinstance(ev, dict) or ev.get("name") != "exception":
            continue
        ea = ev.get("attributes")
        if isinstance(ea, dict):
            for k in ("exception.type", "exception.message", "exception.stacktrace", "exception.escaped"):
                if k in ea and ea[k] is not None:
                    out[k] = ea[k]
    return out


def iter_json_values(text: str) -> Iterator[tuple[int, Any | None, str]]:
    """``(line, value, error)`` per JSON value in ``text``: JSONL, concatenated pretty objects, or one document.

    Stdlib decoder on purpose: it accepts 128-bit ints (the OTel SDK writes ids as ints),
    which orjson refuses. A value that fails to parse is reported and parsing resumes
    at the next line that starts (column 0) with ``{`` or ``[``.
    """
    dec = json.JSONDecoder()
    pos, n, line = 0, len(text), 1
    while pos < n:
        ws = pos
        while pos < n and text[pos] in " \t\r\n,":
            pos += 1
        line += text.count("\n", ws, pos)
        if pos >= n:
            return
        try:
            value, end = dec.raw_decode(text, pos)
        except (json.JSONDecodeError, RecursionError) as exc:
            yield line, None, str(exc)[:160]
            m = _VALUE_START.search(text, pos)  # resync at the next line opening a top-level value
            if m is None:
                return
            line += text.count("\n", pos, m.start() + 1)
            pos = m.start() + 1
            continue
        yield line, value, ""
        line += text.count("\n", pos, end)
        pos = end


def iter_documents(path: Path, problems: Problems, text: str | None = None) -> Iterator[tuple[str, Any]]:
    """``(file:line, value)`` per JSON value of a document-style file; unparseable values counted, not raised."""
    if text is None:
        text = decode_text(read_bytes(path), problems, f"{path}:1")
    for line, value, err in iter_json_values(text):
        where = f"{path}:{line}"
        if value is None:
            problems.skip("malformed_json", where, err)
            continue
        yield where, value


def convert_records(
    value: Any,
    keys: tuple[str, ...],
    where: str,
    convert: Callable[[Any, Problems, str], Span | None],
    problems: Problems,
) -> Iterator[Span]:
    """Convert the records one JSON value holds: the first list under ``keys`` (an API response page),
    the list itself, or the value alone; each record's location is ``where#key[i]`` when there are several."""
    items: list[Any] = [value]
    if isinstance(value, list):
        items = value
    elif isinstance(value, dict):
        for key in keys:
            if isinstance(value.get(key), list):
                items = value[key]
                break
    for i, item in enumerate(items):
        span = convert(item, problems, where if len(items) == 1 else f"{where}#{keys[0]}[{i}]")
        if span is not None:
            yield span


NO_DOCUMENT: Any = object()


def load_document(path: Path, problems: Problems) -> Any:
    """The single JSON document a file holds (transcripts, result lists), or ``NO_DOCUMENT`` when it does
    not parse — counted as ``malformed_json``, never raised."""
    return load_keyed_document(path, problems)[0]


def load_keyed_document(path: Path, problems: Problems) -> tuple[Any, str]:
    """``load_document`` plus the file's ``source_key`` (one read for both); a leading UTF-8 BOM is ignored."""
    from engine.traces.formats import stream  # imports this module

    if stream.should_stream(path):  # a big document: built incrementally, the raw bytes never held whole
        key = stream.streaming_source_key(path)
        ok, doc = stream.build_document(path, problems)
        return (doc if ok else NO_DOCUMENT), key
    data = read_bytes(path)
    key = source_key(path, data)
    try:
        return orjson.loads(data.removeprefix(BOM)), key
    except orjson.JSONDecodeError as exc:
        problems.skip("malformed_json", f"{path}:1", str(exc))
        return NO_DOCUMENT, key
