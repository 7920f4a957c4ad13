"""Analysis knobs, validated once at the boundary (CLI flags, plugin ini, tests).

Defaults, and why:

* ``min_runs=2`` — a failure seen in one run is an anecdote; twice is a pattern.
* ``min_prevalence=0.002`` — in a CI suite of a few hundred runs the 2-run floor decides; in a
  production dump of 100k runs a mode must touch at least 1 run in 500 to be worth a person's time.
* ``alpha=0.05`` — significance for enrichment (after Benjamini-Hochberg), regression and "new".
* Outliers: above median + ``outlier_k`` x MAD (scaled to sigma) *and* at least ``outlier_min_ratio`` x the
  median *and* at least ``outlier_min_excess_ms`` / ``outlier_min_excess_tokens`` over it, only for groups
  with at least ``outlier_min_samples`` observations — tight distributions (scripted models, cached tools)
  otherwise flag spans a few milliseconds slower than usual. Outlier modes are reported, never gated.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AnalysisConfig(BaseModel):
    """Thresholds for calling a failure mode systemic, gating it and capping the outputs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_runs: int = Field(2, ge=1, description="a mode must recur in at least this many runs")
    min_prevalence: float = Field(0.002, ge=0.0, le=1.0, description="...and in at least this share of runs")
    alpha: float = Field(0.05, gt=0.0, lt=1.0, description="significance level for enrichment/regression/new")
    contrastive_min_runs: int = Field(3, ge=1, description="a signature must be in this many runs to be tested")
    repeat_min: int = Field(2, ge=2, description="identical tool calls in one run that count as repeated")
    retry_min: int = Field(3, ge=2, description="consecutive calls of one tool after errors that form a loop")
    refusal_loop_min: int = Field(2, ge=2, description="refusals in one run that form a refusal loop")
    outlier_k: float = Field(5.0, gt=0.0, description="outlier threshold in robust sigmas (1.4826 x MAD)")
    outlier_min_samples: int = Field(30, ge=5, description="minimum group size before outliers are judged")
    outlier_min_ratio: float = Field(2.0, ge=1.0, description="an outlier must also be this many times the median")
    outlier_min_excess_ms: float = Field(500.0, ge=0.0, description="a latency outlier must also exceed the median by this much")
    outlier_min_excess_tokens: float = Field(
        500.0, ge=0.0, description="a token outlier must also exceed the median by this many tokens"
    )
    max_evidence: int = Field(10, ge=1, description="evidence entries kept per mode")
    max_one_off_evidence: int = Field(3, ge=1)
    max_excerpt_chars: int = Field(600, ge=40)
    max_observed: int = Field(5000, ge=0, description="signature counts kept for the next baseline")
