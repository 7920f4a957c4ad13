"""Streaming document formats: peak RSS and wall time of converting big OTLP/JSON, ``{"spans": []}`` and
tau-bench-like files, against ``orjson.loads`` of the same file (and the whole-document converter path
when asked), each in a fresh child process (peak RSS = the child's ``ru_maxrss``).

Inputs are generated on demand under ``benchmarks/data/`` (gitignored) and never committed::

    python benchmarks/bench_streaming.py --kinds otlp,spans,tau --mb 200 [--pretty] [--whole]
    python benchmarks/bench_streaming.py --kinds otlp --mb 2048 --pretty     # the 2 GB goal (check df -h first)

orjson and the whole path are skipped above ``--max-whole-mb`` (they need about 7x the file in RAM).

``--whole`` also runs the whole-document converter path (it holds the document: expect GBs of RSS).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data"
WORDS = "the agent looked up the order then called a tool and summarised the refund policy for the user".split()


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def otlp_span(rng: random.Random, i: int) -> dict[str, Any]:
    """One OTLP/JSON span (protobuf JSON mapping: hex ids, int64 as strings, typed AnyValue attributes)."""
    t0 = 1_700_000_000_000_000_000 + i * 1_000_000
    trace = f"{i // 20 + 1:032x}"
    attrs = [
        {"key": "openinference.span.kind", "value": {"stringValue": rng.choice(["LLM", "TOOL", "AGENT"])}},
        {"key": "llm.model_name", "value": {"stringValue": "gpt-4.1-mini"}},
        {"key": "input.value", "value": {"stringValue": _text(rng, 40)}},
        {"key": "output.value", "value": {"stringValue": _text(rng, 30)}},
        {"key": "llm.token_count.prompt", "value": {"intValue": str(rng.randint(10, 5000))}},
        {"key": "llm.temperature", "value": {"doubleValue": rng.random()}},
        {"key": "retry", "value": {"boolValue": rng.random() < 0.1}},
        {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}, {"stringValue": "b"}]}}},
    ]
    span: dict[str, Any] = {
        "traceId": trace,
        "spanId": f"{i + 1:016x}",
        "parentSpanId": "" if i % 20 == 0 else f"{i - i % 20 + 1:016x}",
        "name": rng.choice(["chat gpt-4.1-mini", "execute_tool search", "invoke_agent planner"]),
        "kind": rng.choice([1, 3]),
        "startTimeUnixNano": str(t0),
        "endTimeUnixNano": str(t0 + rng.randint(1000, 900_000)),
        "attributes": attrs,
        "status": {},
    }
    if rng.random() < 0.05:
        span["status"] = {"code": 2, "message": "TimeoutError: tool call exceeded 30s"}
        span["events"] = [{"name": "exception", "timeUnixNano": str(t0), "attributes": [
            {"key": "exception.type", "value": {"stringValue": "TimeoutError"}},
            {"key": "exception.message", "value": {"stringValue": "tool call exceeded 30s"}},
        ]}]
    return span


def sdk_span(rng: random.Random, i: int) -> dict[str, Any]:
    """One OpenTelemetry SDK ``ReadableSpan.to_json()`` span."""
    return {
        "name": rng.choice(["chat gpt-4.1-mini", "execute_tool search"]),
        "context": {"trace_id": f"0x{i // 20 + 1:032x}", "span_id": f"0x{i + 1:016x}", "trace_state": "[]"},
        "kind": "SpanKind.INTERNAL",
        "parent_id": None if i % 20 == 0 else f"0x{i - i % 20 + 1:016x}",
        "start_time": "2025-05-23T10:00:00.000000Z",
        "end_time": "2025-05-23T10:00:01.500000Z",
        "status": {"status_code": "OK" if rng.random() > 0.05 else "ERROR"},
        "attributes": {"gen_ai.operation.name": "chat", "input.value": _text(rng, 40), "output.value": _text(rng, 30),
                       "gen_ai.usage.input_tokens": rng.randint(1, 9000), "temperature": rng.random()},
        "events": [],
        "links": [],
        "resource": {"attributes": {"service.name": "agent-svc"}, "schema_url": ""},
    }


def tau_run(rng: random.Random, i: int) -> dict[str, Any]:
    """One tau-bench result: a task trial with its message trajectory."""
    traj: list[dict[str, Any]] = [{"role": "system", "content": _text(rng, 60)}, {"role": "user", "content": _text(rng, 20)}]
    for k in range(rng.randint(3, 8)):
        cid = f"call_{i}_{k}"
        traj.append({"role": "assistant", "content": None, "tool_calls": [
            {"id": cid, "type": "function", "function": {"name": "get_order", "arguments": json.dumps({"id": k})}}]})
        traj.append({"role": "tool", "tool_call_id": cid, "name": "get_order", "content": _text(rng, 30)})
    traj.append({"role": "assistant", "content": _text(rng, 25)})
    return {"task_id": i % 50, "trial": i // 50, "reward": float(rng.random() < 0.6),
            "info": {"task": {"user_id": f"u{i}", "instruction": _text(rng, 20), "actions": []}}, "traj": traj}


def _write_array(fh: Any, items: Iterator[bytes], total: int, head: bytes, tail: bytes) -> None:
    fh.write(head)
    written = 0
    for n, blob in enumerate(items):
        if n:
            fh.write(b",\n")
        fh.write(blob)
        written += len(blob) + 2
        if written >= total:
            break
    fh.write(tail)


def generate(kind: str, mb: int, pretty: bool, out: Path, seed: int = 7) -> Path:
    """Write one ``kind`` file of about ``mb`` MB (kept when already there)."""
    if out.exists() and out.stat().st_size >= mb * 1_000_000:
        return out
    rng = random.Random(seed)
    opt = orjson.OPT_INDENT_2 if pretty else 0
    total = mb * 1_000_000
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with open(tmp, "wb", buffering=1 << 20) as fh:
        counter = iter(range(1 << 62))
        if kind == "otlp":
            head = (b'{"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": '
                    b'{"stringValue": "agent-svc"}}]}, "scopeSpans": [{"scope": {"name": "bench", "version": "1"}, "spans": [\n')
            _write_array(fh, (orjson.dumps(otlp_span(rng, i), option=opt) for i in counter), total, head, b"\n]}]}]}\n")
        elif kind == "spans":
            _write_array(fh, (orjson.dumps(sdk_span(rng, i), option=opt) for i in counter), total, b'{"spans": [\n', b"\n]}\n")
        elif kind == "tau":
            _write_array(fh, (orjson.dumps(tau_run(rng, i), option=opt) for i in counter), total, b"[\n", b"\n]\n")
        else:
            raise SystemExit(f"unknown kind {kind!r}")
    tmp.rename(out)
    return out


CHILD = r"""
import resource, sys, time
mode, path = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
if mode == "orjson":
    import orjson
    with open(path, "rb") as fh:
        doc = orjson.loads(fh.read())
    n = -1
