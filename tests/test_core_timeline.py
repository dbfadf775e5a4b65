"""Replay: alert lifecycle, steps as if live, and exactness of the coarse walk."""

from __future__ import annotations

import numpy as np
import pytest

from advisor.core.timeline import ReplayParams
from advisor.core.timeline import replay_run
from advisor.model import AlertEvent
from advisor.model import Curve
from advisor.model import Diagnosis
from advisor.model import Role
from advisor.model import RunCurves
from advisor.model import TagRole


def _run(val: np.ndarray, with_epoch: bool = True) -> RunCurves:
    step = np.arange(1, val.size + 1, dtype=np.int64) * 10
    wall = 1.7e9 + step.astype(float)
    curves = {"val_loss": Curve("val_loss", TagRole(Role.VAL_LOSS), step, wall, val)}
    if with_epoch:
        curves["epoch"] = Curve("epoch", TagRole(Role.EPOCH), step, wall, step / 100.0)
    return RunCurves("exp/1", curves)


def _overfit(n: int) -> np.ndarray:
    i = np.arange(1, n + 1, dtype=float)
    y = 0.4 + 2 * np.exp(-i / 3.0) + 0.2 * np.clip((i - 0.4 * n) / (0.6 * n), 0, None)
    out: np.ndarray = y * (1 + 0.01 * np.random.default_rng(0).standard_normal(n))
    return out


def test_overfitting_opens_once_with_rule_epoch_and_wall_time() -> None:
    """One alert opens, as DET-OVERFIT, carrying the epoch and wall time of its step."""
    alerts, summary = replay_run(_run(_overfit(120)))
    opened = [a for a in alerts if a.event is AlertEvent.OPENED]
    assert [a.rule for a in opened] == ["DET-OVERFIT"]
    a = opened[0]
    assert a.epoch == a.finding.step / 100.0
    assert a.wall_time == 1.7e9 + a.finding.step
    assert a.recommendations == ()
    assert summary.diagnosis is Diagnosis.OVERFITTING
    assert summary.first_alert_step == {"overfitting": a.finding.step}
    assert summary.points == 120 and summary.last_step == 1200


def test_alert_resolves_when_the_condition_goes_away() -> None:
    """A divergence that recovers for good resolves its alert."""
    val = 0.4 + 2 * np.exp(-np.arange(1, 61) / 3.0)
    val[30:33] = [1.2, 1.5, 1.7]
    events = [a.event for a in replay_run(_run(val))[0]]
    assert events[0] is AlertEvent.OPENED and events[-1] is AlertEvent.RESOLVED


def test_coarse_walk_finds_the_same_first_alert_as_the_full_walk() -> None:
    """Analysing every k-th evaluation, refined at changes, gives the exact first step."""
    rc = _run(_overfit(400))
    coarse, _ = replay_run(rc, ReplayParams(max_analyses=20))
    full, _ = replay_run(rc, ReplayParams(max_analyses=10_000))
    assert coarse[0].finding.step == full[0].finding.step
    assert coarse[0].finding.diagnosis is full[0].finding.diagnosis


def test_empty_run_has_unknown_summary() -> None:
    """A run without a validation curve replays to nothing."""
    alerts, summary = replay_run(RunCurves("empty", {}))
    assert alerts == [] and summary.diagnosis is Diagnosis.UNKNOWN


@pytest.mark.parametrize(("after", "resolves"), [(0.95, False), (0.25, True)])
def test_instability_resolves_when_the_run_recovers_not_when_it_pauses(
    after: float, resolves: bool
) -> None:
    """A loss that swings by +-25% about its first value opens an instability alert. If it
    then calms down at that level (``after`` = 0.95 of the first loss: no progress) the
    alert stays open to the end; if it falls to a quarter of it, the run recovered."""
    rng = np.random.default_rng(0)
    swings = 1.5 * (1 + 0.25 * np.where(np.arange(14) % 2 == 0, 1.0, -1.0))
    calm = 1.5 * after * (1 + 0.01 * rng.standard_normal(30))
    alerts, summary = replay_run(_run(np.concatenate([[1.5], swings, calm])))
    events = [(a.event, a.finding.diagnosis) for a in alerts]
    assert events[0] == (AlertEvent.OPENED, Diagnosis.INSTABILITY)
    assert ((AlertEvent.RESOLVED, Diagnosis.INSTABILITY) in events) is resolves
    assert (summary.diagnosis is Diagnosis.INSTABILITY) is not resolves


def test_oscillation_alert_stands_through_a_pause_until_the_loss_makes_progress() -> None:
    """A loss that learned (2.3 -> 1.0), then bounces by +-20% about 1.0, calms for 10
    evaluations and bounces again keeps one alert open through the calm (the swings
    paused; the loss made no progress); once it falls to half that level the alert
    resolves."""
    rng = np.random.default_rng(1)
    fall = 1.0 + 1.3 * np.exp(-np.arange(8) / 2.0)
    swings = 1.0 + 0.2 * np.where(np.arange(20) % 2 == 0, 1.0, -1.0)
    calm = 1.0 + 0.01 * rng.standard_normal(10)
    recover = np.linspace(1.0, 0.5, 15) * (1 + 0.005 * rng.standard_normal(15))
    val = np.concatenate([fall, swings, calm, swings, recover, np.full(10, 0.5)])
    alerts, summary = replay_run(_run(val))
    events = [(a.event, a.finding.diagnosis, a.finding.step // 10) for a in alerts]
    assert [e[:2] for e in events] == [
        (AlertEvent.OPENED, Diagnosis.INSTABILITY),
        (AlertEvent.RESOLVED, Diagnosis.INSTABILITY),
    ]
    assert events[1][2] > 8 + 20 + 10 + 20  # resolved once the loss fell, not in the calm
    assert summary.diagnosis is Diagnosis.HEALTHY
