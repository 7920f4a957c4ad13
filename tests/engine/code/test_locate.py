"""Locating failure modes in source with ``ast``: real definitions found, decoys ignored, user code never run."""

from __future__ import annotations

import textwrap
from pathlib import Path

from engine.code.index import build_index
from engine.code.locate import locate_modes, query_of, text_matches
from engine.findings import FailureMode, Findings

FILES = {
    # the real definitions, in the styles of several frameworks
    "app/tools.py": '''
        """Tools. lookup_order is documented here, in a docstring: a decoy."""
        from agents import function_tool

        # def lookup_order(): a decoy in a comment
        LOG = "lookup_order is called for every order"  # an unrelated string: a decoy


        @function_tool(failure_error_function=None)
        def lookup_order(order_id: str) -> str:
            """Look up an order. Raises 'unsupported order id format' for legacy ids (docstring decoy)."""
            if order_id.startswith("LEG-"):
                raise ValueError(f"unsupported order id format: {order_id!r} (expected A###)")
            return "ok"


        @agent.tool
        async def get_weather(ctx, city: str) -> str:
            return "sunny"


        @tool("search_docs")
        def search(query: str) -> str:
            return "..."
        ''',
    "app/schemas.py": '''
        TOOLS = [
            {"type": "function", "function": {"name": "refund", "description": "Refund an order",
             "parameters": {"type": "object"}}},
        ]
        NOT_A_SCHEMA = {"name": "refund"}
        ''',
    "app/agents_def.py": '''
        from agents import Agent, FunctionTool

        MAX_TURNS = 6
        triage = Agent(name="triage", instructions="Route the customer.")
        billing = Agent(
            name="billing",
            instructions="Handle refunds.",
        )
        ship = FunctionTool(name="ship_order", description="ship", params_json_schema={}, on_invoke_tool=None)


        def run(msg):
            return Runner.run_sync(triage, msg, max_turns=MAX_TURNS)
        ''',
    "app/errors.py": '''
        def check(amount, total):
            message = f"refused: amount {amount:.2f} exceeds order total {total:.2f}"  # assigned, not returned
            if amount > total:
                return f"refused: amount {amount:.2f} exceeds order total {total:.2f}"
            return None
        ''',
    # decoys in tests: never cited
    "tests/test_tools.py": '''
        def lookup_order(order_id):
            raise ValueError(f"unsupported order id format: {order_id!r} (expected A###)")

        def test_agent():
            Agent(name="triage")
        ''',
    "app/test_helpers.py": '''
        def get_weather():
            return "decoy in a test file"
        ''',
    "conftest.py": '''
        def refund():
            pass
        ''',
    ".venv/lib/site-packages/agents/tool.py": '''
        def lookup_order():
            pass
        ''',
    "app/broken.py": "def lookup_order(:\n",  # a syntax error is skipped, never fatal
}


def make_repo(root: Path) -> Path:
    for rel, text in FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


def line_of(root: Path, rel: str, needle: str) -> int:
    return next(i for i, line in enumerate((root / rel).read_text().splitlines(), 1) if needle in line)


def mode(category: str, key: str, example: str | None = None) -> FailureMode:
    return FailureMode(id=f"fm-{category}-{key[:5]}", title=key, category=category, detector=category, key=key,
                       example=example)


def test_index_finds_tools_agents_and_schemas_but_not_decoys(tmp_path):
    root = make_repo(tmp_path)
    ix = build_index(root)
    tools = {name: [(s.path, s.line) for s in sites] for name, sites in ix.tools.items()}
    assert tools["lookup_order"] == [("app/tools.py", line_of(root, "app/tools.py", "def lookup_order(order_id"))]
    assert tools["get_weather"] == [("app/tools.py", line_of(root, "app/tools.py", "async def get_weather"))]
    assert tools["search_docs"] == [("app/tools.py", line_of(root, "app/tools.py", "def search("))]
    assert tools["refund"] == [("app/schemas.py", line_of(root, "app/schemas.py", '"name": "refund", "description"'))]
    assert tools["ship_order"] == [("app/agents_def.py", line_of(root, "app/agents_def.py", "FunctionTool(name="))]
    assert {n: [(s.path, s.line) for s in v] for n, v in ix.agents.items()} == {
        "triage": [("app/agents_def.py", line_of(root, "app/agents_def.py", 'Agent(name="triage"'))],
        "billing": [("app/agents_def.py", line_of(root, "app/agents_def.py", "billing = Agent("))],
    }
    indexed = {s.path for sites in (*ix.tools.values(), *ix.functions.values()) for s in sites}
    assert not any(p.startswith(("tests/", ".venv/")) or "test_" in p or p == "conftest.py" for p in indexed)
    assert "app/broken.py" not in indexed


