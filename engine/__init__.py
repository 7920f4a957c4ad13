"""pytest-halo's engine: trace ingest, index and store; failure-mode analysis; publishing."""

__version__ = "0.1.0"
