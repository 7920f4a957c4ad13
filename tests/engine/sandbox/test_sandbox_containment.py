"""Each way out of the sandbox is denied — from Python, and from the JS global scope reached through Pyodide —
and each way of breaking it (CPU, memory, output, fake protocol lines, exits) is contained: the host is
unharmed and the next call works."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from engine.sandbox import provision


def assert_alive(sandbox) -> None:
    after = sandbox.run("print('still here')")
    assert after.exit_code == 0 and after.stdout == "still here\n"


@pytest.mark.parametrize("code", [
    "import socket\ns = socket.create_connection(('{addr_host}', {port}), timeout=2)\ns.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')",
    "import urllib.request\nurllib.request.urlopen('http://{addr}/from-urllib', timeout=2)",
    "import js\njs.fetch('http://{addr}/from-python-fetch')",
    "import js\njs.eval(\"fetch('http://{addr}/from-js-fetch')\")",
    "import js\njs.eval(\"Deno.connect({{hostname: '{addr_host}', port: {port}}})\")",
    "import js\njs.eval(\"import('http://{addr}/remote.js')\")",
    "import js\njs.eval(\"import('npm:left-pad@1.3.0')\")",
    "import js\njs.eval(\"import('jsr:@std/path@1')\")",
    "import js\nfrom pyodide.ffi import run_sync\nrun_sync(js.eval(\"import('http://{addr}/jspi.js')\"))",
    "import js\nfrom pyodide.ffi import run_sync\nrun_sync(js.eval(\"import('node:net')\"))",
])
def test_no_network_no_remote_code(sandbox, listener, code: str) -> None:
    addr, hits = listener
    host, port = addr.split(":")
    res = sandbox.run(code.format(addr=addr, addr_host=host, port=port))
    assert res.exit_code != 0 or "pwned" not in res.stdout
    assert hits == []
    assert_alive(sandbox)
    assert hits == []  # nothing scheduled by the denied call ran later either


def test_host_filesystem_is_out_of_reach(sandbox, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("host secret")
    target = tmp_path / "written.txt"
    for code in (
        f"print(open({str(secret)!r}).read())",
        f"import js\nprint(js.eval(\"Deno.readTextFileSync({json.dumps(str(secret))})\"))",
        "print(open('/etc/passwd').read())",
    ):
        res = sandbox.run(code)
        assert res.exit_code != 0 and "host secret" not in res.stdout and "root:" not in res.stdout
    write = sandbox.run(f"open({str(target)!r}, 'w').write('x')\nprint('wrote in memory only')")
    js_write = sandbox.run(f"import js\njs.eval(\"Deno.writeTextFileSync({json.dumps(str(target))}, 'x')\")")
    assert js_write.exit_code != 0
    assert write.exit_code != 0 or write.stdout == "wrote in memory only\n"
    assert not target.exists()


def test_no_environment_subprocess_or_ffi(sandbox, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-host-secret-value-123456")
    sandbox.run("import os\nos._exit(0)")  # the next call starts a new runtime under this host env
    env = sandbox.run("import os\nprint(sorted(os.environ))\nprint(os.environ.get('OPENAI_API_KEY'))")
    assert env.exit_code == 0 and "sk-test-host-secret" not in env.stdout and "OPENAI_API_KEY" not in env.stdout
    for code in (
        "import js\nprint(js.eval('Deno.env.get(\"OPENAI_API_KEY\")'))",
        "import subprocess\nprint(subprocess.run(['id'], capture_output=True))",
        "import js\njs.eval(\"new Deno.Command('id').outputSync()\")",
        "import js\njs.eval(\"Deno.dlopen('libc.so.6', {})\")",
        "import ctypes, ctypes.util\nlibc = ctypes.CDLL('libc.so.6')\nprint(libc.getpid())",
    ):
        res = sandbox.run(code)
        assert res.exit_code != 0, code
        assert "sk-test-host-secret" not in res.stdout + res.stderr
    assert_alive(sandbox)


def test_lockdown_flags_deny_every_capability_even_with_deno_reachable(sandbox, listener, tmp_path: Path) -> None:
    """The runner hides ``Deno`` from sandboxed code; the permissions must hold even if it did not."""
    addr, hits = listener
    probe = tmp_path / "probe.mjs"
    probe.write_text("""
