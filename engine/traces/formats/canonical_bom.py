"""Canonical JSONL that starts with a UTF-8 byte-order mark (some Windows editors and tools write one).

The fast paths (the analysis' typed scan, the index's byte offsets) read canonical files in
place, line by line, and would count the BOM-prefixed first line as malformed — losing the
first span. Such files are detected under this name and converted once (the BOM dropped) by
the canonical reader, like any other non-canonical input.
"""

from __future__ import annotations

from engine.traces.formats.canonical import iter_file, looks_like

FORMAT = "canonical_bom"
__all__ = ["FORMAT", "iter_file", "looks_like"]
