"""The dependency rules of the layout, checked on the source (``ast``; nothing is imported).

Data flows capture → ingest → index/store → detect / reason → findings → publish. ``traces`` knows
nothing above it; ``analysis`` never imports ``llm`` or ``publish``; ``llm`` never imports
``analysis`` (it receives findings); ``publish`` reads findings only; ``sandbox`` is self-contained;
``run`` (the orchestrator) and ``cli`` are the only places that see everything. The shared
contracts (``findings``, ``reasoning``, ``signatures``) and utilities (``sanitize``, ``safe_io``,
``root_cause_groups``) sit beside the layers and never import them back. No module imports
another module's ``_private`` names.
"""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[1] / "engine"
PLUGIN = ENGINE.parent / "pytest_halo"
SHARED = {"findings", "reasoning", "signatures", "sanitize", "safe_io", "root_cause_groups"}
FORBIDDEN: dict[str, set[str]] = {
    "traces": {"analysis", "llm", "publish", "run", "cli", "code", "sandbox", "reasoning"},
    "analysis": {"llm", "publish", "run", "cli", "sandbox"},
    "llm": {"analysis", "publish", "run", "cli"},
    "publish": {"analysis", "llm", "traces", "run", "cli", "sandbox", "code", "reasoning"},
    "sandbox": {"traces", "analysis", "llm", "publish", "run", "cli", "code", "findings", "reasoning", "signatures"},
    "code": {"analysis", "publish", "run", "cli", "sandbox"},
    **{name: {"analysis", "llm", "publish", "run", "cli", "code", "sandbox"} for name in SHARED},
}


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, [alias.name for alias in node.names], node.lineno))
    return out


def _layer(path: Path) -> str:
    return path.relative_to(ENGINE).parts[0].removesuffix(".py")


def test_dependencies_point_one_way() -> None:
    bad = []
    for path in sorted(ENGINE.rglob("*.py")):
        layer = _layer(path)
        for module, _, line in _imports(path):
            parts = module.split(".")
            if parts[0] != "engine" or len(parts) < 2:
                continue
            if parts[1] in FORBIDDEN.get(layer, set()):
                bad.append(f"{path.relative_to(ENGINE.parent)}:{line}: {layer} imports {module}")
    assert bad == []


def test_no_private_names_across_modules() -> None:
    bad = []
    for path in sorted([*ENGINE.rglob("*.py"), *PLUGIN.rglob("*.py")]):
        here = ".".join(path.relative_to(ENGINE.parent).with_suffix("").parts)
        for module, names, line in _imports(path):
            if not module.startswith(("engine", "pytest_halo")) or module == here:
                continue
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private:
                bad.append(f"{path.relative_to(ENGINE.parent)}:{line}: {', '.join(private)} from {module}")
    assert bad == []


def _our_module_names(path: Path) -> dict[str, str]:
    """Local name -> module, for every module of ours this file imports as a whole."""
    bound: dict[str, str] = {}
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(("engine.", "pytest_halo.")) and alias.asname:
                    bound[alias.asname] = alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(("engine", "pytest_halo")):
            base = ENGINE.parent.joinpath(*node.module.split("."))
            for alias in node.names:
                if (base / f"{alias.name}.py").is_file() or (base / alias.name / "__init__.py").is_file():
                    bound[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return bound


def test_modules_are_named_for_what_they_hold_and_their_private_names_stay_inside() -> None:
    """No short aliases (``conventions as C``) and no ``module._private`` reached through an imported module."""
    short, reached = [], []
    for path in sorted([*ENGINE.rglob("*.py"), *PLUGIN.rglob("*.py")]):
        where = path.relative_to(ENGINE.parent)
        bound = _our_module_names(path)
        short += [f"{where}: {module} as {name}" for name, module in bound.items()
                  if name != module.rsplit(".", 1)[-1] and len(name) < 4]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                reached.append(f"{where}:{node.lineno}: {bound[node.value.id]}.{node.attr}")
    assert short == [] and reached == []
