"""Read-only code tools over the project under test: ``list_files``, ``grep_files``, ``read_file``.

Every path is relative to the repository root and must stay inside it: absolute paths, ``..``,
symlinks that lead out and version-control internals are refused, binary files are refused, and
every answer fits a byte budget. The model asking may be steered by trace text (attacker-controlled), so these tools
treat their arguments as hostile: regexes run on RE2 (linear time), nothing is executed.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, ConfigDict, Field

from engine.code.files import NOT_PROJECT_DIRS, VCS_DIRS

DEFAULT_BUDGET = 16_000
MAX_FILE_BYTES = 2_000_000


class CodeToolError(ValueError):
    """A request the model can correct (bad path, outside the root, binary file): the message says how."""


class ListFilesArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    under: str = Field("", description="a folder relative to the repository root ('' = the root)")
    suffix: str = Field("", description="only files whose name ends with this, e.g. '.py'")
    limit: int = Field(200, ge=1, le=2000)


class GrepFilesArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pattern: str = Field(..., min_length=1, max_length=500, description="a regular expression (RE2 syntax)")
    under: str = Field("", description="a folder relative to the repository root")
    suffix: str = Field(".py", description="only files whose name ends with this ('' = every text file)")
    ignore_case: bool = False
    max_matches: int = Field(50, ge=1, le=500)


class ReadFileArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(..., min_length=1, description="a file relative to the repository root; 'path:line' works too")
    start_line: int = Field(1, ge=1, description="first line to show (1-based)")
    end_line: int | None = Field(None, ge=1, description="last line to show (default: start_line + 199)")


def resolve_inside(root: Path, rel: str, *, want_file: bool | None) -> Path:
    """``rel`` under ``root``, or ``CodeToolError``: no absolute paths, no ``..``, no symlink leading out,
    nothing inside ``.git`` (a CI checkout keeps its token in ``.git/config``). ``want_file`` None: file or folder."""
    if "\x00" in rel:
        raise CodeToolError("path contains a NUL byte")
    pure = PurePosixPath(rel.replace("\\", "/"))
    if pure.is_absolute() or (len(rel) > 1 and rel[1] == ":"):
        raise CodeToolError(f"{rel!r}: give a path relative to the repository root, not an absolute one")
    if ".." in pure.parts:
        raise CodeToolError(f"{rel!r}: '..' is not allowed; paths stay inside the repository")
    base = root.resolve()
    path = (base / pure).resolve()
    try:
        inside = path.relative_to(base)
    except ValueError:
        raise CodeToolError(f"{rel!r} leads outside the repository (a symlink?)") from None
    if VCS_DIRS.intersection(inside.parts):
        raise CodeToolError(f"{rel!r} is version-control internals; use the git tools instead")
    if want_file is None:  # either
        if not (path.is_file() or path.is_dir()):
            raise CodeToolError(f"{rel!r} is not a file or folder in the repository")
    elif want_file:
        if not path.is_file():
            raise CodeToolError(f"{rel!r} is not a file in the repository")
    elif not path.is_dir():
        raise CodeToolError(f"{rel!r} is not a folder in the repository")
    return path


def _is_binary(data: bytes) -> bool:
    if b"\x00" in data[:8192]:
        return True
    try:
        data[:65536].decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start < 65536 - 4  # a character cut at the sample's end is not binary
    return False


def _walk(root: Path, under: str, suffix: str) -> list[Path]:
    base = resolve_inside(root, under, want_file=False) if under else root.resolve()
    rootr = root.resolve()
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(base):  # never follows symlinked folders
        dirnames[:] = sorted(d for d in dirnames if d not in NOT_PROJECT_DIRS and not Path(dirpath, d).is_symlink())
        for name in sorted(filenames):
            p = Path(dirpath, name)
            if name.endswith(suffix) and not p.is_symlink():
                out.append(p)
    return [p for p in out if p.resolve().is_relative_to(rootr)]


def _cap(lines: list[str], budget: int, what: str) -> str:
    out: list[str] = []
    used = 0
    for i, line in enumerate(lines):
        n = len(line.encode("utf-8")) + 1
        if used + n > budget:
            out.append(f"[truncated: {len(lines) - i} more {what}; narrow the request]")
            break
        out.append(line)
        used += n
    return "\n".join(out)


def list_files(root: Path, args: ListFilesArgs, budget: int = DEFAULT_BUDGET) -> str:
    """Repository-relative paths, one per line (sorted)."""
    rootr = root.resolve()
    files = [p.relative_to(rootr).as_posix() for p in _walk(root, args.under, args.suffix)]
    shown = files[: args.limit]
    more = [f"[{len(files) - len(shown)} more files; narrow with `under` or `suffix`]"] if len(files) > len(shown) else []
    return _cap(shown + more, budget, "files") or "(no files)"


def _compile(pattern: str, ignore_case: bool) -> object:
    try:
        import re2

        options = re2.Options()
        options.case_sensitive = not ignore_case
        return re2.compile(pattern, options)
    except ImportError:  # pragma: no cover - google-re2 is a dependency
        import re

        return re.compile(pattern, re.I if ignore_case else 0)
    except Exception as exc:  # noqa: BLE001 - re2.error is not exported under one name
        raise CodeToolError(f"bad pattern: {exc}") from None


def grep_files(root: Path, args: GrepFilesArgs, budget: int = DEFAULT_BUDGET) -> str:
    """``path:line: text`` for each matching line (text files only, at most ``max_matches``)."""
    rx = _compile(args.pattern, args.ignore_case)
    rootr = root.resolve()
    hits: list[str] = []
    for path in _walk(root, args.under, args.suffix):
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                continue
            data = path.read_bytes()
        except OSError:
            continue
        if _is_binary(data):
            continue
        rel = path.relative_to(rootr).as_posix()
        for lineno, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
            if rx.search(line):  # type: ignore[attr-defined]
                hits.append(f"{rel}:{lineno}: {line.strip()[:300]}")
                if len(hits) >= args.max_matches:
                    hits.append(f"[stopped at {args.max_matches} matches; narrow the pattern or folder]")
                    return _cap(hits, budget, "matches")
    return _cap(hits, budget, "matches") or "(no matches)"


def read_file(root: Path, args: ReadFileArgs, budget: int = DEFAULT_BUDGET) -> str:
    """Numbered lines ``start_line..end_line`` of a text file in the repository."""
    rel, start, end = args.path, args.start_line, args.end_line
    head, sep, tail = rel.rpartition(":")
    if sep and tail.isdigit() and head:  # "path:line" → a window around that line
        rel, line = head, int(tail)
        start, end = max(1, line - 20), line + 40
    path = resolve_inside(root, rel, want_file=True)
    if path.stat().st_size > MAX_FILE_BYTES:
        raise CodeToolError(f"{rel!r} is larger than {MAX_FILE_BYTES:,} bytes; use grep_files on it instead")
    data = path.read_bytes()
    if _is_binary(data):
        raise CodeToolError(f"{rel!r} is a binary file; only text files can be read")
    lines = data.decode("utf-8", errors="replace").splitlines()
    end = min(end or start + 199, len(lines), start + 999)
    if start > len(lines):
        return f"({rel} has {len(lines)} lines)"
    body = [f"{i:>5}  {lines[i - 1]}" for i in range(start, end + 1)]
    return f"{rel} lines {start}-{end} of {len(lines)}\n" + _cap(body, budget, "lines")
