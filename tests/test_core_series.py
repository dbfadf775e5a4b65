"""Cleaning, smoothing and noise estimation."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from advisor.core import series as sr
from advisor.core.features import features_of
from advisor.core.features import view_of
from advisor.model import Curve
from advisor.model import Direction
from advisor.model import Role
from advisor.model import RunCurves
from advisor.model import TagRole


def _rc(step: np.ndarray, val: np.ndarray) -> RunCurves:
    c = Curve("val_loss", TagRole(Role.VAL_LOSS), step, np.zeros(step.size), val)
    return RunCurves("r", {"val_loss": c})


def test_clean_sorts_and_keeps_last_duplicate() -> None:
    """Duplicated steps keep the value logged last; the result is sorted."""
    s = sr.clean([3, 1, 2, 1], [0.3, 0.1, 0.2, 0.15])
    assert s.step.tolist() == [1, 2, 3]
    assert s.value.tolist() == [0.15, 0.2, 0.3]


def test_clean_keeps_nan_and_inf() -> None:
    """Non-finite values are kept and flagged, never dropped."""
    s = sr.clean([0, 1, 2], [1.0, math.nan, math.inf])
    assert len(s) == 3
    assert s.finite.tolist() == [True, False, False]


def test_ema_is_debiased_and_skips_nan() -> None:
    """A constant stays constant from the first point; NaN carries the last value."""
    out = sr.ema(np.array([2.0, 2.0, math.nan, 2.0]), 0.9)
    assert np.allclose(out, 2.0)


def test_robust_noise_ignores_trend_and_spikes() -> None:
    """The noise of a falling curve with one spike is close to the true sd."""
    rng = np.random.default_rng(0)
    x = np.linspace(0, 1, 400)
    y = 2.0 * np.exp(-3 * x) + rng.normal(0, 0.01, x.size)
    y[200] += 5.0
    assert 0.008 < sr.robust_noise(y) < 0.012


def test_zero_phase_smooths_each_phase_on_its_own() -> None:
    """A start splits the smoothing: the values after it do not feel the level before
    it, and each phase is smoothed as if it were alone."""
    y = np.concatenate([np.full(10, 0.3), np.full(10, 0.19)])
    y[12] = 0.18
    joined = sr.zero_phase(y, 0.7)
    split = sr.zero_phase(y, 0.7, (10,))
    assert joined[10] > 0.2  # dragged up by the level before the drop
    assert np.allclose(split[:10], 0.3) and split[10:].max() < 0.191
    assert np.allclose(split[10:], sr.zero_phase(y[10:], 0.7))
    assert int(np.argmin(split)) == 12 and int(np.argmin(joined)) > 12
    # Starts outside (0, len) change nothing.
    assert np.array_equal(sr.zero_phase(y, 0.7, (0, 20)), joined)


def test_features_split_smoothing_at_logged_lr_drops() -> None:
    """Each logged LR drop by 2x or more from a flat LR starts a phase (a drop after the
    last evaluation gives the run's length); a smaller decrease does not, nor an LR
    annealed smoothly to zero."""
    step = np.arange(1, 21, dtype=np.int64) * 10
    val = np.concatenate([np.full(10, 0.3), np.full(10, 0.19)])
    lr_step = np.concatenate([step, [210]])
    lr = np.concatenate([np.full(5, 0.1), np.full(5, 0.07), np.full(10, 0.007), [0.0007]])
    rc = _rc(step, val)
    curves = dict(rc.curves)
    curves["lr"] = Curve("lr", TagRole(Role.LR), lr_step, np.zeros(lr_step.size), lr)
    view = view_of(RunCurves("r", curves))
    assert view is not None
    feat = features_of(view)
    assert feat.drops == (10, 20)
    assert feat.zero[10] < 0.2
    plain = view_of(rc)
    assert plain is not None and features_of(plain).drops == ()
    # An LR annealed to zero halves between its last values without a step decay.
    anneal = np.concatenate([np.full(12, 0.1), np.linspace(0.1, 0.0, 10)[1:]])
    curves["lr"] = Curve("lr", TagRole(Role.LR), lr_step[:-1], np.zeros(20), anneal[1:])
    annealed = view_of(RunCurves("r", curves))
    assert annealed is not None and features_of(annealed).drops == ()


def test_oriented_turns_accuracy_into_error() -> None:
    """A fraction to maximise becomes 1 - value."""
    s = sr.oriented(sr.clean([0, 1], [0.5, 0.75]), Direction.MAX)
    assert s.value.tolist() == [0.5, 0.25]


@settings(max_examples=30, deadline=None)
@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_shuffling_rows_does_not_change_features(seed: int) -> None:
    """Features depend on the points, not on the order in which rows arrived."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(6, 200))
    step = np.sort(rng.choice(10_000, n, replace=False)).astype(np.int64)
    val = 1 + np.exp(-np.arange(n) / 5) + rng.normal(0, 0.02, n)
    perm = rng.permutation(n)
    a = features_of(view_of(_rc(step, val)))  # type: ignore[arg-type]
    b = features_of(view_of(_rc(step[perm], val[perm])))  # type: ignore[arg-type]
    assert a.n == b.n and a.segment == b.segment
    assert np.array_equal(a.y, b.y) and a.noise == b.noise and a.best == b.best
