"""Traces: canonical span, format ingest, normalized view, index and bounded store."""
