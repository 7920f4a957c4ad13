"""The on-disk response cache and the record/replay file.

A cached answer is the provider's JSON body, stored under a hash of everything that shaped
it (base URL, extra headers, model, messages, tools, parameters); only successful answers are
stored, so a rerun over unchanged traces makes no request. The replay file holds the same bodies keyed
without the base URL, so a recording replays against any server (or none).
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import orjson


def request_key(payload: dict[str, Any], base_url: str | None, headers: dict[str, str] | None = None) -> str:
    """sha256 of the request as sent, plus the base URL and extra headers (``None`` for the replay key).

    Headers can route a request to another model or provider (OpenRouter, LiteLLM), so they are
    part of what shaped the answer; hashed with the rest, so no header value reaches the file name.
    """
    blob = orjson.dumps({"base_url": base_url, "headers": {k.lower(): v for k, v in (headers or {}).items()},
                         "request": payload}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(blob).hexdigest()


class ResponseCache:
    """Files ``<dir>/<k[:2]>/<k>.json``; unreadable or corrupt entries are misses, never errors."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            data = orjson.loads(self._path(key).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def put(self, key: str, body: dict[str, Any]) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_bytes(orjson.dumps(body))
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only cache costs requests, never the run


class ReplayLog:
    """Record into ``path`` when it does not exist yet; replay from it when it does.

    Replaying a request that is not in the file raises ``KeyError`` (the client's ``ModelError``):
    the engine stops with one line and the deterministic findings stand.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.replaying = self.path.is_file()
        self._answers: dict[str, list[dict[str, Any]]] = {}
        self._served: dict[str, int] = {}
        self._lock = threading.Lock()
        if self.replaying:
            for line in self.path.read_bytes().splitlines():
                if not line.strip():
                    continue
                try:
                    rec = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(rec, dict) and isinstance(rec.get("key"), str) and isinstance(rec.get("body"), dict):
                    self._answers.setdefault(rec["key"], []).append(rec["body"])
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_bytes(b"")

    def answer(self, key: str) -> dict[str, Any]:
        with self._lock:
            answers = self._answers.get(key)
            if not answers:
                raise KeyError(f"request {key[:12]} is not in the replay file {self.path}")
            n = self._served.get(key, 0)
            self._served[key] = n + 1
            return answers[min(n, len(answers) - 1)]

    def record(self, key: str, body: dict[str, Any]) -> None:
        with self._lock, open(self.path, "ab") as fh:
            fh.write(orjson.dumps({"key": key, "body": body}) + b"\n")
