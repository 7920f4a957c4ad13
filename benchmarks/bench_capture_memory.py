"""Peak memory of one test that emits many spans: ``pytest`` with and without ``--halo``.

    python benchmarks/bench_capture_memory.py [--spans 200000] [--spans-per-trace 100]

Generates a one-test suite whose conftest installs an SDK ``TracerProvider`` (as an
instrumented app would); the test emits ``--spans`` spans in traces of ``--spans-per-trace``
spans, half through the SDK and half through the manual API (``trace_agent`` / ``trace_tool``). Each arm runs in a child process; the peak RSS is the child's
``ru_maxrss`` (``RUSAGE_CHILDREN`` after one child only: a fresh ``resource`` reading per
arm, taken in a one-shot helper process). The goal is halo adding at most 64 MB.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

GOAL_MB = 64.0

CONFTEST = '''
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

trace.set_tracer_provider(TracerProvider())
'''

TEST = '''
from opentelemetry import trace
from pytest_halo import trace_agent, trace_tool

SPANS = {spans}
PER_TRACE = {per_trace}


@trace_tool
def lookup(i):
    return "result " * 20


def test_many_spans():
    tracer = trace.get_tracer("bench")
    for t in range(SPANS // 2 // PER_TRACE):
        with tracer.start_as_current_span("agent run", attributes={{"gen_ai.agent.name": "bench"}}):
            for i in range(PER_TRACE - 1):
                with tracer.start_as_current_span("tool call", attributes={{
                        "openinference.span.kind": "TOOL", "tool.name": f"tool_{{i % 7}}",
                        "input.value": f'{{{{"q": "{{i}}"}}}}', "output.value": "result " * 20}}):
                    pass
    for t in range(SPANS // 2 // PER_TRACE):
        with trace_agent("bench"):
            for i in range(PER_TRACE - 1):
                lookup(i)
'''

# Run one pytest in a child and print its peak RSS (KiB on Linux) as JSON.
MEASURE = '''
import json, resource, subprocess, sys
proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *sys.argv[1:]],
                      capture_output=True, text=True)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"rc": proc.returncode, "peak_kib": peak, "tail": proc.stdout[-400:]}))
'''


def measure(project: Path, *args: str) -> dict[str, object]:
    """Peak RSS of a child ``pytest`` run in ``project`` (its own grandchild-free helper process)."""
    out = subprocess.run([sys.executable, "-c", MEASURE, *args], cwd=project, capture_output=True, text=True,
                         check=True)
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spans", type=int, default=200_000)
    ap.add_argument("--spans-per-trace", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "conftest.py").write_text(CONFTEST)
        (project / "test_many.py").write_text(TEST.format(spans=args.spans, per_trace=args.spans_per_trace))
        plain = measure(project)
        halo = measure(project, "--halo", "--halo-skip-analysis")
        traces = project / ".halo" / "traces.jsonl"
        lines = sum(1 for _ in traces.open("rb")) if traces.exists() else 0
    total = args.spans // 2 // args.spans_per_trace * args.spans_per_trace * 2
    for name, got in (("without halo", plain), ("with --halo", halo)):
        if got["rc"] != 0:
            raise SystemExit(f"{name}: pytest exited {got['rc']}: {got['tail']}")
    plain_mb = int(plain["peak_kib"]) / 1024  # type: ignore[call-overload]
    halo_mb = int(halo["peak_kib"]) / 1024  # type: ignore[call-overload]
    print(f"one test, {total} spans in traces of {args.spans_per_trace} (half OTel SDK, half manual API)")
    print(f"peak RSS without halo: {plain_mb:.1f} MB")
    print(f"peak RSS with --halo:  {halo_mb:.1f} MB  (+{halo_mb - plain_mb:.1f} MB; goal <= +{GOAL_MB:.0f} MB)")
    print(f"spans written: {lines} of {total}")


if __name__ == "__main__":
    main()
