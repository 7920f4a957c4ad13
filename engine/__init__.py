"""pytest-halo's engine: trace ingest, index and store; failure-mode analysis; publishing."""

__version__ = "0.1.0"

# Another distribution (halo-engine) also ships a top-level package named ``engine``; this marker
# tells ours apart (checked by ``pytest_halo.engine_check`` before anything else is imported).
PYTEST_HALO_ENGINE = True
