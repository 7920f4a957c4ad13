"""Where the sandbox's pieces live, fetching the pinned Pyodide once, and checking what is there.

Deno comes from PyPI (the ``deno`` package puts its binary in the venv). Pyodide comes from
the npm registry through Deno's own npm client (``deno cache npm:pyodide@VERSION``, which
honours ``NPM_CONFIG_REGISTRY`` and the system CA store for corporate proxies), is verified
file by file against pinned sha256 digests, and is copied into the cache directory. After
that everything runs offline; a memory snapshot of a booted interpreter makes fresh starts fast.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

PYODIDE_VERSION = "314.0.7"
PYODIDE_FILES: dict[str, str] = {
    "pyodide.mjs": "6f1d60f7bf529beb300f0f47983c921d3982363640ba20af0e38efdddbc66109",
    "pyodide.asm.mjs": "f7cdc8ece80678ceb712f8e65ebe6d3a83203a180c399865f49612a051693635",
    "pyodide.asm.wasm": "cc36e3cab04fdfc9a63ff13eb52eae2b911bf46c025cc7b281f394bd3de1d5e6",
    "python_stdlib.zip": "fa1957e5777068fc4f7437f96d860ae2fbe9c19732ba06c84e004ec16dd7dd7a",
    "pyodide-lock.json": "5dc2fc119108bc148c7457dc86e7675b5c87e1cafd420b9c34c1eaef7b36c010",
}
RUNNER = Path(__file__).with_name("runner.mjs")
SNAPSHOT_MAKER = Path(__file__).with_name("make_snapshot.mjs")
PRELUDE = Path(__file__).with_name("prelude.py")
SETUP_TIMEOUT_S = 600


class SandboxUnavailable(RuntimeError):
    """Deno or Pyodide cannot be had: the ``run_code`` tool is left out with this message."""


def cache_root() -> Path:
    """``$HALO_CACHE_DIR``, else ``$XDG_CACHE_HOME/pytest-halo``, else ``~/.cache/pytest-halo``."""
    env = os.environ.get("HALO_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "pytest-halo"


def sandbox_dir() -> Path:
    return cache_root() / "sandbox"


def pyodide_dir() -> Path:
    return sandbox_dir() / f"pyodide-{PYODIDE_VERSION}"


def deno_dir() -> Path:
    """Deno's own module cache for the runner (never the user's ``DENO_DIR``)."""
    return sandbox_dir() / "deno-dir"


def find_deno() -> Path | None:
    """The Deno binary: ``$HALO_DENO``, the ``deno`` PyPI package's, or one on PATH."""
    env = os.environ.get("HALO_DENO")
    if env and Path(env).is_file():
        return Path(env)
    try:
        import deno  # the PyPI package: its binary sits in the venv

        found = Path(deno.find_deno_bin())
        if found.is_file():
            return found
    except Exception:  # noqa: BLE001 - absent or broken package: fall back to PATH
        pass
    on_path = shutil.which("deno")
    return Path(on_path) if on_path else None


def deno_version(deno: Path) -> str:
    out = subprocess.run([str(deno), "--version"], capture_output=True, text=True, timeout=30, check=False)
    return (out.stdout.splitlines() or ["?"])[0]


def snapshot_path(deno: Path) -> Path:
    """The snapshot is only valid for one Deno and one Pyodide: both are in its name."""
    tag = hashlib.sha256(f"{deno_version(deno)}|{PYODIDE_VERSION}|{_file_digest(PRELUDE)}".encode()).hexdigest()[:16]
    return sandbox_dir() / f"snapshot-{tag}.bin"


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_pyodide(folder: Path) -> list[str]:
    """Problems with the Pyodide folder (missing or altered files); empty when it is intact."""
    problems = []
    for name, digest in PYODIDE_FILES.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"missing {name}")
        elif _file_digest(path) != digest:
            problems.append(f"sha256 mismatch for {name}")
    return problems


def runtime_env() -> dict[str, str]:
    """The runner's whole environment: no API keys or tokens of the host reach the child."""
    return {"NO_COLOR": "1", "DENO_NO_UPDATE_CHECK": "1", "DENO_DIR": str(deno_dir())}


