"""LR range test: recognition, our reading, and the reimplemented fastai/Lightning rules."""

from __future__ import annotations

import math

import numpy as np

from advisor.core import lrrange
from advisor.core import series as sr
from advisor.core.analysis import analyze
from advisor.model import Curve
from advisor.model import Diagnosis
from advisor.model import Role
from advisor.model import RunCurves
from advisor.model import TagRole


def _range_run(seed: int = 0, linear: bool = False) -> tuple[RunCurves, float]:
    n = 100
    lr = np.linspace(1e-4, 1.0, n) if linear else np.geomspace(1e-6, 10.0, n)
    u = np.log10(lr)
    c, b, w = u[0] + 0.45 * (u[-1] - u[0]), u[0] + 0.7 * (u[-1] - u[0]), 0.3
    true = 2.5 - 1.5 / (1 + np.exp(-(u - c) / w)) + 0.1 * np.expm1(np.clip(3 * (u - b) / w, 0, 30))
    fine = np.linspace(u[0], u[-1], 20001)
    ft = (
        2.5
        - 1.5 / (1 + np.exp(-(fine - c) / w))
        + 0.1 * np.expm1(np.clip(3 * (fine - b) / w, 0, 30))
    )
    best = float(10 ** fine[int(np.argmin(ft))])
    loss = true * (1 + 0.02 * np.random.default_rng(seed).standard_normal(n))
    step = np.arange(n, dtype=np.int64)
    wall = np.zeros(n)
    curves = {
        "loss": Curve("loss", TagRole(Role.TRAIN_LOSS), step, wall, loss),
        "lr": Curve("lr", TagRole(Role.LR), step, wall, lr),
    }
    return RunCurves("range", curves), best


def test_exponential_range_test_is_recognised_and_read() -> None:
    """The advisor reports the range test with a max LR near the true minimum's LR."""
    rc, best = _range_run()
    a = analyze(rc)
    assert a.diagnosis is Diagnosis.LR_RANGE_TEST and a.lr_range is not None
    assert a.lr_range.schedule == "exponential"
    assert abs(math.log10(a.lr_range.max_lr / best)) < 0.5
    assert math.isclose(a.lr_range.min_lr, a.lr_range.max_lr / 10)


def test_linear_schedule_is_named() -> None:
    """A linear LR ramp is recognised as such."""
    rc, _ = _range_run(linear=True)
    got = lrrange.analyze_range(rc)
    assert got is not None and got.schedule == "linear"


def test_warmup_then_constant_is_not_a_range_test() -> None:
    """An LR that rises then stays flat (a warm-up) is not a range test."""
    lr = np.minimum(np.arange(1, 61) / 5, 1.0) * 0.1
    assert lrrange.range_schedule(sr.clean(np.arange(60), lr)) is None


def test_fastai_and_lightning_rules_on_a_clean_curve() -> None:
    """On a noise-free curve: minimum is argmin/10, steep and Lightning at the steepest fall."""
    rc, _ = _range_run()
    got = lrrange.analyze_range(rc)
    assert got is not None
    lr_curve = rc.curves["lr"].value
    assert got.fastai_minimum < got.max_lr
    # The steepest fall is in the descending part: between the start and the minimum.
    assert lr_curve[0] < got.fastai_steep < got.max_lr * 3
    assert lr_curve[10] <= got.lightning < got.max_lr * 3
