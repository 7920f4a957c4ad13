"""Our tools keep halo-engine 0.3.5's names and argument names, so prompts written for it carry over.

halo-engine's tool modules import the Agents SDK, which its throwaway venv lacks, so its sources
are read with ``ast``: each tool class's ``name`` and ``arguments_model``, and that model's fields.
"""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

from engine.llm.tools.agent_tools import (
    CallSubagentTool,
    FinalAnswerTool,
    GetContextItemTool,
    SynthesizeTracesTool,
)
from engine.llm.tools.trace_tools import store_tools
from engine.traces.query_models import TraceFilters

FILES = ("tools/trace_tools.py", "tools/synthesis_tool.py", "tools/agent_context_tools.py",
         "tools/final_answer_tool.py", "traces/models/trace_query_models.py")


def _their_tools(root: Path) -> tuple[dict[str, set[str]], set[str]]:
    models: dict[str, set[str]] = {}
    tools: dict[str, str] = {}
    for rel in FILES:
        tree = ast.parse((root / rel).read_text())
        for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
            fields = {s.target.id for s in cls.body if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name)
                      and s.target.id != "model_config"}
            models[cls.name] = fields
            assigns = {t.id: s.value for s in cls.body if isinstance(s, ast.Assign) for t in s.targets
                       if isinstance(t, ast.Name)}
            name, model = assigns.get("name"), assigns.get("arguments_model")
            if isinstance(name, ast.Constant) and isinstance(model, ast.Name):
                tools[name.value] = model.id
            elif isinstance(name, ast.Name) and isinstance(model, ast.Name):  # name = FINAL_ANSWER_TOOL_NAME
                tools["final_answer"] = model.id
    return {n: models[m] for n, m in tools.items()}, models["TraceFilters"]


def test_tool_and_argument_names_match_halo_engine(halo_engine_python):
    where = subprocess.run([str(halo_engine_python), "-c", "import engine, os; print(os.path.dirname(engine.__file__))"],
                           capture_output=True, text=True, cwd="/", timeout=60)
    theirs, their_filters = _their_tools(Path(where.stdout.strip()))
    theirs["call_subagent"] = {"input"}  # the Agents SDK's AgentAsToolInput
    ours = {t.name: set(t.arguments.model_fields) for t in [*store_tools(), SynthesizeTracesTool(),
                                                            GetContextItemTool(), CallSubagentTool(),
                                                            FinalAnswerTool()]}
    assert set(theirs) == {"get_dataset_overview", "query_traces", "count_traces", "view_trace", "view_spans",
                           "search_trace", "search_span", "synthesize_traces", "get_context_item", "final_answer",
                           "call_subagent"}
    for name, fields in theirs.items():
        assert name in ours, name
        assert fields <= ours[name], (name, fields - ours[name])
    assert their_filters - {"project_id"} <= set(TraceFilters.model_fields)
