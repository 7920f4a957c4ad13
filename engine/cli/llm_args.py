"""The LLM engine's command-line flags (halo-engine's names) and their translation into ``EngineSettings``.

``halo analyze`` adds them with ``add_llm_arguments``; ``engine_form_argv`` turns halo-engine's
own form ``halo PATH -p PROMPT [flags]`` into ``halo analyze PATH ...`` so its users change nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine.cli import UsageError

HALO_ENGINE_DEFAULT_MODEL = "gpt-5.4-mini"  # halo-engine 0.3.5's default, kept for its form only
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
EXIT_ENGINE_FAILED = 3
# flags that only mean something with a model (checked so a forgotten --model is one clear line)
_LLM_ONLY = ("prompt", "base_url", "api_key", "headers", "synthesis_model", "compaction_model", "max_cost",
             "max_tokens", "llm_replay", "temperature", "max_output_tokens", "reasoning_effort", "price",
             "context_tokens", "compact_at")

# settings fields whose flag has another name (the rest are --field-name)
_FLAG_OF = {"max_cost_usd": "--max-cost", "timeout_s": "--llm-timeout", "max_retries": "--llm-max-retries",
            "replay": "--llm-replay", "cache": "--no-llm-cache", "repo_path": "--repo", "prices": "--price",
            "compaction_threshold": "--compact-at"}


def add_llm_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("LLM engine (halo-engine's flags; needs pip install \"pytest-halo[llm]\")")
    g.add_argument("--model", "-m", metavar="M", help="root model; enables the LLM engine (any OpenAI-compatible server)")
    g.add_argument("-p", "--prompt", metavar="TEXT", help="what to look for (default: systemic failure modes)")
    g.add_argument("--base-url", metavar="URL", help="OpenAI-compatible base URL (default: OpenAI, or OPENAI_BASE_URL)")
    g.add_argument("--api-key", metavar="KEY", help="API key (wins over OPENAI_API_KEY / --api-key-env)")
    g.add_argument("--api-key-env", metavar="VAR", default="OPENAI_API_KEY", help="env var holding the API key")
    g.add_argument("-H", "--header", dest="headers", action="append", default=[], metavar="NAME:VALUE",
                   help="extra HTTP header for the provider (repeatable)")
    g.add_argument("--max-depth", type=int, default=2, metavar="N", help="subagent depth (default 2)")
    g.add_argument("--max-turns", type=int, default=20, metavar="N", help="model requests per agent (default 20)")
    g.add_argument("--max-parallel", type=int, default=4, metavar="N", help="subagents at once per depth (default 4)")
    g.add_argument("--temperature", type=float, metavar="T")
    g.add_argument("--max-output-tokens", type=int, metavar="N")
    g.add_argument("--reasoning-effort", choices=REASONING_EFFORTS)
    g.add_argument("--parallel-tool-calls", action=argparse.BooleanOptionalAction, default=True,
                   help="let the model issue several tool calls per turn (default on)")
    g.add_argument("--refusal-retries", type=int, default=0, metavar="N", help=argparse.SUPPRESS)
    g.add_argument("--synthesis-model", metavar="M", help="model for synthesize_traces (default: --model)")
    g.add_argument("--compaction-model", metavar="M",
                   help="model summarizing old tool results (default: --model; 'none': deterministic excerpts)")
    g.add_argument("--max-cost", type=float, metavar="USD", help="run-wide dollar budget")
    g.add_argument("--max-tokens", type=int, metavar="N", help="run-wide token budget (in + out)")
    g.add_argument("--price", action="append", default=[], metavar="MODEL=IN/OUT",
                   help="USD per 1M input/output tokens of MODEL, over the built-in table (repeatable); "
                   "what --max-cost needs for a model the table lacks")
    g.add_argument("--context-tokens", type=int, metavar="N",
                   help="the models' context window in tokens (default: a table by model name, else 32k)")
    g.add_argument("--compact-at", type=float, metavar="FRACTION",
                   help="compact old tool results when a conversation passes this share of the context "
                   "window (default 0.6)")
    g.add_argument("--llm-timeout", type=float, metavar="S", help="run-wide wall-clock budget, seconds")
    g.add_argument("--llm-max-retries", type=int, metavar="N",
                   help="retries of a failed model request (429, 5xx, timeouts, connection errors; default 6)")
    g.add_argument("--llm-replay", type=Path, metavar="FILE",
                   help="record model answers into FILE, or replay them from FILE when it exists")
    g.add_argument("--no-llm-cache", action="store_true", help="do not read or write the response cache")
    g.add_argument("--repo-path", dest="repo", type=Path, metavar="DIR",
                   help="halo-engine's name for --repo: the agent's source, for the code and git tools")
    g.add_argument("--strict", action="store_true", help="exit 3 when the LLM engine fails")
    g.add_argument("--print-answer", action="store_true", help=argparse.SUPPRESS)


def llm_requested(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "model", None))


def _headers(values: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw in values:
        name, sep, value = raw.partition(":")
        if not sep or not name.strip():
            raise UsageError(f"-H {raw!r}: expected NAME:VALUE")
        out[name.strip()] = value.strip()
    return out


def _prices(values: Sequence[str]) -> dict[str, tuple[float, float]]:
    from engine.llm.pricing import parse_prices

    try:
        return parse_prices(values)
    except ValueError as exc:
        raise UsageError(f"--price {exc}") from None


def settings_from_args(args: argparse.Namespace) -> Any:
    """``EngineSettings`` from parsed flags; a bad value is a one-line ``UsageError``."""
    from pydantic import ValidationError

    from engine.llm.settings import EngineSettings

    data: dict[str, Any] = {
        "model": args.model, "base_url": args.base_url or os.environ.get("OPENAI_BASE_URL") or None,
        "api_key": args.api_key, "api_key_env": args.api_key_env, "headers": _headers(args.headers),
        "max_depth": args.max_depth, "max_turns": args.max_turns, "max_parallel": args.max_parallel,
        "temperature": args.temperature, "max_output_tokens": args.max_output_tokens,
        "reasoning_effort": args.reasoning_effort, "parallel_tool_calls": args.parallel_tool_calls,
        "refusal_retries": args.refusal_retries, "synthesis_model": args.synthesis_model,
        "compaction_model": args.compaction_model, "max_cost_usd": args.max_cost, "max_tokens": args.max_tokens,
        "timeout_s": args.llm_timeout, "replay": args.llm_replay, "cache": not args.no_llm_cache,
        "repo_path": getattr(args, "repo", None), "strict": args.strict, "max_retries": args.llm_max_retries,
        "diff_base": getattr(args, "diff_base", None), "prices": _prices(args.price),
        "context_tokens": args.context_tokens, "compaction_threshold": args.compact_at,
    }
    if args.prompt:
        data["prompt"] = args.prompt
    try:
        return EngineSettings(**{k: v for k, v in data.items() if v is not None})
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err.get("loc", ()))
        flag = _FLAG_OF.get(where, f"--{where.replace('_', '-')}")
        raise UsageError(f"{flag}: {err.get('msg', 'invalid')}") from None


def build_reasoners(args: argparse.Namespace) -> list[Any]:
    """The LLM reasoner for these flags ([] without ``--model``); one-line errors for the rest."""
    if not llm_requested(args):
        given = [f"--{k.replace('_', '-')}" for k in _LLM_ONLY if getattr(args, k, None) not in (None, [], False)]
        if given:
            raise UsageError(f"{', '.join(given)} need --model M (the LLM engine is off without a model)")
        return []
    from engine.llm import MISSING_OPENAI, make_reasoner, openai_available

    if not openai_available():
        raise UsageError(MISSING_OPENAI)
    settings = settings_from_args(args)
    from engine.llm.progress import ProgressReporter

    providers = []
    if settings.repo_path is not None:  # the code and git tools over the project under test
        from engine.code.provider import code_tool_provider

        providers.append(code_tool_provider(settings.repo_path, getattr(args, "diff_base", None)))
    try:
        return [make_reasoner(settings, progress=ProgressReporter(sys.stderr), providers=providers)]
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def finish(args: argparse.Namespace, outcome: Any, summary_lines: Sequence[str]) -> int | None:
    """After the analysis: the totals line, the answer (halo-engine form), and exit 3 under ``--strict``.

    Returns the exit status to use instead of the gate's, or None.
    """
    if not llm_requested(args):
        return None
    from engine.llm.reasoner import engine_failed, totals_line

    results = list(getattr(outcome, "reason_results", []) or [])
    if not results:
        print("halo: LLM analysis did not run (see findings.json notes)", flush=True)
    else:
        if not any(line.startswith("halo: LLM ") for line in summary_lines):  # the summary has it when findings.llm is set
            print(totals_line(results[0].totals), flush=True)
        for note in results[0].notes:
            if note.startswith("halo: LLM analysis"):  # why it failed or stopped early: one line
                print(note, flush=True)
    if args.print_answer and results and results[0].answer:
        from engine.sanitize import clean

        print(clean(results[0].answer), flush=True)
    if args.strict and (not results or engine_failed(results[0])):
        return EXIT_ENGINE_FAILED
    return None


def engine_form_argv(argv: list[str], subcommands: Sequence[str]) -> list[str]:
    """halo-engine's ``halo PATH -p PROMPT [flags]`` → ``halo analyze PATH ... --out .halo --print-answer``."""
    if not argv or argv[0].startswith("-") or argv[0] in subcommands:
        return argv
    out = ["analyze", *argv]
    if "--out" not in argv:
        out += ["--out", ".halo"]
    if not any(a in ("--model", "-m") or a.startswith("--model=") for a in argv):
        out += ["--model", os.environ.get("HALO_MODEL") or HALO_ENGINE_DEFAULT_MODEL]
    if "--fail-on" not in argv:
        out += ["--fail-on", "never"]
    return [*out, "--print-answer"]
