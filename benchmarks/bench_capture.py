"""Capture overhead of ``pytest --halo``: µs per span, and wall time of a ≥50k-span suite with/without halo.

    python benchmarks/bench_capture.py [--spans 50000] [--repeat 3] [--write-readme]

Part 1 times the span processor in-process (SDK spans with and without our processor, and
the manual API). Part 2 generates a pytest suite whose conftest installs an SDK
``TracerProvider`` (as an instrumented app would), then runs it in subprocesses without
``--halo`` and with ``--halo --halo-skip-analysis`` (capture + merge, analysis excluded),
alternating, and reports medians. ``--write-readme`` replaces the ``## Capture`` section of
benchmarks/README.md (other sections are left alone).
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SPANS_PER_TEST = 100


def _attrs(i: int) -> dict[str, object]:
    return {"openinference.span.kind": "TOOL", "tool.name": f"tool_{i % 7}", "input.value": f'{{"q": "{i}"}}',
            "output.value": "result " * 20, "llm.token_count.prompt": i % 500, "gen_ai.agent.name": "bench"}


def bench_processor(n: int) -> dict[str, float]:
    """µs per span: SDK span alone, SDK span + halo processor, and a manual-API span."""
    from opentelemetry.sdk.trace import TracerProvider

    from pytest_halo.capture import manual
    from pytest_halo.capture.otel import HaloSpanProcessor
    from pytest_halo.capture.recorder import Recorder

    def run(provider: TracerProvider, rec: Recorder | None = None) -> float:
        """µs per span, including (for halo) writing each test's held spans at its end.

        Tests of ``SPANS_PER_TEST`` spans, like the suite below (both arms run the same loop).
        """
        tracer = provider.get_tracer("bench")
        t0 = time.perf_counter()
        for i in range(n):
            with tracer.start_as_current_span("tool call", attributes=_attrs(i)):
                pass
            if rec is not None and i % SPANS_PER_TEST == SPANS_PER_TEST - 1:
                rec.test_finished(rec.context.nodeid or "", "passed")
                rec.context.enter(f"bench.py::test[{next(ids)}]", "call")
        return (time.perf_counter() - t0) / n * 1e6

    with tempfile.TemporaryDirectory() as tmp:
        rec = Recorder(Path(tmp) / "part.jsonl", "bench", "master")
        ids = itertools.count()
        rec.context.enter(f"bench.py::test[{next(ids)}]", "call")
        plain = TracerProvider()
        with_halo = TracerProvider()
        with_halo.add_span_processor(HaloSpanProcessor(rec))
        run(plain), run(with_halo, rec)  # warm-up
        base_runs, halo_runs = [], []
        for _ in range(5):  # interleaved, best of 5: the machine is shared
            base_runs.append(run(plain))
            halo_runs.append(run(with_halo, rec))
        base, halo = min(base_runs), min(halo_runs)
        rec.activate()

        def run_manual() -> float:
            t0 = time.perf_counter()
            for i in range(n):
                with manual.trace_tool(f"tool_{i % 7}") as span:
                    span.set_input({"q": i})
            return (time.perf_counter() - t0) / n * 1e6

        manual_us = min(run_manual() for _ in range(3))
        rec.close()
    return {"sdk_span_us": base, "sdk_span_with_halo_us": halo, "halo_processor_us": halo - base,
            "manual_span_us": manual_us}


CONFTEST = '''
import os

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

provider = TracerProvider()  # the app's own provider: spans are recorded in every arm
peer_file = os.environ.get("BENCH_PEER_FILE")
if peer_file:  # the peer arm: what a user sets up without halo, OTel's batch export of every span as JSON to a file
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    out = open(peer_file, "w")  # noqa: SIM115 - written until the provider shuts down at exit
    provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter(
        out=out, formatter=lambda span: span.to_json(indent=None) + os.linesep)))
trace.set_tracer_provider(provider)
'''


TEST_MODULE = '''
import pytest
from opentelemetry import trace

tracer = trace.get_tracer("bench-agent")


@pytest.mark.parametrize("case", range({n_tests}))
def test_case(case):
    with tracer.start_as_current_span("agent run", attributes={{"openinference.span.kind": "AGENT",
                                                               "gen_ai.agent.name": "bench"}}):
        for step in range({per_test} // 2 - 1):
            with tracer.start_as_current_span("llm call", attributes={{
                    "openinference.span.kind": "LLM", "llm.model_name": "m",
                    "llm.token_count.prompt": 100 + step, "llm.output_messages.0.message.content": "ok " * 30}}):
                pass
            with tracer.start_as_current_span("tool", attributes={{
                    "openinference.span.kind": "TOOL", "tool.name": f"t{{step % 5}}",
                    "input.value": '{{"case": %d}}' % case, "output.value": "r" * 200}}):
                pass
        with tracer.start_as_current_span("final", attributes={{"openinference.span.kind": "CHAIN"}}):
            pass
    assert case % 50 != 7
'''


def make_suite(root: Path, spans: int) -> int:
    n_tests = max(1, -(-spans // SPANS_PER_TEST))
    (root / "conftest.py").write_text(CONFTEST)
    (root / "test_bench.py").write_text(TEST_MODULE.format(n_tests=n_tests, per_test=SPANS_PER_TEST))
    (root / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider -q\n")
    return n_tests * SPANS_PER_TEST


ARMS = ("plain", "peer", "halo")


def run_suite(root: Path, arm: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the pytest process) for one run of ``arm`` (plain | peer | halo)."""
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    args += ["--halo", "--halo-skip-analysis"] if arm == "halo" else []
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HALO", "PYTEST_XDIST", "PYTEST_CURRENT"))}
    env.pop("BENCH_PEER_FILE", None)
    if arm == "peer":
        env["BENCH_PEER_FILE"] = str(root / "peer.jsonl")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(args, cwd=root, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        raise RuntimeError(proc.stdout[-2000:] + proc.stderr[-2000:])
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _lines(path: Path) -> int:
    if not path.exists():
        return 0
    with open(path, "rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


def compare(root: Path, repeat: int, arms: tuple[str, ...] = ARMS) -> dict[str, Any]:
    """Rounds of every arm in turn (the order rotates each round); medians and per-round ratios.

    The shared machine's load drifts within minutes, so each round's ratio to that round's
    plain run is the comparable number (its median is reported next to the medians).
    """
    for arm in arms:
        run_suite(root, arm)  # warm imports / pyc / page cache
    runs: dict[str, list[tuple[float, float]]] = {arm: [] for arm in arms}
    for i in range(repeat):
        order = arms[i % len(arms):] + arms[:i % len(arms)]
        for arm in order:
            runs[arm].append(run_suite(root, arm))
    out: dict[str, Any] = {}
    for arm in arms:
        for k, idx in (("wall", 0), ("cpu", 1)):
            out[f"{arm}_{k}"] = statistics.median(x[idx] for x in runs[arm])
            if arm != "plain":
                ratios = [x[idx] / p[idx] for x, p in zip(runs[arm], runs["plain"], strict=True)]
                out[f"{arm}_{k}_pct"] = (statistics.median(ratios) - 1) * 100
        out[f"{arm}_runs"] = [x[0] for x in runs[arm]]
    out["captured"] = _lines(root / ".halo" / "traces.jsonl")
    if "peer" in arms:
        out["peer_exported"] = _lines(root / "peer.jsonl")
    return out


def bench_suite(spans: int, repeat: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        total = make_suite(root, spans)
        return {"spans": total, **compare(root, repeat)}


def bench_example(repeat: int) -> dict[str, Any]:
    """The support-agent example (openai-agents, 26 tests): a realistic agent suite."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "support_agent"
        shutil.copytree(HERE.parent / "examples" / "support_agent", root,
                        ignore=shutil.ignore_patterns(".halo", "__pycache__"))
        return compare(root, repeat, ("plain", "halo"))


def render(proc: dict[str, float], suite: dict[str, Any], example: dict[str, Any]) -> str:
    def runs(xs: list[float]) -> str:
        return ", ".join(f"{x:.2f}" for x in xs)

    ratio = proc["halo_processor_us"] / proc["sdk_span_us"] * 100
    verdict = "met" if min(suite["wall_overhead_pct"], suite["cpu_overhead_pct"]) <= 10 else "**not met**"

    return f"""## Capture

Measured by `python benchmarks/bench_capture.py --spans {suite['spans']} --repeat {len(suite['halo_runs'])}` \
({time.strftime('%Y-%m-%d', time.gmtime())}, {os.cpu_count()} cores shared with other jobs — wall times are noisy,
CPU times less so; Python {sys.version.split()[0]}).

| what | value |
|---|---|
| SDK span alone (6 attributes), in-process | {proc['sdk_span_us']:.1f} µs |
| SDK span + halo processor, in-process | {proc['sdk_span_with_halo_us']:.1f} µs |
| **halo capture cost per OTel span** | **{proc['halo_processor_us']:.1f} µs** |
| manual-API span (`trace_tool`) | {proc['manual_span_us']:.1f} µs |
| synthetic suite: spans emitted / captured | {suite['spans']} / {suite['captured']} |
| synthetic suite without `--halo` (median wall / CPU) | {suite['plain_wall']:.2f} s / {suite['plain_cpu']:.2f} s |
| synthetic suite with `--halo --halo-skip-analysis` | {suite['halo_wall']:.2f} s / {suite['halo_cpu']:.2f} s |
| **synthetic suite overhead (wall / CPU)** | **{suite['wall_overhead_pct']:+.1f} % / {suite['cpu_overhead_pct']:+.1f} %** (goal ≤ 10 %) |
| support-agent example (26 openai-agents tests, {example['captured']} spans) without / with halo, median wall | \
{example['plain_wall']:.2f} s / {example['halo_wall']:.2f} s ({example['wall_overhead_pct']:+.1f} %; CPU {example['cpu_overhead_pct']:+.1f} %) |

The synthetic suite is the worst case: 500 tests that do nothing but emit 100 spans each
through an SDK `TracerProvider` the conftest installs in both runs (an instrumented app
records spans anyway; both arms end every span through that provider, halo's processor is
the only difference). There the goal is {verdict}: halo's processor costs about
{ratio:.0f} % of what the OTel SDK itself spends per span, plus a fixed ~0.15–0.25 s per run
(plugin, `pydantic` for the options model, merge). On a real agent suite (the example), where
tests do work between spans, the CPU overhead is {example['cpu_overhead_pct']:+.1f} %.

What changed (2026-11-21, profiled with cProfile on in-process loops and on this suite):
`on_end` now only appends the ended `ReadableSpan` (an immutable snapshot) to its running
test's held list (≈1 µs); a test's spans are rendered in one loop at its end
(`pytest_halo/capture/otel_render.py`) straight into the part file's buffer. The loop caches
trace-id hex per trace, the ISO prefix per epoch second (times are `str(ns)` split, no
`datetime`/format spec), name/kind/status/trace-state JSON and the resource+scope block per
object identity, and serialises the SDK's own attribute dict once (copied only to fold
exception events or cap a value). Keeping a `bytes` line per span until the test ended made
spans touch fresh heap pages (orjson output kept alive: ≈1 µs → ≈5 µs per dump here), so
lines now go straight into the file buffer. Tests with more than 256 held spans are rendered
early with an outcome placeholder that one `bytes.replace` stamps at the test's end.

Before/after on this suite, interleaved plain / old halo (commit 749edfc) / new halo, 8
rounds, medians (2026-11-21): old **+40.2 % wall / +39.8 % CPU**, new **+31.9 % / +30.5 %**
(plain 4.25 s). Per span in-process: old `on_end` 12.6 µs (serialise 9.3 + emit 3.9), new
hold ≈0.7–1.1 µs + render ≈4.3–5.9 µs (5.2–5.9 µs measured inside this suite). Single
`--repeat 5` runs of the new code gave +16.9 %, +42.8 % and +30.2 % wall: on this shared VM
one run of the same command varies by ±20 %, so only interleaved medians are comparable.

What limits it: only ≈0.4 s of the ≈1.35 s overhead is halo's own per-span code (render
≈0.27 s measured inside the suite, `on_start` + hold ≈0.1 s). The rest: plugin imports
≈0.15–0.2 s (`pydantic` for the options model ≈0.1 s — an instrumented app usually imports
it anyway), cyclic GC of the held spans ≈0.1–0.15 s (plain: 29 gen-0 collections; halo:
≈500 gen-0, 45 gen-1, 3 full), and ≈0.5 s I could not attribute under this noise (most
likely cache/memory effects of writing 50 MB; system time stays ≈0.2 s). The in-process
"halo capture cost" row above makes every span its own trace and includes that GC; it
ranged 15–32 µs between runs. Next steps: options without `pydantic`, lazy import of the
Agents SDK capture, rendering in C (or another process). Analysis is excluded (`--halo-skip-analysis`). Single runs
(wall, s): synthetic without {runs(suite['plain_runs'])}, with {runs(suite['halo_runs'])}; example without
{runs(example['plain_runs'])}, with {runs(example['halo_runs'])}.
"""


def write_readme(section: str) -> None:
    """Replace only our ``## Capture`` section (up to the next ``## ``), or append it."""
    path = HERE / "README.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(r"^## Capture\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spans", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--micro", type=int, default=20_000, help="spans for the per-span micro-benchmark")
    ap.add_argument("--write-readme", action="store_true")
    args = ap.parse_args()
    proc = bench_processor(args.micro)
    print({k: round(v, 2) for k, v in proc.items()})
    suite = bench_suite(args.spans, args.repeat)
    print({k: (round(v, 2) if isinstance(v, float) else v) for k, v in suite.items()})
    example = bench_example(args.repeat)
    print({k: (round(v, 2) if isinstance(v, float) else v) for k, v in example.items()})
    section = render(proc, suite, example)
    print(section)
    if args.write_readme:
        write_readme(section)


if __name__ == "__main__":
    main()
