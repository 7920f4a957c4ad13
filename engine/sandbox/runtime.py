"""One warm Pyodide runtime per engine run, driven over JSON lines; any misbehaviour is a crashed call.

The host owns every limit that sandboxed code could otherwise defeat: the per-call timeout
(the whole process group is killed and the next call starts a fresh runtime), memory (V8 heap
and WASM pages capped by flags, resident size watched), protocol garbage (lines without the
call's nonce are ignored and counted, too many of them is a crash), and the runner dying.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from engine.sandbox import provision
from engine.sandbox.provision import SandboxUnavailable

LlmQuery = Callable[[str, str], Awaitable[str]]

STREAM_LIMIT = 8 << 20  # one protocol line: result texts are capped far below this inside the runner
GARBAGE_LIMIT = 1 << 20  # bytes of non-protocol output tolerated per call


@dataclass(frozen=True)
class SandboxLimits:
    """Caps for one runtime; the defaults suit an LLM asking questions over traces."""

    timeout_s: float = 30.0
    boot_timeout_s: float = 60.0
    memory_mb: int = 1024
    stdout_bytes: int = 64 << 10
    stderr_bytes: int = 16 << 10
    llm_calls_per_call: int = 50
    llm_calls_per_run: int = 500


@dataclass
class SandboxResult:
    """What one ``run_code`` call returns: a process's exit code and output, and how it ended."""

    exit_code: int
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False
    crashed: bool = False
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    llm_calls: int = 0
    duration_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"exit_code": self.exit_code, "stdout": self.stdout, "stderr": self.stderr,
                "timed_out": self.timed_out, "crashed": self.crashed, "stdout_truncated": self.stdout_truncated,
                "stderr_truncated": self.stderr_truncated, "llm_calls": self.llm_calls,
                "duration_ms": round(self.duration_ms, 1)}


class _Crash(Exception):
    """The runner misbehaved or died during a call: the call's result says how."""