def _fetch_env(deno_cache: str) -> dict[str, str]:
    """For the one-time fetch: the registry and proxy settings, and the system CA store."""
    env = {**runtime_env(), "DENO_DIR": deno_cache, "DENO_TLS_CA_STORE": "system"}
    for key in ("NPM_CONFIG_REGISTRY", "npm_config_registry", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY",
                "https_proxy", "http_proxy", "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR", "HOME", "PATH"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


def fetch_pyodide(deno: Path, log: list[str]) -> Path:
    """Fetch the pinned Pyodide with Deno's npm client, verify it, copy its five files into the cache."""
    target = pyodide_dir()
    if not verify_pyodide(target):
        log.append(f"pyodide {PYODIDE_VERSION}: present and verified at {target}")
        return target
    with tempfile.TemporaryDirectory(prefix="halo-pyodide-") as tmp:
        env = _fetch_env(tmp)
        proc = subprocess.run(
            [str(deno), "cache", "--no-config", f"npm:pyodide@{PYODIDE_VERSION}"],
            capture_output=True, text=True, env=env, cwd=tmp, timeout=SETUP_TIMEOUT_S, check=False,
        )
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise SandboxUnavailable(f"could not fetch pyodide@{PYODIDE_VERSION} from the npm registry: {tail}")
        found = sorted(Path(tmp, "npm").glob(f"*/pyodide/{PYODIDE_VERSION}"))
        if not found:
            raise SandboxUnavailable(f"pyodide@{PYODIDE_VERSION} was fetched but not found in Deno's npm cache")
        bad = verify_pyodide(found[0])
        if bad:
            raise SandboxUnavailable(f"pyodide@{PYODIDE_VERSION} failed verification: {', '.join(bad)}")
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        for name in PYODIDE_FILES:
            shutil.copyfile(found[0] / name, staging / name)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    log.append(f"pyodide {PYODIDE_VERSION}: fetched and verified into {target}")
    return target


def make_snapshot(deno: Path, log: list[str]) -> Path:
    """Boot Pyodide once with the prelude and save its memory: later starts take ~0.5 s instead of ~3 s."""
    snap = snapshot_path(deno)
    if snap.is_file() and snap.stat().st_size > 0:
        log.append(f"snapshot: present at {snap}")
        return snap
    partial = snap.with_suffix(".partial")
    folder = pyodide_dir()
    proc = subprocess.run(
        [str(deno), "run", "--no-prompt", "--no-config", "--no-remote", "--no-npm", "--cached-only",
         f"--allow-read={folder},{PRELUDE}", f"--allow-write={partial}",
         str(SNAPSHOT_MAKER), str(folder), str(PRELUDE), str(partial)],
        capture_output=True, text=True, env=runtime_env(), cwd="/", timeout=SETUP_TIMEOUT_S, check=False,
    )
    if proc.returncode != 0 or not partial.is_file():
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise SandboxUnavailable(f"could not make the Pyodide snapshot: {tail}")
    partial.replace(snap)
    log.append(f"snapshot: written to {snap} ({snap.stat().st_size // (1 << 20)} MB)")
    return snap


def setup() -> list[str]:
    """``halo sandbox setup``: everything fetched, verified and snapshotted; returns what it did."""
    deno = find_deno()
    if deno is None:
        raise SandboxUnavailable('Deno not found: pip install "pytest-halo[llm]" (the deno package) or set HALO_DENO')
    log = [f"deno: {deno} ({deno_version(deno)})"]
    sandbox_dir().mkdir(parents=True, exist_ok=True)
    fetch_pyodide(deno, log)
    make_snapshot(deno, log)
    return log


@dataclass
class Doctor:
    """What ``halo sandbox doctor`` prints: each piece found or missing, and whether run_code can work."""

    ok: bool
    lines: list[str] = field(default_factory=list)


def doctor() -> Doctor:
    lines = []
    deno = find_deno()
    lines.append(f"deno: {deno} ({deno_version(deno)})" if deno else "deno: MISSING (pip install deno, or HALO_DENO)")
    bad = verify_pyodide(pyodide_dir())
    lines.append(f"pyodide {PYODIDE_VERSION}: " + ("ok at " + str(pyodide_dir()) if not bad else
                                                  "MISSING or altered (" + ", ".join(bad) + "): run `halo sandbox setup`"))
    snap = snapshot_path(deno) if deno else None
    if snap is not None:
        lines.append(f"snapshot: {'ok at ' + str(snap) if snap.is_file() else 'missing (fresh starts take ~3 s): run `halo sandbox setup`'}")
    return Doctor(ok=deno is not None and not bad, lines=lines)


def require() -> tuple[Path, Path, Path | None]:
    """(deno, pyodide folder, snapshot or None) ready to run offline, or ``SandboxUnavailable`` saying why."""
    deno = find_deno()
    if deno is None:
        raise SandboxUnavailable('run_code unavailable: Deno not found (pip install "pytest-halo[llm]")')
    folder = pyodide_dir()
    bad = verify_pyodide(folder)
    if bad:
        raise SandboxUnavailable(f"run_code unavailable: Pyodide {PYODIDE_VERSION} not set up ({bad[0]}); "
                                 "run `halo sandbox setup` once (needs the npm registry)")
    try:
        snap: Path | None = make_snapshot(deno, [])  # once per Deno/Pyodide/prelude; ~4 s, then ~0.5 s starts
    except (SandboxUnavailable, OSError, subprocess.SubprocessError):
        snap = None  # fresh starts without a snapshot take ~3 s but work
    return deno, folder, snap
