"""The issue's targets on the labelled suites, at fixed seeds (see benchmarks/diagnosis.py)."""

from __future__ import annotations

import numpy as np
import pytest

from advisor.core.analysis import analyze
from advisor.core.timeline import ReplayParams
from advisor.core.timeline import replay_run
from advisor.model import Diagnosis
from advisor.scenarios import suite

# Analyse every evaluation, so that an alert opening and closing between two points of
# the coarse grid still counts.
FULL = ReplayParams(max_analyses=1 << 30)


@pytest.mark.parametrize("name", ["tune", "holdout"])
def test_end_of_log_accuracy_at_least_95_percent(name: str) -> None:
    """The diagnosis at the end of each log matches its label for >= 95% of the runs."""
    runs = suite(name)
    wrong = [s.name for s in runs if analyze(s.run_curves()).diagnosis is not s.label]
    assert 1 - len(wrong) / len(runs) >= 0.95, wrong


@pytest.mark.parametrize("name", ["tune", "holdout"])
def test_no_alert_on_healthy_runs(name: str) -> None:
    """No healthy run opens an alert at any point of its replay."""
    noisy = [
        s.name
        for s in suite(name)
        if s.label is Diagnosis.HEALTHY and replay_run(s.run_curves(), FULL)[0]
    ]
    assert noisy == []


def test_suites_are_deterministic() -> None:
    """The generator returns the same runs on every call."""
    a, b = suite("tune"), suite("tune")
    assert [s.name for s in a] == [s.name for s in b]
    for x, y in zip(a, b, strict=True):
        if x.val is None or y.val is None:
            assert x.val is None and y.val is None
        else:
            assert np.array_equal(x.val, y.val, equal_nan=True)
