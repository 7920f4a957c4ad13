"""``run_code``: Python in Pyodide inside a locked-down Deno, offline after one setup step.

Self-contained: nothing here imports the rest of the engine. The host hands it plain data rows
(``data.write_data``) and, optionally, an async ``llm_query(prompt, text)`` relay.
"""

from engine.sandbox.data import write_data
from engine.sandbox.provision import SandboxUnavailable, doctor, setup
from engine.sandbox.runtime import Sandbox, SandboxLimits, SandboxResult

__all__ = ["Sandbox", "SandboxLimits", "SandboxResult", "SandboxUnavailable", "doctor", "setup", "write_data"]
