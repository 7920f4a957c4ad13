"""An ``ast`` index of the project's Python source: tool and agent definitions, and raised/returned text.

Built once per analysis from what the traces name (``needles``): a file is parsed only when its
bytes contain one of them, so a 2,000-file repository costs one read per file and a handful of
parses. Only syntax counts: comments never reach the AST, docstrings and strings outside a
``raise``/``return`` are not error text, and test files are not indexed at all.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.code.files import iter_source_files, read_source

# Decorators that turn a function into a tool: openai-agents ``function_tool``, LangChain/CrewAI ``tool``,
# pydantic-ai ``agent.tool``/``tool_plain``, MCP ``server.tool()``, Semantic Kernel ``kernel_function``...
_TOOL_DECORATOR = re.compile(r"(?:^|_)(?:tool|tool_plain|function_tool|kernel_function|ai_function)$", re.I)
# Calls that build a tool from a name: ``FunctionTool(name=...)``, ``Tool(name=...)``, ``StructuredTool.from_function``
_TOOL_CLASS = re.compile(r"(?:Tool|from_function)$")
_AGENT_CLASS = re.compile(r"Agent$")
_SCHEMA_KEYS = frozenset({"parameters", "input_schema", "inputSchema", "description", "function", "type"})
_NAME_KWARGS = ("name", "name_override")
MIN_LITERAL_CHARS = 12


@dataclass(frozen=True)
class Site:
    """One place in the source: a repository-relative posix path, a 1-based line, what is there."""

    path: str
    line: int
    kind: str
    name: str = ""
    end_line: int | None = None


@dataclass(frozen=True)
class TextSite:
    """A string (or f-string) in a ``raise``/``return``: its literal parts, ``None`` for each interpolation."""

    site: Site
    parts: tuple[str | None, ...]

    @property
    def literal(self) -> str:
        return "".join(p for p in self.parts if p)


@dataclass
class SourceIndex:
    """What the locator looks up, keyed by name."""

    root: Path
    tools: dict[str, list[Site]] = field(default_factory=dict)
    functions: dict[str, list[Site]] = field(default_factory=dict)
    agents: dict[str, list[Site]] = field(default_factory=dict)
    agent_sites: list[Site] = field(default_factory=list)  # every agent construction, named or not
    texts: list[TextSite] = field(default_factory=list)
    name_strings: dict[str, list[Site]] = field(default_factory=dict)  # exact-string call arguments / returns
    settings: dict[str, list[Site]] = field(default_factory=dict)  # keyword/assigned names, lower-cased
    files_seen: int = 0
    files_parsed: int = 0

    def add(self, table: dict[str, list[Site]], key: str, site: Site) -> None:
        table.setdefault(key, []).append(site)


def _callee(node: ast.expr) -> str:
    """The last name of what is called or decorated: ``agents.function_tool(...)`` → ``function_tool``."""
    while isinstance(node, ast.Call | ast.Subscript):
        node = node.func if isinstance(node, ast.Call) else node.value
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _str(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _kwarg(call: ast.Call, names: tuple[str, ...]) -> str | None:
    for kw in call.keywords:
        if kw.arg in names:
            value = _str(kw.value)
            if value:
                return value
    return None


def _parts(node: ast.expr) -> tuple[str | None, ...] | None:
    """Literal parts of a str constant or f-string (``None`` per interpolation); None for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return (node.value,)
    if isinstance(node, ast.JoinedStr):
        out: list[str | None] = []
        for v in node.values:
            s = _str(v)
            out.append(s if s is not None else None)
        return tuple(out)
    return None


