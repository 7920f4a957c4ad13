"""Where in the code under test each failure mode most likely lives, without an LLM.

From each mode we read what the traces name — the tool, the agent, the error template, the budget —
look them up in one ``ast`` index of the project (``engine.code.index``) and cite ``path:line``s into
``FailureMode.locations``: the tool's definition, the line that raises or returns the error text, the
agent's construction, the setting behind an exhausted budget.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from engine.code.index import MIN_LITERAL_CHARS, Site, SourceIndex, TextSite, build_index
from engine.findings import CodeLocation, FailureMode, Findings

MAX_LOCATIONS = 5
_TOOL_KEYED = frozenset({
    "tool_error", "hallucinated_tool", "retry_loop", "repeated_call", "invalid_arguments", "redundant_argument",
    "contrastive",
})
_AGENT_KEYED = frozenset({"refusal", "refusal_loop"})
_TEMPLATE_KEYED = frozenset({"tool_error", "exception"})
_KNOWN = _TOOL_KEYED | _AGENT_KEYED | _TEMPLATE_KEYED | {"budget_exhaustion", "handoff_loop", "guardrail"}
_QUOTED = re.compile(r"`([A-Za-z_][\w.-]{0,100})`")
_BUDGET_SETTINGS = {
    "max turns": ("max_turns", "max_turn", "turn_limit", "max_iterations"),
    "max steps": ("max_steps", "max_iterations", "step_limit", "max_iter"),
    "recursion limit": ("recursion_limit",),
    "cost limit": ("cost_limit", "max_cost", "max_budget"),
}
_SEGMENTS = re.compile(r"<\*>|<[A-Z]+>|[\"'`]")  # what template_of masked, and quotes around masked values
_MASKED_TOKEN = re.compile(r"[\d\"'`@]|://|/")


@dataclass
class ModeQuery:
    """What one mode names, as the traces spelled it."""

    tools: list[str] = field(default_factory=list)
    agents: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    text_kind: str = "error_literal"
    settings: tuple[str, ...] = ()
    hallucinated: bool = False

    def needles(self) -> list[str]:
        """Byte strings a file must contain one of to be parsed: how the names would be spelled in source."""
        out: list[str] = []
        for t in self.tools:
            out += [f"def {t}", f'"{t}"', f"'{t}'"]
        for a in self.agents:
            out += [f'"{a}"', f"'{a}'"]
        out += [*self.settings, *(s.upper() for s in self.settings)]
        if self.hallucinated:
            out.append("Agent(")
        for text in self.texts:
            out += text_windows(text)
        return out


def text_windows(text: str, limit: int = 24) -> list[str]:
    """Runs of three words (two, or one long token, for short texts) of a template's literal parts.

    A string whose literal text matches the template (``text_matches``) contains one of them verbatim,
    so a file without any of them need not be parsed; three words are rare enough to skip almost all.
    """
    out: list[str] = []
    for segment in _SEGMENTS.split(text.removesuffix("…")):
        tokens = segment.split()
        if len(tokens) >= 3:
            out += [" ".join(tokens[i : i + 3]) for i in range(len(tokens) - 2)]
        elif len(tokens) == 2 and len(segment.strip()) >= 10:
            out.append(" ".join(tokens))
        elif len(tokens) == 1 and len(tokens[0]) >= 8:
            out.append(tokens[0])
    return out[:limit]


def query_of(mode: FailureMode) -> ModeQuery:
    """Read a mode's tool / agent / template / budget from its category, key, signature and example."""
    q = ModeQuery()
    head, _, rest = mode.key.partition("\x1f")
    if mode.category in _TOOL_KEYED and head:
        q.tools.append(head)
    if mode.category in _AGENT_KEYED and head:
        q.agents.append(head)
    if mode.category == "handoff_loop":
        q.agents.extend(a.strip() for a in mode.key.split("<->") if a.strip())
    if mode.category in _TEMPLATE_KEYED and rest:
        q.texts.append(rest)
    if mode.category == "refusal" and mode.example:
        q.texts.append(mode.example.strip().splitlines()[0])
        q.text_kind = "output_literal"
    if mode.category == "budget_exhaustion":
        q.settings = _BUDGET_SETTINGS.get(mode.key, ())
    if mode.category not in _KNOWN:  # a user's detector: the names its title quotes, `like_this`
        q.tools.extend(n for n in _QUOTED.findall(mode.title) if n not in q.tools)
    sig = mode.signature
    if sig is not None and sig.tool_name and sig.tool_name not in q.tools:
        q.tools.append(sig.tool_name)
    q.hallucinated = mode.category == "hallucinated_tool"
    return q


