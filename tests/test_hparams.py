"""A run's hyper-parameter context: from logs, curves and configuration; never invented."""

from __future__ import annotations

import numpy as np
import pytest

from advisor.errors import ConfigError
from advisor.hparams import Schedule
from advisor.hparams import classify_schedule
from advisor.hparams import context_at
from advisor.hparams import overrides_for
from advisor.hparams import parse_overrides
from advisor.model import Curve
from advisor.model import RunCurves
from advisor.roles import default_role


def curve(tag: str, values: list[float] | np.ndarray) -> Curve:
    v = np.asarray(values, np.float64)
    steps = np.arange(v.size, dtype=np.int64) * 10
    return Curve(tag, default_role(tag), steps, np.full(v.size, np.nan), v)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.1] * 20, Schedule.CONSTANT),
        (np.geomspace(1e-5, 1.0, 50), Schedule.RISING),
        (np.linspace(1e-4, 3.0, 50), Schedule.RISING),
        ([0.1] * 10 + [0.01] * 10 + [0.001] * 10, Schedule.STEP),
        (0.1 * np.cos(np.linspace(0, np.pi / 2, 60)) + 1e-4, Schedule.DECAYING),
        (list(np.linspace(0.01, 0.1, 20)) + list(np.linspace(0.1, 0.01, 20)) + [1e-4] * 5,
         Schedule.CYCLIC),
        (list(np.linspace(0.01, 0.1, 5)) + [0.1] * 40, Schedule.WARMUP),
        ([], Schedule.UNKNOWN),
    ],
)  # fmt: skip
def test_schedule_shapes(values: list[float], expected: Schedule) -> None:
    """The logged learning rate's shape is classified."""
    lr = curve("lr", values) if len(values) else None
    assert classify_schedule(lr) is expected


def test_context_prefers_logged_curves_then_config() -> None:
    """Hparams from logs, then the curve's value at the step, then configured overrides."""
    rc = RunCurves(
        "r",
        {"lr": curve("lr", [0.1] * 5 + [0.01] * 5), "momentum": curve("momentum", [0.9] * 10)},
        {"learning_rate": 0.5, "weight_decay": 1e-4, "optimizer": "sgd"},
    )
    at_20 = context_at(rc, step=20)
    assert (at_20.lr, at_20.momentum, at_20.weight_decay) == (0.1, 0.9, 1e-4)
    assert at_20.schedule is Schedule.CONSTANT
    end = context_at(rc, overrides={"batch_size": 64.0, "wd": 1e-3})
    assert (end.lr, end.batch_size, end.weight_decay, end.max_lr) == (0.01, 64.0, 1e-3, 0.1)
    assert end.schedule is Schedule.STEP
    assert end.get("optimizer") == "sgd"


def test_unknown_stays_unknown() -> None:
    """Nothing logged and nothing configured: every value is None."""
    ctx = context_at(RunCurves("r", {"val_loss": curve("val_loss", [1.0, 0.9])}))
    assert (ctx.lr, ctx.momentum, ctx.weight_decay, ctx.batch_size, ctx.max_lr) == (None,) * 5
    assert ctx.schedule is Schedule.UNKNOWN


def test_overrides_by_run_glob() -> None:
    """[[hparams]] entries apply to matching runs, later entries winning."""
    parsed = parse_overrides(
        [{"runs": "exp*", "lr": 0.1}, {"runs": "exp2/*", "lr": 0.2, "weight_decay": 0}], "f"
    )
    assert overrides_for("exp1/a", parsed) == {"lr": 0.1}
    assert overrides_for("exp2/b", parsed) == {"lr": 0.2, "weight_decay": 0.0}
    assert overrides_for("other", parsed) == {}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"runs": "x"}, "expected [[hparams]] tables"),
        ([{"lr": 0.1}], "hparams[0].runs: expected a glob"),
        ([{"runs": "x", "lr": [1]}], "hparams[0].lr: expected a number"),
    ],
)
def test_bad_overrides(raw: object, message: str) -> None:
    """Bad [[hparams]] entries name the entry and field."""
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_overrides(raw, "advisor.toml")
