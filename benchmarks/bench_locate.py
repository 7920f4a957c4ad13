"""How long ``locate_modes`` takes on a generated 2,000-file repository (goal: ≤ 1 s).

    python benchmarks/bench_locate.py [--files 2000] [--repeat 3]

Helper modules carry ~12 KB of ordinary code each (about 20 MB in all). The repository mixes tool modules, agent builders, plain helpers, tests and decoys (the same names in
comments, docstrings and strings); the findings name a tool error, a hallucinated tool, a refusal and
a budget. The first run is cold (page cache warmed by generation, nothing else cached); each repeat
builds the index again, as every analysis does.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from engine.code.index import build_index
from engine.code.locate import locate_modes
from engine.findings import FailureMode, Findings

_TOOL_MODULE = '''"""Tools of service {i}."""
from agents import function_tool


@function_tool
def tool_{i}(order_id: str) -> str:
    """Look something up for service {i}."""
    if not order_id:
        raise ValueError(f"service {i} rejects the id {{order_id!r}} (expected digits)")
    return f"ok {{order_id}}"
'''
_HELPER = '''"""Helpers {i}: nothing a trace names."""


def helper_{i}(x: int) -> int:
    # tool_{j} is mentioned here only in a comment
    text = "tool_{j} appears in an unrelated string"
    return x * {i} + len(text)


class Thing{i}:
    def method(self, a: int, b: int) -> int:
        return a + b + {i}
'''
# ~12 KB of ordinary code per helper module (the size of an average module in site-packages)
_BULK = "".join(f'''

def compute_{{i}}_{k}(values: list[int], scale: float = 1.5) -> dict[str, float]:
    """Summarise values (filler {k})."""
    total = 0.0
    for v in values:
        if v % 2:
            total += v * scale
        else:
            total -= v / scale
    result = {{{{"total": total, "count": float(len(values))}}}}
    if not values:
        raise ValueError("no values to summarise in batch {k}")
    return result
''' for k in range(30))
_AGENT = '''from agents import Agent
from pkg{g}.tools_{i} import tool_{i}

MAX_TURNS = 8


def build():
    return Agent(name="agent_{i}", instructions="help", tools=[tool_{i}])
'''
_TEST = '''from pkg0.tools_{i} import tool_{i}


def test_tool_{i}():
    def tool_{j}():
        raise ValueError("service {j} rejects the id 'x' (expected digits)")
    assert tool_{i}
'''


def make_repo(root: Path, files: int) -> None:
    """``files`` Python files in 20 packages: 1 in 10 a tool module, 1 in 50 an agent, 1 in 10 a test."""
    for n in range(files):
        g = n % 20
        pkg = root / f"pkg{g}"
        pkg.mkdir(exist_ok=True)
        if n % 10 == 0:
            (pkg / f"tools_{n}.py").write_text(_TOOL_MODULE.format(i=n))
        elif n % 50 == 1:
            (pkg / f"agent_{n}.py").write_text(_AGENT.format(i=n - 1, g=g))
        elif n % 10 == 3:
            tests = root / "tests" / f"pkg{g}"
            tests.mkdir(parents=True, exist_ok=True)
            (tests / f"test_{n}.py").write_text(_TEST.format(i=n - 3, j=(n + 7) % files))
        else:
            (pkg / f"helper_{n}.py").write_text(_HELPER.format(i=n, j=(n * 7) % files) + _BULK.format(i=n))


def findings() -> Findings:
    def mode(category: str, key: str, example: str | None = None) -> FailureMode:
        return FailureMode(id=f"fm-{category}", title=category, category=category, detector=category, key=key,
                           example=example)

    return Findings(failure_modes=[
        mode("tool_error", "tool_1230\x1fError: service <*> rejects the id '<*>' (expected digits)"),
        mode("hallucinated_tool", "cancel_everything"),
        mode("refusal", "agent_50", "I can't help with that."),
        mode("budget_exhaustion", "max turns"),
        mode("retry_loop", "tool_770"),
    ])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_repo(root, args.files)
        n = sum(1 for _ in root.rglob("*.py"))
        times, cpu = [], []
        for _ in range(args.repeat):
            f = findings()
            t0, c0 = time.perf_counter(), time.process_time()
            locate_modes(f, root)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        t0 = time.process_time()
        full = build_index(root)
        t_full = time.process_time() - t0
        print(f"{n} files: worst case, every file parsed: {t_full:.3f} s CPU ({full.files_parsed} parsed)")
        print(f"{n} files: locate_modes wall {', '.join(f'{t:.3f}' for t in times)} s (best {min(times):.3f} s), "
              f"CPU best {min(cpu):.3f} s")
        for m in f.failure_modes:
            print(f"  {m.category}: " + ", ".join(f"{loc.path}:{loc.line} ({loc.kind})" for loc in m.locations))


if __name__ == "__main__":
    main()
