"""User detectors registered from a conftest.py hook: in the findings, in the gate, and never harmful."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import REPO

EXAMPLE = REPO / "examples" / "custom_detector"


def _copy_example(pytester) -> None:
    shutil.copytree(EXAMPLE, pytester.path, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".halo", "__pycache__"))


def test_conftest_detector_appears_in_findings_gate_and_brief(pytester, run_halo):
    _copy_example(pytester)
    run = run_halo("--halo", "--halo-fail-on", "any")
    run.result.assert_outcomes(passed=3, failed=3)
    findings = json.loads((run.dir / "findings.json").read_text())
    mode = next(m for m in findings["failure_modes"] if m["detector"] == "price_without_lookup")
    assert (mode["run_count"], mode["failing_test_count"], mode["category"]) == (3, 3, "ungrounded_answer")
    assert all("test_gift_card_price" in e["test_nodeid"] for e in mode["evidence"])
    assert mode["example"] == "A gift card costs $25.00."
    assert findings["gate"]["verdict"] == "fail" and mode["id"] in findings["gate"]["failing_ids"]
    assert "pricing: 3 runs quoted a price without a lookup" in findings["notes"]  # the findings hook ran
    assert mode["locations"][0]["path"] == "price_agent.py" and mode["locations"][0]["kind"] == "tool_definition"
    brief = json.loads((run.dir / "fix-brief.json").read_text())
    assert brief["modes"][0]["id"] == mode["id"]


def test_gate_against_a_baseline_without_the_detector_calls_its_mode_new(pytester, run_halo):
    _copy_example(pytester)
    conftest = pytester.path / "conftest.py"
    with_detector = conftest.read_text()
    conftest.write_text("")  # first run: no user detector, the baseline knows nothing of the mode
    pytester.path.joinpath("tests", "test_more.py").write_text(
        "import pytest\nfrom price_agent import ask\n\n\n@pytest.mark.parametrize('i', range(40))\n"
        "def test_mug(i):\n    assert ask('mug')\n")
    base = run_halo("--halo", "--halo-baseline", "base.json", "--halo-update-baseline")
    assert base.ret == 1 and (pytester.path / "base.json").exists()
    conftest.write_text(with_detector)
    run = run_halo("--halo", "--halo-baseline", "base.json")
    findings = json.loads((run.dir / "findings.json").read_text())
    mode = next(m for m in findings["failure_modes"] if m["detector"] == "price_without_lookup")
    assert mode["id"] in {e["id"] for e in findings["gate"]["new"]} and findings["gate"]["verdict"] == "fail"
    run.result.stdout.fnmatch_lines(["*gate*fail*"])


BAD_HOOKS = '''
from engine.analysis.detectors.api import Hit


class Explodes:
    name = "explodes"

    def on_span(self, span, run):
        raise RuntimeError("boom in a user detector")


class EverySpanTool:
    """on_span sees the normalized view: flag each get_price call with a non-dict input."""
    name = "tool_spans"

    def on_span(self, span, run):
        if span.category == "tool" and span.tool_name == "get_price":
            return [Hit(detector="", key="get_price", title="get_price was called", category="custom",
                        span_id=span.span_id)]
        return None


def pytest_halo_detectors(config):
    return [Explodes(), EverySpanTool()]


def pytest_halo_findings(config, findings):
    findings.failure_modes.clear()  # not allowed: undone by pytest-halo
'''


def test_findings_hook_cannot_delete_and_a_raising_detector_costs_one_note(pytester, run_halo):
    _copy_example(pytester)
    (pytester.path / "conftest.py").write_text(BAD_HOOKS)
    run = run_halo("--halo", "--halo-fail-on", "any")
    run.result.assert_outcomes(passed=3, failed=3)
    assert "Traceback" not in run.output()
    findings = json.loads((run.dir / "findings.json").read_text())
    by_detector = {m["detector"]: m for m in findings["failure_modes"]}
    assert by_detector["tool_spans"]["run_count"] == 3  # the three runs that looked the price up
    assert findings["gate"]["verdict"] == "fail"  # the deletion was undone, so the gate still sees the mode
    notes = "\n".join(findings["notes"])
    assert "detector explodes failed and was switched off: RuntimeError: boom in a user detector" in notes
    assert "findings hook pytest_halo_findings removed or shrank" in notes


@pytest.mark.parametrize("workers", [None, 2], ids=["serial", "xdist"])
def test_a_detector_that_is_not_one_stops_the_run_before_any_test(pytester, run_halo, workers):
    """Checked when registered, like a bad baseline: one line and exit 4, not a failed analysis after every test."""
    _copy_example(pytester)
    (pytester.path / "conftest.py").write_text(
        "class NoHooks:\n    name = 'nohooks'\n\n\ndef pytest_halo_detectors(config):\n    return [NoHooks()]\n")
    run = run_halo("--halo", workers=workers)
    out = run.output() + run.result.stderr.str()
    assert run.ret == pytest.ExitCode.USAGE_ERROR, out[-3000:]
    said = [x for x in out.splitlines() if "halo: bad detector" in x]
    assert len(said) == 1 and "detector 'nohooks' (NoHooks) needs `on_span(span, run)` or `on_run(run)`" in said[0]
    assert "Traceback" not in out and "INTERNALERROR" not in out
    assert not run.tests  # no test ran


def test_installed_entry_point_detectors_load_in_the_plugin_as_in_halo_analyze(pytester, run_halo):
    """``pytest --halo`` and ``halo analyze`` see the same detectors, so they reach the same gate verdict."""
    _copy_example(pytester)
    (pytester.path / "conftest.py").write_text("")  # no hook: only the installed distribution's entry point
    dist = pytester.path / "halo_prices-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: halo-prices\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[pytest_halo.detectors]\nprices = detectors:QuotedPriceWithoutLookup\n")
    run = run_halo("--halo", "--halo-fail-on", "any")
    run.result.assert_outcomes(passed=3, failed=3)
    findings = json.loads((run.dir / "findings.json").read_text())
    mode = next(m for m in findings["failure_modes"] if m["detector"] == "price_without_lookup")
    assert mode["run_count"] == 3 and mode["id"] in findings["gate"]["failing_ids"]
