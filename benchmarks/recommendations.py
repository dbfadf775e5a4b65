"""Recommendation quality on the labelled scenario suites (issue 4's target).

For every non-healthy run: does the advisor give at least one recommendation, and is
the top one the paper's first-choice remedy for the cause? The remedies (paper-notes
section 2): underfitting (LR too low) → raise the learning rate (row 1); overfitting →
more regularisation: raise weight decay, raise the learning rate, or lower the batch
size (row 3, Remarks 3 and 6); instability → lower the (maximum) learning rate, or the
momentum when it is the cause (rows 4 and 5); an LR range test → set the learning rate
to the range test's maximum (section 4).

The top recommendation is that of the first alert opened for the run's labelled
diagnosis, or, when none opened, of the end-of-log summary.

Suites: ``tune`` and ``holdout`` (synthetic, from the generator in memory) and
``trainer`` (the reference trainer's presets at seeds 5-7, read from
``fixtures/scenarios/trainer`` as ``advisor replay`` reads them, hyper-parameters
included, so recommendations carry current and suggested values).

Usage: ``python benchmarks/recommendations.py [--suites tune,holdout,trainer]``.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from advisor.labelled import read_suite
from advisor.model import AlertEvent
from advisor.model import Diagnosis
from advisor.model import Recommendation
from advisor.model import RunCurves
from advisor.pipeline import Pipeline
from advisor.replay import summarise
from advisor.ruleset import RuleBook
from advisor.ruleset import load_rulebook
from advisor.scenarios import suite

TRAINER = Path(__file__).resolve().parents[1] / "fixtures" / "scenarios" / "trainer"

FIRST_CHOICE: dict[Diagnosis, set[tuple[str, str]]] = {
    Diagnosis.UNDERFITTING: {("lr", "raise")},
    Diagnosis.OVERFITTING: {("weight_decay", "raise"), ("lr", "raise"), ("batch_size", "lower")},
    Diagnosis.INSTABILITY: {("lr", "lower"), ("momentum", "lower")},
    Diagnosis.LR_RANGE_TEST: {("lr", "set")},
}
TARGET = 0.90


def top_recommendation(label: Diagnosis, rc: RunCurves, book: RuleBook) -> Recommendation | None:
    """The advisor's top recommendation for one labelled run."""
    pipeline = Pipeline(book)
    alerts = pipeline.advance(rc)
    for alert in alerts:
        if alert.event is AlertEvent.OPENED and alert.finding.diagnosis is label:
            return alert.recommendations[0] if alert.recommendations else None
    recs = summarise(pipeline, rc, alerts).recommendations
    return recs[0] if recs else None


def labelled_runs(name: str) -> list[tuple[Diagnosis, RunCurves]]:
    """The runs of a suite with their labels."""
    if name != "trainer":
        return [(s.label, s.run_curves()) for s in suite(name)]
    return [(r.label, r.curves) for r in read_suite(TRAINER)]


def evaluate(name: str) -> tuple[int, int, int, Counter[str]]:
    """(runs, runs with a recommendation, runs whose top one is first-choice, misses)."""
    book = load_rulebook()
    runs = with_rec = right = 0
    misses: Counter[str] = Counter()
    for label, rc in labelled_runs(name):
        if label in (Diagnosis.HEALTHY, Diagnosis.UNKNOWN):
            continue
        runs += 1
        top = top_recommendation(label, rc, book)
        if top is None:
            misses[f"{label.value}: none"] += 1
            continue
        with_rec += 1
        if (top.param, top.action) in FIRST_CHOICE[label]:
            right += 1
        else:
            misses[f"{label.value}: {top.action} {top.param} ({rc.run})"] += 1
    return runs, with_rec, right, misses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suites", default="tune,holdout,trainer")
    args = parser.parse_args()
    ok = True
    for name in args.suites.split(","):
        runs, with_rec, right, misses = evaluate(name)
        share = right / runs if runs else 0.0
        print(f"{name}: {runs} non-healthy runs; {with_rec} with a recommendation; "
              f"top one first-choice in {right} ({100 * share:.1f}%)")  # fmt: skip
        for what, count in misses.most_common():
            print(f"    miss: {what} x{count}")
        passed = with_rec == runs and share >= TARGET
        ok &= passed
        print(f"{'PASS' if passed else 'FAIL'}  {name}: every non-healthy run advised, "
              f"first choice >= {100 * TARGET:.0f}%")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
