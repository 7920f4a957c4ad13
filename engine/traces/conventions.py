"""Attribute keys pytest-halo itself writes onto spans (test linkage, run outcome, capture bookkeeping).

One place for them so capture, ingest, index and analysis never disagree on a spelling.
A "test" is any unit of run with an outcome: a pytest test, a tau-bench task trial, a
SWE-agent trajectory. Converters of transcripts set the same keys pytest capture does,
so the analysis has one notion of "failing run".
"""

TEST_NODEID = "halo.test.nodeid"
TEST_OUTCOME = "halo.test.outcome"  # passed | failed | skipped | error
TEST_PHASE = "halo.test.phase"  # setup | call | teardown
TEST_WORKER = "halo.test.worker"  # xdist worker id ("master" when serial)
RUN_ID = "halo.run.id"  # one pytest session / one import batch
RUN_REWARD = "halo.run.reward"  # transcript outcome (tau-bench reward)
RUN_EXIT_STATUS = "halo.run.exit_status"  # transcript outcome (SWE-agent exit status)
SOURCE_FORMAT = "halo.source.format"  # the ingest format a span came from
TRUNCATED_KEYS = "halo.truncated_attributes"  # attribute keys whose values capture capped
ORIGINAL_TRACE_ID = "halo.original.trace_id"  # producer's id when it was not a valid OTel id
ORIGINAL_SPAN_ID = "halo.original.span_id"
ORIGINAL_PARENT_ID = "halo.original.parent_id"
REPAIRED = "halo.repaired"  # comma-separated repairs applied at ingest (e.g. "end_before_start")

OUTCOMES_FAILING = frozenset({"failed", "error"})
