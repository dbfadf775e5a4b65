"""``advisor replay``: the pipeline over saved logs, on the logs' own clock."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from advisor.api import load_store
from advisor.config import Settings
from advisor.core.timeline import end_diagnosis
from advisor.model import Alert
from advisor.model import AlertEvent
from advisor.model import Problem
from advisor.model import RunCurves
from advisor.model import RunSummary
from advisor.pipeline import Pipeline
from advisor.ruleset import RuleBook


@dataclass(frozen=True, slots=True)
class RunReplay:
    """One run replayed: its curves, the alerts in order and the end-of-log summary."""

    curves: RunCurves
    alerts: tuple[Alert, ...]
    summary: RunSummary


def replay(
    paths: Iterable[Path],
    settings: Settings,
    book: RuleBook,
    on_problem: Callable[[Problem], None] | None = None,
) -> Iterator[RunReplay]:
    """Replay every run under ``paths``, run by run, in name order.

    Alerts go through the throttle of ``settings`` (``[alerts]``), as in ``watch``.

    Raises:
        InputError: a path does not exist or cannot be read.
    """
    store = load_store(paths, settings, on_problem)
    pipeline = Pipeline(book, settings.hparams, throttle_params=settings.throttle)
    for run in store.runs():
        rc = store.curves(run, settings.roles)
        alerts = pipeline.advance(rc)
        yield RunReplay(rc, tuple(alerts), summarise(pipeline, rc, alerts))


def summarise(pipeline: Pipeline, rc: RunCurves, alerts: Iterable[Alert]) -> RunSummary:
    """What the advisor says about a run at the end of its log."""
    from advisor.model import Diagnosis

    track = pipeline.runs.get(rc.run)
    first: dict[str, int] = {}
    for alert in alerts:
        if alert.event is AlertEvent.OPENED:
            first.setdefault(alert.finding.diagnosis.value, alert.finding.step)
    if track is None or track.last is None:
        return RunSummary(rc.run, Diagnosis.UNKNOWN, 0, 0, first)
    last = track.last
    advice = pipeline.summary_advice(rc)
    recs = advice.recommendations if advice is not None else ()
    diagnosis = end_diagnosis(track.hold, last)
    return RunSummary(rc.run, diagnosis, last.points, last.last_step, first, recs)
