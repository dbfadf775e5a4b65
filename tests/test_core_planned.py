"""The planned length of training: names, values, the elapsed fraction, and its use."""

from __future__ import annotations

import numpy as np
import pytest

from advisor.core.analysis import analyze
from advisor.core.features import view_of
from advisor.core.planned import Plan
from advisor.core.planned import elapsed
from advisor.core.planned import plan_of
from advisor.core.planned import unit_of
from advisor.core.timeline import ReplayParams
from advisor.core.timeline import replay_run
from advisor.model import AlertEvent
from advisor.model import Curve
from advisor.model import Diagnosis
from advisor.model import Role
from advisor.model import RunCurves
from advisor.model import TagRole

FULL = ReplayParams(max_analyses=1 << 30)


@pytest.mark.parametrize(
    ("name", "unit"),
    [
        ("max_steps", "steps"),
        ("num_train_epochs", "epochs"),
        ("epochs", "epochs"),
        ("max_epochs", "epochs"),
        ("trainer.max_epochs", "epochs"),
        ("SOLVER.MAX_ITER", "steps"),
        ("maxEpochs", "epochs"),
        ("total_steps", "steps"),
        ("num_epoch", "epochs"),
        ("warmup_steps", None),
        ("eval_steps", None),
        ("logging_steps", None),
        ("save_steps", None),
        ("steps_per_epoch", None),
        ("epoch", None),
        ("lr", None),
    ],
)
def test_names_of_the_planned_length(name: str, unit: str | None) -> None:
    """Names that state the whole run's length match; warm-up, logging, current epoch don't."""
    assert unit_of(name) == unit


def test_plan_takes_numbers_only() -> None:
    """Booleans, non-numeric strings and non-positive values are ignored; '30' counts."""
    assert plan_of({"epochs": True, "max_steps": "auto", "lr": 0.1}) is None
    assert plan_of({"epochs": "30", "max_steps": 0.0}) == Plan(None, 30.0)
    assert plan_of({"max_steps": 5000.0, "num_train_epochs": 3.0}) == Plan(5000.0, 3.0)


def test_elapsed_from_steps_or_from_the_epoch_curve() -> None:
    """Steps divide directly; epochs need the logged epoch; a run past its plan is unknown."""
    assert elapsed(Plan(1000.0), 250) == pytest.approx(0.25)
    steps = np.array([100, 200, 300], dtype=np.int64)
    epochs = np.array([1.0, 2.0, 3.0])
    assert elapsed(Plan(None, 10.0), 300, steps, epochs) == pytest.approx(0.3)
    # Keras CSV and Lightning log a 0-based index when an epoch ends: 3 epochs done.
    assert elapsed(Plan(None, 10.0), 300, steps, epochs - 1.0) == pytest.approx(0.3)
    assert elapsed(Plan(None, 10.0), 300) is None
    assert elapsed(Plan(1000.0), 1200) is None
    assert elapsed(None, 10) is None


def _run(val: np.ndarray, hparams: dict[str, float | str | bool]) -> RunCurves:
    step = np.arange(1, val.size + 1, dtype=np.int64) * 100
    wall = 1.7e9 + step.astype(float)
    curves = {
        "val_loss": Curve("val_loss", TagRole(Role.VAL_LOSS), step, wall, val),
        "epoch": Curve("epoch", TagRole(Role.EPOCH), step, wall, step / 100.0),
    }
    return RunCurves("r", curves, hparams)


def _first(rc: RunCurves, d: Diagnosis) -> float | None:
    alerts, _ = replay_run(rc, FULL)
    n = len(rc.curves["val_loss"])
    for a in alerts:
        if a.event is AlertEvent.OPENED and a.finding.diagnosis is d:
            return float(a.finding.step) / 100.0 / n
    return None


def _curve(n: int, tau_frac: float, seed: int, power: float | None = None) -> np.ndarray:
    t = np.arange(1, n + 1, dtype=float) / n
    if power is None:
        true = 0.5 + 1.5 * np.exp(-t / tau_frac)
    else:
        true = 0.5 + 1.5 * (1.0 + t / tau_frac) ** -power
    out: np.ndarray = true * (1 + 0.01 * np.random.default_rng(seed).standard_normal(n))
    return out


