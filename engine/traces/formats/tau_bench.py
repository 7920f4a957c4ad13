"""tau-bench results (a JSON list of ``{task_id, trial, reward, info, traj}``) → one trace per task trial.

``traj`` is an OpenAI-style message list; the transcript module turns it into spans. The
run's nodeid is ``tau-bench-<env>::task_<id>::trial_<n>`` (env guessed from the file
name: airline / retail / telecom), outcome ``passed`` when reward ≥ 1.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.traces import conventions
from engine.traces.formats.common import NO_DOCUMENT, dict_at, load_keyed_document, source_name, to_text
from engine.traces.formats.stream import JsonEvents, should_stream, streaming_source_key, with_exact_retry
from engine.traces.formats.transcript import Run, spans_for_run
from engine.traces.problems import Problems
from engine.traces.span import Span

FORMAT = "tau_bench"
ENVS = ("airline", "retail", "telecom")


def looks_like(obj: Any) -> bool:
    """A list whose first object has ``traj`` and ``task_id`` / ``reward``."""
    if not isinstance(obj, list) or not obj or not isinstance(obj[0], dict):
        return False
    first = obj[0]
    return "traj" in first and ("task_id" in first or "reward" in first)


def env_of(path: Path) -> str | None:
    low = path.name.lower()
    return next((e for e in ENVS if e in low), None)


def _reward(rec: dict[str, Any]) -> float | None:
    r = rec.get("reward")
    if isinstance(r, bool):
        return float(r)
    if isinstance(r, (int, float)):
        return float(r)
    return None


def iter_file(path: Path, problems: Problems) -> Iterator[Span]:
    """Yield the spans of every run in a tau-bench results file (a big file is read one run at a time)."""
    env = env_of(path)
    suite = f"tau-bench-{env}" if env else "tau-bench"
    if should_stream(path):
        source = streaming_source_key(path)
        for rec in with_exact_retry(path, problems, lambda ev: _walk(ev, path)):
            if rec[0] == "skip":
                problems.skip(rec[1], rec[2], rec[3])
            else:
                yield from _run_spans(path, rec[1], rec[2], source, suite, problems)
        return
    doc, source = load_keyed_document(path, problems)
    if doc is NO_DOCUMENT:
        return
    if isinstance(doc, dict) and isinstance(doc.get("results"), list):
        doc = doc["results"]
    if not isinstance(doc, list):
        problems.skip("not_a_list", f"{path}:1", type(doc).__name__)
        return
    for i, rec in enumerate(doc):
        yield from _run_spans(path, i, rec, source, suite, problems)


def _walk(ev: JsonEvents, path: Path) -> Iterator[tuple[Any, ...]]:
    """("run", index, record) per result of the list (or of a ``{"results": [...]}`` object), one built at a time."""
    first = ev.first()
    if first is None:
        return
    if first[1] == "start_array":
        for i, rec in enumerate(ev.items(first)):
            yield ("run", i, rec)
    elif first[1] == "start_map":
        streamed = False
        for key, value in ev.map_entries(first):
            if key == "results" and value[1] == "start_array" and not streamed:
                streamed = True
                for i, rec in enumerate(ev.items(value)):
                    yield ("run", i, rec)
            else:
                ev.skip(value)
        if not streamed and ev.error is None:
            yield ("skip", "not_a_list", f"{path}:1", "dict")
    else:
        yield ("skip", "not_a_list", f"{path}:1", type(first[2]).__name__)
    if ev.error is None and ev.next() is not None:
        ev.error = (f"{path}:{ev.reader.lines + 1}", "trailing data after the document")


def _run_spans(path: Path, i: int, rec: Any, source: str, suite: str, problems: Problems) -> Iterator[Span]:
    """The spans of one task trial (``rec``, the ``i``-th result)."""
    where = f"{path}:[{i}]"
    if not isinstance(rec, dict):
        problems.skip("not_an_object", where)
        return
    traj = rec.get("traj")
    if not isinstance(traj, list):
        problems.skip("missing_trajectory", where)
        return
    task_id = rec.get("task_id", i)
    trial = rec.get("trial", 0)
    reward = _reward(rec)
    info = dict_at(rec, "info")
    task = dict_at(info, "task")
    root: dict[str, Any] = {"tau_bench.task_id": task_id, "tau_bench.trial": trial}
    if reward is not None:
        root[conventions.RUN_REWARD] = reward
    if isinstance(task.get("instruction"), str):
        root["tau_bench.task.instruction"] = task["instruction"]
    if isinstance(task.get("user_id"), str):
        root["tau_bench.task.user_id"] = task["user_id"]
    if task.get("actions") is not None:
        root["tau_bench.task.expected_actions"] = to_text(task["actions"])
    tools = info.get("tools") if isinstance(info.get("tools"), list) else None
    yield from spans_for_run(
        Run(
            key=f"{FORMAT}|{source}|{i}",
            index=i,
            messages=traj,
            source_format=FORMAT,
            batch=source_name(path),
            nodeid=f"{suite}::task_{task_id}::trial_{trial}",
            outcome=None if reward is None else ("passed" if reward >= 1 else "failed"),
            agent_name=suite,
            root_attributes=root,
            tools_offered=tools,
        ),
        problems,
        where,
    )