def test_locate_modes_cites_definition_raise_agent_and_budget_lines(tmp_path):
    root = make_repo(tmp_path)
    findings = Findings(failure_modes=[
        mode("tool_error", "lookup_order\x1fError running tool: unsupported order id format: '<*>' (expected A###)"),
        mode("refusal", "billing", "I can't help with that."),
        mode("budget_exhaustion", "max turns"),
        mode("tool_error", "refund\x1frefused: amount <*> exceeds order total <*>"),
        mode("retry_loop", "ship_order"),
        mode("hallucinated_tool", "cancel_order"),
    ])
    locate_modes(findings, root)
    got = {m.key.split("\x1f")[0]: [(loc.path, loc.line, loc.kind) for loc in m.locations]
           for m in findings.failure_modes}
    assert got["lookup_order"] == [
        ("app/tools.py", line_of(root, "app/tools.py", "def lookup_order(order_id"), "tool_definition"),
        ("app/tools.py", line_of(root, "app/tools.py", "raise ValueError"), "error_literal"),
    ]
    assert got["billing"] == [("app/agents_def.py", line_of(root, "app/agents_def.py", "billing = Agent("),
                               "agent_definition")]
    assert ("app/agents_def.py", line_of(root, "app/agents_def.py", "MAX_TURNS = 6"), "budget_setting") in got["max turns"]
    assert ("app/agents_def.py", line_of(root, "app/agents_def.py", "max_turns=MAX_TURNS"), "budget_setting") in got[
        "max turns"]
    # the returned f-string is cited, the identical assigned one is not
    refund = got["refund"]
    assert ("app/errors.py", line_of(root, "app/errors.py", "        return f\"refused"), "error_literal") in refund
    assert ("app/errors.py", line_of(root, "app/errors.py", "message = f"), "error_literal") not in refund
    assert got["ship_order"][0][:2] == ("app/agents_def.py", line_of(root, "app/agents_def.py", "FunctionTool(name="))
    # a tool that exists nowhere: no invented location (the agents are the only honest pointer)
    assert all(kind == "agent_definition" for _, _, kind in got["cancel_order"])
    assert not any(p.startswith("tests/") for locs in got.values() for p, _, _ in locs)


def test_text_matching_needs_enough_literal_text():
    from engine.code.index import Site, TextSite

    def site(*parts):
        return TextSite(Site("a.py", 1, "error_literal"), parts)

    assert text_matches(site("unsupported order id format: ", None, " (expected A###)"),
                        "Error: unsupported order id format: '<*>' (expected A###)")
    assert not text_matches(site("error"), "Error: unsupported order id format")  # too short to mean anything
    assert not text_matches(site("order id format: ", None), "unsupported order id format")  # literal text differs
    assert text_matches(site("pending_validation"), "pending_validation")  # the whole message
    assert text_matches(site("retry after 30 seconds, attempt ", None), "retry after <*> seconds, attempt <*>")


def test_needles_keep_the_index_to_files_that_can_match(tmp_path):
    root = make_repo(tmp_path)
    for i in range(30):
        (root / "app" / f"filler_{i}.py").write_text(f"def helper_{i}(x):\n    return x + {i}\n")
    q = query_of(mode("retry_loop", "ship_order"))
    ix = build_index(root, q.needles())
    assert ix.files_parsed == 1 and ix.files_seen >= 35
    assert [s.path for s in ix.tools["ship_order"]] == ["app/agents_def.py"]


def test_locating_never_imports_or_runs_user_code(tmp_path):
    root = make_repo(tmp_path)
    marker = tmp_path / "imported"
    (root / "app" / "side_effect.py").write_text(
        f"open({str(marker)!r}, 'w').write('x')\n\n\ndef lookup_order():\n    pass\n")
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    findings = Findings(failure_modes=[mode("retry_loop", "lookup_order")])
    locate_modes(findings, root)
    assert not marker.exists()
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} == before  # read-only
    assert not list(root.rglob("__pycache__"))