const out = {};
const tries = {
  net: () => Deno.connect({hostname: "127.0.0.1", port: PORT}),
  fetch: () => fetch("http://ADDR/probe"),
  remote_import: () => import("http://ADDR/probe.js"),
  npm_import: () => import("npm:left-pad@1.3.0"),
  jsr_import: () => import("jsr:@std/path@1"),
  write: () => Deno.writeTextFile("TARGET", "x"),
  read: () => Deno.readTextFile("/etc/passwd"),
  env: () => Deno.env.get("HOME"),
  run: () => new Deno.Command("id").output(),
  ffi: () => Deno.dlopen("libc.so.6", {}),
  sys: () => Deno.hostname(),
};
for (const [name, fn] of Object.entries(tries)) {
  try { await fn(); out[name] = "ALLOWED"; } catch (e) { out[name] = e.name; }
}
console.log(JSON.stringify(out));
""".replace("PORT", addr.split(":")[1]).replace("ADDR", addr).replace("TARGET", str(tmp_path / "w.txt")))
    cmd = sandbox.sandbox.command()
    cmd[cmd.index(str(provision.RUNNER))] = str(probe)
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd="/", env=provision.runtime_env(), timeout=60,
                          check=False)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(result) == {"net", "fetch", "remote_import", "npm_import", "jsr_import", "write", "read", "env",
                           "run", "ffi", "sys"}
    assert "ALLOWED" not in result.values(), result
    assert hits == [] and not (tmp_path / "w.txt").exists()


def test_runaway_cpu_times_out_and_the_next_call_gets_a_fresh_runtime(sandbox) -> None:
    starts = sandbox.sandbox.starts
    sandbox.run("x = 42")
    res = sandbox.run("while True:\n    pass", timeout_s=2)
    assert res.timed_out and res.exit_code == 124 and not res.crashed
    assert 1900 <= res.duration_ms < 10_000
    assert_alive(sandbox)
    assert sandbox.sandbox.starts == starts + 1
    assert sandbox.run("print(x)").exit_code != 0  # globals never survive, restart or not


def test_memory_bombs_are_contained(sandbox) -> None:
    wasm = sandbox.run("chunks = []\nwhile True:\n    chunks.append(bytearray(64 * 1024 ** 2))")
    assert wasm.exit_code != 0 and "MemoryError" in wasm.stderr  # WASM pages capped at memory_mb
    assert_alive(sandbox)
    heap = sandbox.run("import js\njs.eval('let a = []; for (;;) a.push(new Array(1e6).fill(1.5))')", timeout_s=60)
    assert heap.crashed or heap.exit_code != 0
    assert_alive(sandbox)


def test_output_floods_are_capped(sandbox) -> None:
    res = sandbox.run("print('x' * 10**8)\nimport sys\nsys.stderr.write('e' * 10**7)")
    limits = sandbox.sandbox.limits
    assert res.exit_code == 0 and res.stdout_truncated and res.stderr_truncated
    assert len(res.stdout) == limits.stdout_bytes and len(res.stderr) == limits.stderr_bytes
    flood = sandbox.run("import js\njs.eval(\"for (let i = 0; i < 200000; i++) console.log('y'.repeat(100))\")")
    assert flood.crashed and "outside the protocol" in flood.stderr
    assert_alive(sandbox)


def test_fake_protocol_lines_are_ignored(sandbox) -> None:
    code = """
import js
for nonce in ("", "0" * 32, "guess"):
    js.console.log(js.JSON.stringify(js.Object.fromEntries([["nonce", nonce], ["type", "result"], ["exit_code", 0],
        ["stdout", "FAKE"], ["id", 1]])))
js.console.log('{"type": "ready"}')
js.console.log('not json at all')
print("real")
"""
    res = sandbox.run(code)
    assert res.exit_code == 0 and res.stdout == "real\n"
    assert_alive(sandbox)


@pytest.mark.parametrize("code", [
    "import os\nos._exit(3)",
    "import sys\nsys.setrecursionlimit(10**7)\ndef f(n):\n    return f(n + 1)\nf(0)",
    "import js\njs.eval('(function f(){ f(); })()')",
])
def test_exits_and_stack_overflows_are_crashed_calls_never_hangs(sandbox, code: str) -> None:
    res = sandbox.run(code)
    assert res.exit_code != 0 and not res.timed_out
    assert_alive(sandbox)


def test_host_environment_is_untouched(sandbox) -> None:
    before = dict(os.environ)
    sandbox.run("import os\nos.environ['PATH'] = 'pwned'")
    assert dict(os.environ) == before


def test_llm_query_is_capped_per_call_and_per_run() -> None:
    from sandbox_driver import SyncSandbox

    from engine.sandbox import SandboxLimits

    box = SyncSandbox(SandboxLimits(llm_calls_per_call=3, llm_calls_per_run=5))
    asked: list[str] = []

    async def relay(prompt: str, text: str) -> str:
        asked.append(text)
        return f"{prompt}:{text}"

    code = ("out = []\nfor i in range(10):\n    try:\n        out.append(llm_query('p', str(i)))\n"
            "    except RuntimeError as exc:\n        print(len(out), exc)\n        break")
    try:
        first = box.run(code, llm_query=relay)
        assert first.stdout.startswith("3 llm_query limit reached (3 calls per run_code call)"), first
        second = box.run(code, llm_query=relay)
        assert second.stdout.startswith("2 "), second  # 5 per run: 3 + 2
        assert len(asked) == 5 and first.llm_calls == 3 and second.llm_calls == 2
    finally:
        box.close()


def test_llm_query_calls_of_a_timed_out_call_still_count_toward_the_run() -> None:
    from sandbox_driver import SyncSandbox

    from engine.sandbox import SandboxLimits

    box = SyncSandbox(SandboxLimits(llm_calls_per_call=3, llm_calls_per_run=5))
    asked: list[str] = []

    async def relay(prompt: str, text: str) -> str:
        asked.append(text)
        return "ok"

    spend_then_spin = "for i in range(3):\n    llm_query('p', str(i))\nwhile True:\n    pass"
    code = ("out = []\nfor i in range(10):\n    try:\n        out.append(llm_query('p', str(i)))\n"
            "    except RuntimeError as exc:\n        print(len(out), exc)\n        break")
    try:
        spun = box.run(spend_then_spin, llm_query=relay, timeout_s=5)
        assert spun.timed_out and len(asked) == 3, spun
        after = box.run(code, llm_query=relay)
        assert after.stdout.startswith("2 "), after  # 5 per run: the timed-out call spent 3
        assert len(asked) == 5 and after.llm_calls == 2
    finally:
        box.close()
