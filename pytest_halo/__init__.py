"""pytest-halo: capture agent traces from pytest runs, find systemic failure modes, gate on new ones."""

__version__ = "0.1.0"
