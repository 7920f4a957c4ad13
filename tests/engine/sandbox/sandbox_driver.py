"""A ``Sandbox`` driven on its own event loop, so tests read like plain calls."""

from __future__ import annotations

import asyncio
from typing import Any

from engine.sandbox import Sandbox, SandboxLimits


class SyncSandbox:
    """Drives one ``Sandbox`` on its own event loop, so tests read like plain calls."""

    def __init__(self, limits: SandboxLimits) -> None:
        self.loop = asyncio.new_event_loop()
        self.sandbox = Sandbox(limits)

    def run(self, code: str, **kwargs: Any) -> Any:
        return self.loop.run_until_complete(self.sandbox.run(code, **kwargs))

    def close(self) -> None:
        self.loop.run_until_complete(self.sandbox.close())
        self.loop.close()
