"""The baseline kept per branch as a workflow artifact.

``save`` stages what a later run gates against (``findings.json``, ``signatures.json`` when present,
optionally the traces) into a folder that ``actions/upload-artifact`` uploads — the artifact upload
API belongs to the runner, not to the REST API. ``fetch`` finds, through the REST API, the newest
unexpired baseline artifact of the base branch's latest successful runs and extracts it.
The archive is untrusted: only the known file names are read, each size-capped, no paths.
"""

from __future__ import annotations

import io
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from engine.safe_io import atomic_writer

ARTIFACT_PREFIX = "halo-baseline"
FINDINGS = "findings.json"
SIGNATURES = "signatures.json"
TRACE_FILES = ("traces.jsonl", "tests.jsonl")
MAX_MEMBER_BYTES = 200 * 1024 * 1024
MAX_RUNS_SCANNED = 30


def artifact_name(job_slug: str) -> str:
    return f"{ARTIFACT_PREFIX}-{job_slug}"


def stage(findings: Path, out_dir: Path, *, include_traces: bool) -> list[Path]:
    """Copy the baseline files next to ``findings`` into ``out_dir``; returns what was staged."""
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [FINDINGS, SIGNATURES] + (list(TRACE_FILES) if include_traces else [])
    staged: list[Path] = []
    for name in names:
        src = findings if name == FINDINGS else findings.parent / name
        if src.is_file():
            dst = out_dir / name
            shutil.copyfile(src, dst)
            staged.append(dst)
    return staged


@dataclass(frozen=True)
class Found:
    """The artifact a baseline came from."""

    artifact_id: int
    run_id: int
    head_sha: str
    files: list[Path]


def _download_zip(url: str, token: str, timeout: float = 60.0) -> bytes:
    """GET the archive. GitHub answers 302 to a storage host outside PyGithub's allowed domains
    (``*.blob.core.windows.net``), so this is plain ``requests``, which drops our token on the
    cross-host redirect."""
    session = requests.Session()
    retry = Retry(total=3, backoff_factor=1.0, status_forcelist=(500, 502, 503, 504), allowed_methods=("GET",))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    session.mount("http://", HTTPAdapter(max_retries=retry))
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
               "User-Agent": "pytest-halo"}
    with session.get(url, headers=headers, stream=True, timeout=timeout) as resp:
        resp.raise_for_status()
        buf = bytearray()
        for chunk in resp.iter_content(1 << 16):
            buf += chunk
            if len(buf) > MAX_MEMBER_BYTES:
                raise ValueError("baseline artifact is larger than 200 MiB")
    return bytes(buf)


def extract(data: bytes, out_dir: Path) -> list[Path]:
    """Write the known baseline files from the archive into ``out_dir`` (nothing else, no paths).

    Each file is written atomically and never through a symlink (``UnsafePathError``, a ``ValueError``):
    a baseline the gate reads must be whole and must be where it was put.
    """
    wanted = {FINDINGS, SIGNATURES, *TRACE_FILES}
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            if info.is_dir() or info.filename not in wanted or info.file_size > MAX_MEMBER_BYTES:
                continue
            dst = out_dir / info.filename
            with zf.open(info) as src, atomic_writer(dst) as fh:
                shutil.copyfileobj(src, fh)
            written.append(dst)
    return written


def fetch(gh: Any, repository: str, *, token: str, branch: str, name: str, out_dir: Path) -> Found | None:
    """The newest baseline artifact of ``branch``'s successful push runs, extracted; None when there is none.

    An artifact that cannot be downloaded or holds no findings raises: the caller fails closed.
    """
    repo = gh.get_repo(repository)  # lazy client: no GET of the repository
    runs = repo.get_workflow_runs(branch=branch, status="success", event="push")
    for i, run in enumerate(runs):
        if i >= MAX_RUNS_SCANNED:
            break
        for art in run.get_artifacts():
            if art.name != name or art.expired:
                continue
            files = extract(_download_zip(art.archive_download_url, token), out_dir)
            if not any(p.name == FINDINGS for p in files):  # a broken baseline is not "no baseline"
                raise ValueError(f"baseline artifact {name} of run {run.id} holds no {FINDINGS}")
            return Found(artifact_id=art.id, run_id=run.id, head_sha=run.head_sha, files=files)
    return None