class _Indexer:
    """One pass over a module's nodes (``ast.walk``: no recursion through ``NodeVisitor`` dispatch)."""

    def __init__(self, index: SourceIndex, rel: str) -> None:
        self.ix = index
        self.rel = rel

    def site(self, node: ast.AST, kind: str, name: str = "") -> Site:
        line = getattr(node, "lineno", 1)
        end = getattr(node, "end_lineno", None)
        return Site(self.rel, line, kind, name, end if end and end > line else None)

    def run(self, tree: ast.AST) -> None:
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                self.call(node)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                self.function(node)
            elif isinstance(node, ast.Return | ast.Raise):
                self.texts(node)
            elif isinstance(node, ast.Dict):
                self.schema(node)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        self.ix.add(self.ix.settings, target.id.lower(), self.site(node, "setting", target.id))

    def function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        tool_name = None
        for dec in node.decorator_list:
            if _TOOL_DECORATOR.search(_callee(dec)):
                tool_name = node.name
                if isinstance(dec, ast.Call):
                    tool_name = _kwarg(dec, _NAME_KWARGS) or (_str(dec.args[0]) if dec.args else None) or node.name
                break
        if tool_name:
            self.ix.add(self.ix.tools, tool_name, self.site(node, "tool_definition", tool_name))
        self.ix.add(self.ix.functions, node.name, self.site(node, "function_definition", node.name))

    def call(self, node: ast.Call) -> None:
        callee = _callee(node.func)
        if callee:
            if _AGENT_CLASS.search(callee):
                name = _kwarg(node, ("name",))
                if name is None and callee != "Agent" and node.args:
                    name = _str(node.args[0])  # AssistantAgent("planner", ...)
                site = self.site(node, "agent_definition", name or "")
                self.ix.agent_sites.append(site)
                if name:
                    self.ix.add(self.ix.agents, name, site)
            elif _TOOL_CLASS.search(callee):
                name = _kwarg(node, _NAME_KWARGS)
                if name:
                    self.ix.add(self.ix.tools, name, self.site(node, "tool_definition", name))
        for kw in node.keywords:
            if kw.arg:
                self.ix.add(self.ix.settings, kw.arg.lower(), self.site(kw.value, "setting", kw.arg))
        for arg in node.args:
            s = _str(arg)
            if s and s.isidentifier():
                self.ix.add(self.ix.name_strings, s, self.site(arg, "name_string", s))

    def schema(self, node: ast.Dict) -> None:
        keys = {_str(k) for k in node.keys if k is not None}
        if "name" in keys and keys & _SCHEMA_KEYS:
            for k, v in zip(node.keys, node.values, strict=True):
                if k is not None and _str(k) == "name":
                    name = _str(v)
                    if name:
                        self.ix.add(self.ix.tools, name, self.site(v, "tool_schema", name))

    def texts(self, node: ast.Return | ast.Raise) -> None:
        """Strings and f-strings anywhere in what is returned or raised (``raise E(f"...")``, ``return {"reason": ...}``)."""
        value = node.value if isinstance(node, ast.Return) else node.exc
        stack: list[ast.AST] = [value] if value is not None else []
        while stack:
            n = stack.pop()
            parts = _parts(n) if isinstance(n, ast.expr) else None
            if parts is None:
                stack.extend(ast.iter_child_nodes(n))
                continue
            self.ix.texts.append(TextSite(self.site(n, "error_literal"), parts))
            s = parts[0] if len(parts) == 1 else None
            if s and s.isidentifier() and isinstance(node, ast.Return):
                self.ix.add(self.ix.name_strings, s, self.site(n, "name_string", s))


def _any_of(needles: Iterable[str]) -> Any:
    """One RE2 alternation of the needles: a single linear pass per file, however many needles there are."""
    import re2

    options = re2.Options()
    options.max_mem = 64 << 20
    alternatives = sorted({n.encode() for n in needles if n}) or [b"\x00\x00never\x00\x00"]
    return re2.compile(b"|".join(re2.escape(n) for n in alternatives), options)


def build_index(root: Path, needles: Iterable[str] | None = None) -> SourceIndex:
    """Index ``root``'s Python source; with ``needles``, parse only files whose bytes contain one of them."""
    root = Path(root).resolve()
    index = SourceIndex(root)
    wanted = _any_of(needles) if needles is not None else None
    for path in iter_source_files(root):
        index.files_seen += 1
        data = read_source(path)
        if data is None:
            continue
        if wanted is not None and wanted.search(data) is None:
            continue
        try:
            tree = ast.parse(data, filename=str(path))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        index.files_parsed += 1
        _Indexer(index, path.relative_to(root).as_posix()).run(tree)
    return index