def test_underfitting_is_flagged_by_30_percent_when_the_plan_is_known() -> None:
    """A slow fall (time constant = the planned run) is underfitting by 30% of the run
    when ``epochs`` says how long the run is, with the elapsed fraction as evidence."""
    val = _curve(80, 1.0, seed=3)
    with_plan = _first(_run(val, {"epochs": 80.0}), Diagnosis.UNDERFITTING)
    assert with_plan is not None and with_plan <= 0.3
    a = analyze(_run(val[:24], {"epochs": 80.0}))
    assert a.diagnosis is Diagnosis.UNDERFITTING and a.finding is not None
    assert a.finding.evidence["elapsed_pct"] == pytest.approx(30.0)
    assert a.finding.evidence["remaining_to_plan_pct"] > 8.0


def test_the_plan_replaces_the_count_prior_early_in_the_run() -> None:
    """A healthy fall with a time constant of 12 evaluations (a tenth of a 120-evaluation
    run) outlasts the count prior (a fast phase of a few evaluations) and alarms without
    a plan; with the plan it is a healthy fast phase."""
    val = _curve(120, 0.1, seed=0)
    assert _first(_run(val, {}), Diagnosis.UNDERFITTING) is not None
    assert replay_run(_run(val, {"max_steps": 12000.0}), FULL)[0] == []


@pytest.mark.parametrize(
    ("tau_frac", "power"), [(0.05, None), (0.1, None), (0.03, 2.0), (0.05, 1.5)]
)
def test_healthy_runs_with_a_plan_raise_nothing(tau_frac: float, power: float | None) -> None:
    """Fast exponential and power-law approaches to a plateau never alert with a plan."""
    for seed in range(3):
        rc = _run(_curve(120, tau_frac, seed, power), {"max_steps": 12000.0})
        assert replay_run(rc, FULL)[0] == []


def test_the_view_carries_the_plan_through_prefixes() -> None:
    """``RunView.upto`` keeps the plan, so every prefix knows its elapsed fraction."""
    view = view_of(_run(_curve(40, 0.1, 0), {"epochs": 40.0}))
    assert view is not None
    assert view.upto(1000).elapsed() == pytest.approx(0.25)
    assert view.elapsed() == pytest.approx(1.0)


# The reference trainer's ``good`` preset, seed 12: validation loss at epochs 1-16 of 40.
GOOD_S12 = np.array(
    [1.411, 1.168, 0.951, 0.752, 0.526, 0.542, 0.404, 0.313,
     0.393, 0.338, 0.301, 0.241, 0.290, 0.177, 0.230, 0.282]
)  # fmt: skip


def test_a_straight_fast_start_is_no_slow_decay() -> None:
    """A real run's first epochs fall in a near-straight line, 20-40% of the level per
    epoch, which no decay from the first point fits, so the slow-decay test prefers a
    slow one (this run was called underfitting at epoch 5 of 40). At that rate the loss
    would reach zero within the healthy time constant, which no slow decay does. The
    same start stretched eight times in time is underfitting."""
    assert replay_run(_run(GOOD_S12, {"epochs": 40.0}), FULL)[0] == []
    slow = np.interp(np.arange(40) / 8.0, np.arange(GOOD_S12.size), GOOD_S12)
    first = _first(_run(slow, {"epochs": 40.0}), Diagnosis.UNDERFITTING)
    assert first is not None and first <= 0.3


# The reference trainer's ``lr-too-low`` preset, seed 17: validation loss, epochs 1-40.
LR_TOO_LOW_S17 = np.array(
    [2.300, 2.291, 2.271, 2.217, 2.109, 1.942, 1.829, 1.769, 1.740, 1.702,
     1.658, 1.640, 1.578, 1.548, 1.503, 1.479, 1.435, 1.413, 1.398, 1.377,
     1.349, 1.347, 1.326, 1.320, 1.321, 1.284, 1.286, 1.251, 1.254, 1.247,
     1.226, 1.219, 1.201, 1.217, 1.186, 1.203, 1.167, 1.144, 1.145, 1.127]
)  # fmt: skip


def test_the_summary_states_the_alert_still_open_at_the_end() -> None:
    """Underfitting alerted early stays open while the loss still falls (9% over the last
    third); the last analysis alone reads "still converging", but the run's summary is
    the open alert's diagnosis, not "healthy" beside it."""
    rc = _run(LR_TOO_LOW_S17, {"epochs": 40.0})
    alerts, summary = replay_run(rc, FULL)
    assert [(a.event, a.finding.diagnosis) for a in alerts] == [
        (AlertEvent.OPENED, Diagnosis.UNDERFITTING)
    ]
    last = analyze(rc)
    assert last.diagnosis is Diagnosis.HEALTHY
    assert last.finding is not None and "converging" in last.finding.message
    assert summary.diagnosis is Diagnosis.UNDERFITTING