def _token_pattern(token: str) -> tuple[str, int]:
    """A literal token as ``template_of`` would leave it: masked tokens match any run of non-space."""
    if _MASKED_TOKEN.search(token):
        return r"\S*", 0
    return re.escape(token), len(token)


def text_pattern(parts: tuple[str | None, ...]) -> tuple[re.Pattern[str], int, int]:
    """(regex over a message template, literal characters it pins, literal tokens) for a string's parts."""
    out: list[str] = []
    chars = tokens = 0
    for part in parts:
        if part is None:
            out.append(r".*?")
            continue
        for i, token in enumerate(part.split()):
            if i or part[:1].isspace():
                out.append(r"\s*")
            pat, n = _token_pattern(token)
            out.append(pat)
            chars += n
            tokens += 1 if n else 0
        if part[-1:].isspace():
            out.append(r"\s*")
    return re.compile("".join(out)), chars, tokens


def text_matches(site: TextSite, text: str) -> int:
    """How many literal characters of ``site`` match inside ``text`` (0: no match worth citing)."""
    pattern, chars, tokens = text_pattern(site.parts)
    if chars == 0:
        return 0
    body = text.removesuffix("…")
    if chars >= MIN_LITERAL_CHARS and tokens >= 2 and pattern.search(body):
        return chars
    if chars >= 6 and pattern.fullmatch(body.strip()):
        return chars  # the whole message is this literal (``"pending_validation"``)
    return 0


def _loc(site: Site, kind: str, why: str, name: str = "") -> CodeLocation:
    return CodeLocation(path=site.path, line=site.line, end_line=site.end_line, kind=kind, name=name or site.name,
                        why=why)


def locate_mode(mode: FailureMode, index: SourceIndex, q: ModeQuery | None = None) -> list[CodeLocation]:
    """The ``path:line``s a mode most likely lives at, best first (at most ``MAX_LOCATIONS``)."""
    q = q or query_of(mode)
    found: list[CodeLocation] = []
    for tool in q.tools:
        defs = index.tools.get(tool)
        if defs:
            found.extend(_loc(s, s.kind, f"tool `{tool}` is defined here") for s in defs)
        elif tool in index.functions:
            found.extend(_loc(s, "tool_definition", f"function `{tool}` (named like the tool)") for s in
                         index.functions[tool])
        elif q.hallucinated:
            found.extend(_loc(s, "tool_mention", f"`{tool}` is named here but never defined as a tool")
                         for s in index.name_strings.get(tool, []))
    best: list[tuple[int, TextSite]] = []
    for text in q.texts:
        for ts in index.texts:
            score = text_matches(ts, text)
            if score:
                best.append((score, ts))
    near = {loc.path for loc in found}  # the same error text in several files: the tool's own file first
    best.sort(key=lambda b: (b[1].site.path not in near, -b[0], b[1].site.path, b[1].site.line))
    found.extend(_loc(ts.site, q.text_kind, f"this text is raised or returned: {ts.literal[:60]!r}")
                 for _, ts in best[:2])
    for agent in q.agents:
        found.extend(_loc(s, "agent_definition", f"agent `{agent}` is built here") for s in index.agents.get(agent, []))
    if q.hallucinated and len(index.agent_sites) <= 3:
        found.extend(_loc(s, "agent_definition", "the agent whose tools the model was offered")
                     for s in index.agent_sites)
    for name in q.settings:
        found.extend(_loc(s, "budget_setting", f"`{s.name}` sets the budget that runs out")
                     for s in index.settings.get(name, []))
    unique: list[CodeLocation] = []
    seen: set[tuple[str, int]] = set()
    for loc in found:
        if (loc.path, loc.line) not in seen:
            seen.add((loc.path, loc.line))
            unique.append(loc)
    return unique[:MAX_LOCATIONS]


def locate_modes(findings: Findings, repo_root: Path) -> None:
    """Fill ``locations`` of every failure mode that has none, from one index of ``repo_root`` (read-only)."""
    modes = [m for m in findings.failure_modes if not m.locations]
    if not modes:
        return
    queries = [query_of(m) for m in modes]
    needles = sorted({n for q in queries for n in q.needles()})
    if not needles:
        return
    index = build_index(Path(repo_root), needles)
    for mode, q in zip(modes, queries, strict=True):
        mode.locations = locate_mode(mode, index, q)
