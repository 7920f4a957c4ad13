"""docs/findings.md documents every field of findings.json, so a new field cannot ship undocumented."""

from __future__ import annotations

from pathlib import Path

from engine.analysis.config import AnalysisConfig
from engine.findings import Findings

DOC = Path(__file__).resolve().parents[3] / "docs" / "findings.md"


def _fields(schema: dict, defs: dict) -> set[str]:
    out: set[str] = set()
    for name in schema.get("properties", {}):
        out.add(name)
    for d in defs.values():
        out |= set(d.get("properties", {}))
    return out


def test_every_findings_field_and_config_key_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    schema = Findings.model_json_schema()
    names = _fields(schema, schema.get("$defs", {})) | set(AnalysisConfig.model_fields)
    missing = sorted(n for n in names if f"`{n}`" not in text)
    assert not missing, f"undocumented in docs/findings.md: {missing}"