class Sandbox:
    """A locked-down Deno + Pyodide runtime, started on first use and restarted after a crash.

    ``async with Sandbox() as sb: await sb.run(code, data_file=..., llm_query=...)``. Calls are
    serialised (one interpreter); ``close()`` kills the process group.
    """

    def __init__(self, limits: SandboxLimits | None = None) -> None:
        self.limits = limits or SandboxLimits()
        self._deno, self._pyodide, self._snapshot = provision.require()
        self._workdir = Path(tempfile.mkdtemp(prefix="halo-sandbox-"))
        self.data_path = self._workdir / "data.json"
        self._proc: asyncio.subprocess.Process | None = None
        self._stderr_tail = bytearray()
        self._stderr_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._llm_calls_run = 0
        self.starts = 0
        self.last_boot_ms: float = 0.0

    async def __aenter__(self) -> Sandbox:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ process
    def command(self) -> list[str]:
        """The exact Deno command line: every permission it has is in here."""
        pages = max(1, self.limits.memory_mb * 16)  # 64 KiB WASM pages
        reads = [str(self._pyodide), str(self.data_path)] + ([str(self._snapshot)] if self._snapshot else [])
        return [
            str(self._deno), "run", "--no-prompt", "--no-config", "--no-remote", "--no-npm", "--cached-only",
            "--no-lock", f"--allow-read={','.join(reads)}",
            f"--v8-flags=--max-old-space-size={self.limits.memory_mb},--wasm-max-mem-pages={pages}",
            str(provision.RUNNER), str(self._pyodide), str(self._snapshot or ""), str(self.data_path),
        ]

    async def _start(self) -> None:
        self.starts += 1
        started = time.perf_counter()
        self._proc = await asyncio.create_subprocess_exec(
            *self.command(), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, cwd="/", env=provision.runtime_env(), start_new_session=True,
            limit=STREAM_LIMIT,
        )
        self._stderr_tail = bytearray()
        self._stderr_task = asyncio.create_task(self._drain_stderr(self._proc))
        nonce = secrets.token_hex(16)
        prelude = "" if self._snapshot else provision.PRELUDE.read_text(encoding="utf-8")
        try:
            await self._send({"nonce": nonce, "prelude": prelude, "stdout_cap": self.limits.stdout_bytes,
                              "stderr_cap": self.limits.stderr_bytes})
            ready = await asyncio.wait_for(self._next_message(nonce, [0]), self.limits.boot_timeout_s)
        except (asyncio.TimeoutError, _Crash) as exc:
            await self._kill()
            raise SandboxUnavailable(f"run_code unavailable: the sandbox did not start ({self._why(exc)})") from exc
        if ready.get("type") != "ready":
            await self._kill()
            raise SandboxUnavailable("run_code unavailable: the sandbox answered its start with garbage")
        self.last_boot_ms = (time.perf_counter() - started) * 1000

    async def _drain_stderr(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        while chunk := await proc.stderr.read(1 << 16):
            self._stderr_tail.extend(chunk)
            del self._stderr_tail[:-4096]

    def _why(self, exc: BaseException) -> str:
        if isinstance(exc, asyncio.TimeoutError):
            return "timed out"
        tail = bytes(self._stderr_tail).decode("utf-8", "replace").strip().splitlines()
        return f"{exc}" + (f"; {tail[-1][:300]}" if tail else "")

    async def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(proc.wait(), 5)
        if self._stderr_task is not None:
            self._stderr_task.cancel()
            with contextlib.suppress(BaseException):
                await self._stderr_task

    async def close(self) -> None:
        await self._kill()
        with contextlib.suppress(OSError):
            self.data_path.unlink(missing_ok=True)
            self._workdir.rmdir()

    # ------------------------------------------------------------------ protocol
    async def _send(self, obj: dict[str, Any]) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise _Crash("the runner is not running")
        try:
            proc.stdin.write(orjson.dumps(obj) + b"\n")
            await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise _Crash("the runner closed its input") from exc

    async def _next_message(self, nonce: str, garbage: list[int]) -> dict[str, Any]:
        """The next line that carries ``nonce``; other lines are sandboxed code's output, counted and ignored."""
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        while True:
            try:
                line = await proc.stdout.readline()
            except (asyncio.LimitOverrunError, ValueError) as exc:
                raise _Crash("output flood on the protocol channel") from exc
            if not line:
                code = await proc.wait()
                raise _Crash(f"the runner exited (status {code})")
            try:
                msg = orjson.loads(line)
            except orjson.JSONDecodeError:
                msg = None
            if isinstance(msg, dict) and msg.get("nonce") == nonce:
                return msg
            garbage[0] += len(line)
            if garbage[0] > GARBAGE_LIMIT:
                raise _Crash("too much output outside the protocol")

    async def _watch_memory(self, pid: int) -> None:
        """Resident size over the cap kills the call (V8 flags cap heaps; this catches the rest)."""
        limit_kb = (self.limits.memory_mb + 512) * 1024  # headroom for Deno itself
        while True:
            await asyncio.sleep(0.1)
            try:
                with open(f"/proc/{pid}/status", encoding="ascii") as fh:
                    rss = next((int(x.split()[1]) for x in fh if x.startswith("VmRSS:")), 0)
            except (OSError, ValueError):
                return
            if rss > limit_kb:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
                return

    # ------------------------------------------------------------------ calls
    async def run(self, code: str, *, with_data: bool = False, llm_query: LlmQuery | None = None,
                  timeout_s: float | None = None) -> SandboxResult:
        """Run ``code`` in fresh globals. ``with_data``: the ``traces`` module reads ``self.data_path``."""
        async with self._lock:
            if self._proc is None or self._proc.returncode is not None:
                await self._start()
            assert self._proc is not None
            started = time.perf_counter()
            nonce = secrets.token_hex(16)
            allowance = max(0, min(self.limits.llm_calls_per_call, self.limits.llm_calls_per_run - self._llm_calls_run))
            watcher = asyncio.create_task(self._watch_memory(self._proc.pid))
            try:
                result = await asyncio.wait_for(
                    self._call(code, nonce, with_data, llm_query, allowance if llm_query else 0),
                    timeout_s or self.limits.timeout_s,
                )
            except asyncio.TimeoutError:
                await self._kill()
                result = SandboxResult(exit_code=124, timed_out=True,
                                       stderr=f"run_code timed out after {timeout_s or self.limits.timeout_s:g} s; "
                                              "the sandbox was restarted")
            except _Crash as exc:
                why = self._why(exc)
                await self._kill()
                result = SandboxResult(exit_code=137, crashed=True,
                                       stderr=f"the sandbox crashed ({why}); it was restarted, globals are gone")
            finally:
                watcher.cancel()
            result.duration_ms = (time.perf_counter() - started) * 1000
            return result

    async def _call(self, code: str, nonce: str, with_data: bool, llm_query: LlmQuery | None,
                    allowance: int) -> SandboxResult:
        await self._send({"nonce": nonce, "id": self.starts, "code": code, "data": with_data,
                          "max_llm_calls": allowance})
        garbage = [0]
        relayed = 0  # counted here, as relayed: a call that then times out or crashes has still spent them
        while True:
            msg = await self._next_message(nonce, garbage)
            kind = msg.get("type")
            if kind == "llm_query":
                reply: dict[str, Any] = {"nonce": nonce, "q": msg.get("q")}
                if llm_query is None:
                    reply["error"] = "llm_query is not available in this run"
                elif relayed >= allowance:
                    reply["error"] = f"llm_query limit reached ({allowance} calls left for this run_code call)"
                else:
                    relayed += 1
                    self._llm_calls_run += 1
                    try:
                        reply["text"] = await llm_query(str(msg.get("prompt", "")), str(msg.get("text", "")))
                    except Exception as exc:  # noqa: BLE001 - the model's failure is the sandboxed call's error
                        reply["error"] = f"{type(exc).__name__}: {exc}"
                await self._send(reply)
                continue
            if kind != "result":
                raise _Crash(f"unexpected message type {kind!r}")
            result = SandboxResult(
                exit_code=int(msg.get("exit_code", 1)), stdout=str(msg.get("stdout", "")),
                stderr=str(msg.get("stderr", "")), stdout_truncated=bool(msg.get("stdout_truncated")),
                stderr_truncated=bool(msg.get("stderr_truncated")), llm_calls=relayed,
            )
            if msg.get("fatal"):
                await self._kill()
                result.crashed = True
                result.stderr += "\n(the interpreter could not continue; the next call gets a fresh one)"
            return result