else:
    import ijson
    from engine.traces import ingest
    from engine.traces.formats import stream
    if mode == "whole":
        stream.STREAM_ABOVE = 1 << 62
    stats = ingest.convert([path], sys.argv[3])
    n = stats.spans
    print("backend", ijson.backend, file=sys.stderr)
wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_SELF)
print(f"{wall:.2f} {ru.ru_maxrss / 1024:.0f} {ru.ru_utime + ru.ru_stime:.2f} {n}")
"""


def measure(mode: str, path: Path) -> dict[str, Any]:
    out = DATA / f"{path.stem}.{mode}.jsonl"
    proc = subprocess.run([sys.executable, "-c", CHILD, mode, str(path), str(out)], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        return {"mode": mode, "error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    wall, rss, cpu, spans = proc.stdout.split()
    backend = next((ln.split()[1] for ln in proc.stderr.splitlines() if ln.startswith("backend")), "")
    return {"mode": mode, "wall_s": float(wall), "rss_mb": float(rss), "cpu_s": float(cpu), "spans": int(spans), "backend": backend}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kinds", default="otlp,spans,tau")
    ap.add_argument("--mb", type=int, default=200, help="size of each generated file (MB)")
    ap.add_argument("--pretty", action="store_true", help="pretty-printed (indented) documents")
    ap.add_argument("--whole", action="store_true", help="also run the whole-document converter path")
    ap.add_argument("--no-orjson", action="store_true", help="skip the orjson.loads reference")
    ap.add_argument("--max-whole-mb", type=int, default=600, help="largest file given to orjson / the whole path")
    args = ap.parse_args()
    print(f"load: {os.getloadavg()}", file=sys.stderr)
    for kind in args.kinds.split(","):
        path = generate(kind, args.mb, args.pretty, DATA / f"stream_{kind}_{args.mb}mb{'_pretty' if args.pretty else ''}.json")
        size = path.stat().st_size / 1e6
        big = args.mb > args.max_whole_mb  # orjson / the whole path need ~7x the file in RAM: not on a shared box
        modes = ["stream"] + (["whole"] if args.whole and not big else []) + ([] if args.no_orjson or big else ["orjson"])
        for mode in modes:
            r = measure(mode, path)
            print(json.dumps({"kind": kind, "file_mb": round(size), **r}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
