"""Runs once inside Pyodide at boot (and stays in the memory snapshot): what sandboxed code can use.

``traces`` is a read-only module over the data file the host wrote for this call (one rollup
row per trace, plus the normalized spans of the traces the call selected); ``llm_query(prompt,
text)`` asks the host's synthesis model, under the run's budget. ``_halo_exec`` runs one call's
code in fresh globals. Only the standard library exists in here (sqlite3 included).
"""

import builtins
import json
import sqlite3
import sys
import traceback
import types

DATA_FILE = "/halo/data.json"
_EMPTY = {"meta": {"traces": 0, "spans": 0, "note": "no trace data was given to this call"},
          "rollups": {"columns": [], "rows": []}, "spans": []}


def _make_traces_module() -> types.ModuleType:
    mod = types.ModuleType("traces", "Read-only trace data of this call: rollups(), spans(), sql(), meta().")
    state: dict = {"data": None, "rollups": None}

    def _load() -> dict:
        if state["data"] is None:
            try:
                with open(DATA_FILE, encoding="utf-8") as fh:
                    state["data"] = json.load(fh)
            except FileNotFoundError:
                state["data"] = _EMPTY
        return state["data"]

    def meta() -> dict:
        """Counts, caps and what was selected for this call."""
        return dict(_load()["meta"])

    def rollups() -> list:
        """One dict per trace: trace_id, span_count, duration_ms, has_errors, error_span_count, tool_names, ..."""
        if state["rollups"] is None:
            table = _load()["rollups"]
            columns = table["columns"]
            state["rollups"] = [dict(zip(columns, row, strict=True)) for row in table["rows"]]
        return state["rollups"]

    def spans(trace_id=None) -> list:
        """Normalized spans of the selected traces (all of them, or one trace's)."""
        rows = _load()["spans"]
        return rows if trace_id is None else [s for s in rows if s.get("trace_id") == trace_id]

    def sql() -> sqlite3.Connection:
        """An in-memory SQLite database with tables ``traces`` and ``spans`` (lists stored as JSON text)."""
        conn = sqlite3.connect(":memory:")
        for table, rows in (("traces", rollups()), ("spans", spans())):
            cols: list = []
            for row in rows:
                for key in row:
                    if key not in cols:
                        cols.append(key)
            if not cols:
                cols = ["trace_id"]
            conn.execute(f"CREATE TABLE {table} ({', '.join(repr(c) for c in cols)})")
            marks = ", ".join("?" for _ in cols)
            conn.executemany(
                f"INSERT INTO {table} VALUES ({marks})",
                ([json.dumps(v) if isinstance(v, (list, dict)) else v for v in (r.get(c) for c in cols)] for r in rows),
            )
        return conn

    def _reset() -> None:
        state["data"] = state["rollups"] = None

    for name, fn in {"meta": meta, "rollups": rollups, "spans": spans, "sql": sql, "_reset": _reset}.items():
        setattr(mod, name, fn)
    return mod


def llm_query(prompt: str, text: str = "") -> str:
    """Ask the host's synthesis model about ``text``; counts against the run's token and dollar budget."""
    if not isinstance(prompt, str) or not isinstance(text, str):
        raise TypeError("llm_query(prompt: str, text: str)")
    import halo_host  # registered by the runner on every boot (JS functions cannot live in a snapshot)

    reply = halo_host.llm_query(prompt, text)
    if isinstance(reply, str) and reply.startswith("\x00error:"):
        raise RuntimeError(reply[len("\x00error:"):])
    return str(reply)


def _halo_exec(code: str) -> int:
    """Run one call's code in fresh globals; the exit code of a process (tracebacks go to stderr)."""
    sys.modules["traces"]._reset()
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    try:
        exec(compile(code, "<run_code>", "exec"), namespace)
    except SystemExit as exc:
        code_ = exc.code
        return code_ if isinstance(code_, int) else (0 if code_ is None else 1)
    except BaseException as exc:  # noqa: BLE001 - the user's error is the call's result
        tb = exc.__traceback__
        traceback.print_exception(type(exc), exc, tb.tb_next if tb is not None else None)  # drop this frame
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    return 0


sys.modules["traces"] = _make_traces_module()
vars(builtins)["llm_query"] = llm_query
