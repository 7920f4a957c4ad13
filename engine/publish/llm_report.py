"""``llm-report.md``: the LLM engine's final answer with what it cost and what was accepted or rejected.

Written only when the findings carry an LLM run (``findings.llm`` or ``findings.llm_answer``).
The answer is a model's Markdown over attacker-controlled traces: it goes through ``md_prose``
(kept as Markdown, HTML/links disarmed, secrets redacted); every other field is escaped.
"""

from __future__ import annotations

from pathlib import Path

from engine.findings import Findings
from engine.publish.markdown import md_code, md_prose, md_text, md_title
from engine.safe_io import atomic_write_bytes

LLM_REPORT_FILE = "llm-report.md"


def render_llm_report(f: Findings) -> str:
    lines = ["# HALO LLM analysis", ""]
    t = f.llm
    if t is not None:
        lines += [t.describe(md_code, md_text), ""]
    lines += ["## Answer", "", md_prose(f.llm_answer, min_heading=3) if f.llm_answer else "_No final answer._", ""]
    found = [m for m in f.failure_modes if m.source in ("llm", "both")]
    if found:
        lines += ["## Failure modes found by the engine", ""]
        for m in found:
            state = "verified by its signature" if m.verified else "unverified (no signature)"
            lines.append(f"- {md_code(m.id)} {md_title(m.title)} — {m.run_count} runs, "
                         f"{m.failing_test_count} failing tests, {state}")
            if m.signature is not None:
                sig = ", ".join(f"{k}={v}" for k, v in m.signature.model_dump(exclude_none=True).items())
                lines.append(f"  - signature: {md_code(sig)}")
        lines.append("")
    if f.rejected:
        lines += ["## Rejected proposals", ""]
        lines += [f"- round {r.round}: {md_title(r.title)} — {md_text(r.reason)}" for r in f.rejected]
        lines.append("")
    return "\n".join(lines)


class LLMReport:
    """Publisher of ``llm-report.md`` (nothing when no LLM ran)."""

    name = LLM_REPORT_FILE

    def publish(self, findings: Findings, out_dir: Path) -> dict[str, Path]:
        if findings.llm is None and not findings.llm_answer:
            return {}
        path = out_dir / LLM_REPORT_FILE
        atomic_write_bytes(path, render_llm_report(findings).encode("utf-8"))
        return {LLM_REPORT_FILE: path}
