"""A check run on the head commit, with annotations on the tests that evidence each new or regressed mode.

GitHub takes at most 50 annotations per request: the run is created with the first batch and
updated with the rest (updates append). Annotation messages are plain text, so trace text goes
through ``text.plain`` (redacted, no tags, mentions broken).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine.findings import FailureMode, Findings
from engine.publish.github.text import plain
from engine.safe_io import read_regular_bytes

ANNOTATIONS_PER_REQUEST = 50
MAX_ANNOTATIONS = 200
CHECK_NAME = "pytest-halo"


def _line_of(test_file: Path, func: str) -> int:
    """Line of ``def func`` in a test file (1 when the file or the function cannot be found).

    Node ids name the file: a FIFO or device there is refused unopened, never a hang."""
    try:
        text = read_regular_bytes(test_file).decode("utf-8", errors="replace")
    except (OSError, ValueError):
        return 1
    pat = re.compile(rf"^[ \t]*(?:async[ \t]+)?def\s+{re.escape(func)}\s*\(", re.MULTILINE)
    hit = pat.search(text)
    return text.count("\n", 0, hit.start()) + 1 if hit else 1


def _nodeid_target(nodeid: str, root: Path, prefix: str) -> tuple[str, int] | None:
    """``tests/t.py::Class::test_x[p]`` → (repository path, line of ``def test_x``)."""
    file_part, _, rest = nodeid.partition("::")
    if not file_part.endswith(".py") or ".." in Path(file_part).parts or file_part.startswith("/"):
        return None
    func = rest.split("::")[-1].split("[", 1)[0] if rest else ""
    line = _line_of(root / file_part, func) if func else 1
    base = posixpath.normpath(prefix.strip() or ".")
    if base.startswith(".."):
        base = "."
    return (file_part if base == "." else posixpath.join(base.lstrip("/"), file_part)), line


def _message(kind: str, m: FailureMode) -> str:
    parts = [f"{kind} systemic failure mode {m.id}: {m.run_count} runs ({m.prevalence:.1%}), "
             f"{m.failing_test_count} failing tests."]
    if m.example:
        parts.append("Evidence: " + plain(m.example, 600))
    if m.suggested_fix:
        parts.append("Suggested fix: " + plain(m.suggested_fix, 400))
    return plain("\n".join(parts), 3000)


def annotations_for(f: Findings, root: Path, prefix: str = "") -> list[dict[str, Any]]:
    """One annotation per (mode, test file/line or code location) for new and regressed modes."""
    failing = set(f.gate.failing_ids)
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str, int]] = set()
    flagged = [("New", e.id) for e in f.gate.new] + [("Regressed", e.id) for e in f.gate.regressed]
    for kind, mid in flagged:
        m = f.mode(mid)
        if m is None:
            continue
        targets: list[tuple[str, int]] = []
        for ev in m.evidence:
            t = _nodeid_target(ev.test_nodeid, root, prefix) if ev.test_nodeid else None
            if t:
                targets.append(t)
        targets += [(loc.path, max(loc.line, 1)) for loc in m.locations if loc.path and ".." not in loc.path]
        for path, line in targets:
            if (mid, path, line) in seen:
                continue
            seen.add((mid, path, line))
            out.append({
                "path": path,
                "start_line": line,
                "end_line": line,
                "annotation_level": "failure" if mid in failing else "warning",
                "title": plain(f"{kind}: {m.title}", 255),
                "message": _message(kind, m),
            })
            if len(out) >= MAX_ANNOTATIONS:
                return out
    return out


def batches(items: list[dict[str, Any]], size: int = ANNOTATIONS_PER_REQUEST) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def conclusion_of(f: Findings) -> str:
    if f.gate.verdict == "fail":
        return "failure"
    return "success" if f.gate.baseline else "neutral"


def publish_check_run(repo: Any, f: Findings, *, head_sha: str, title: str, summary: str,
                      notes: list[dict[str, Any]], details_url: str | None) -> int:
    """Create the completed check run and append the remaining annotation batches; returns its id."""
    chunks = list(batches(notes)) or [[]]
    output: dict[str, Any] = {"title": title, "summary": summary, "annotations": chunks[0]}
    kwargs: dict[str, Any] = {"status": "completed", "conclusion": conclusion_of(f), "output": output}
    if details_url:
        kwargs["details_url"] = details_url
    run = repo.create_check_run(CHECK_NAME, head_sha, **kwargs)
    for chunk in chunks[1:]:
        run.edit(output={"title": title, "summary": summary, "annotations": chunk})
    return int(run.id)
