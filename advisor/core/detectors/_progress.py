"""Progress of a run: a validation loss still near its first value (instability's
no-progress test without a falling trend, underfitting's slow start with one), and how
far a training loss fell over a window (instability's oscillation test)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from advisor.core.features import RunView
from advisor.core.fit import Slope
from advisor.core.fit import theil_sen
from advisor.model import Diagnosis
from advisor.model import Finding
from advisor.model import Severity

if TYPE_CHECKING:
    from advisor.core.detectors.instability import InstabilityParams


@dataclass(frozen=True, slots=True)
class NearStart:
    """A validation loss still near its first value.

    Attributes:
        best_to_first: its smoothed best over its first value.
        trend: its Theil-Sen slope and Mann-Kendall p-value over the run.
    """

    best_to_first: float
    trend: Slope


def near_start(
    view: RunView,
    steps: np.ndarray,
    y: np.ndarray,
    smooth: np.ndarray,
    *,
    points: int,
    frac: float,
) -> NearStart | None:
    """The finite validation loss ``y`` (at ``steps``, smoothed ``smooth``) after
    ``points`` evaluations or more, when its smoothed best is still ``frac`` of its first
    value or more and the LR did not rise over the last ``points`` (a warm-up or a range
    test holds the loss up on purpose; a network that a warm-up's peak killed is judged
    once it is over). None otherwise, and for a validation metric or a first loss <= 0."""
    if not view.val_is_loss or y.size < points or y[0] <= 0:
        return None
    best = float(np.min(smooth)) / float(y[0])
    if best < frac or view.lr_rose_since(int(steps[-points])):
        return None
    return NearStart(best, theil_sen(steps.astype(np.float64), y))


def no_progress(
    view: RunView,
    steps: np.ndarray,
    y: np.ndarray,
    smooth: np.ndarray,
    *,
    params: InstabilityParams,
    last: int,
) -> Finding | None:
    """A validation loss that never fell: near its start (``near_start`` with
    ``flat_points`` and ``flat_frac``) with no falling trend."""
    start = near_start(view, steps, y, smooth, points=params.flat_points, frac=params.flat_frac)
    if start is None:
        return None
    best, trend = start.best_to_first, start.trend
    if trend.slope < 0 and trend.p_value <= params.flat_trend_p:
        return None
    return Finding(
        Diagnosis.INSTABILITY,
        Severity.CRITICAL,
        # 0.5 at the threshold, 1 for a loss still at its first value or above.
        min(1.0, 0.5 + 0.5 * (best - params.flat_frac) / (1.0 - params.flat_frac)),
        last,
        f"validation {view.noun} has made no progress in {y.size} evaluations: its best is "
        f"{100 * best:.0f}% of the first",
        {"no_progress": 1.0, "best_to_first": best, "trend_p": trend.p_value},
    )


def recent_level(view: RunView, y: np.ndarray, params: InstabilityParams) -> float:
    """Where a validation loss is now, whatever its swings: the median of its last
    ``osc_window_stuck`` finite values ``y`` (NaN for a validation metric or too few
    points)."""
    short = y[-params.osc_window_stuck :]
    if not view.val_is_loss or short.size < params.osc_window_stuck:
        return math.nan
    return float(np.median(short))


def no_progress_since(level: float, then: float, params: InstabilityParams) -> bool:
    """Is a loss's ``recent_level`` still at least ``osc_stuck_frac`` of ``then``, its
    level at an earlier time (False when either is unknown or ``then`` <= 0)?"""
    return then > 0 and level >= params.osc_stuck_frac * then


def stuck(view: RunView, y: np.ndarray, params: InstabilityParams) -> bool:
    """Has the validation loss made no progress since its first evaluation
    (``no_progress_since`` its first finite value ``y[0]``)?"""
    return y.size > 0 and no_progress_since(recent_level(view, y, params), float(y[0]), params)


def train_since(view: RunView, since: int) -> np.ndarray | None:
    """The finite training-loss values from step ``since`` on, when any are logged."""
    if view.train is None:
        return None
    ts, tv = view.train.finite_part()
    tv = tv[ts >= since]
    return tv if tv.size else None


def train_progress(tv: np.ndarray) -> float | None:
    """Median of the last third of ``tv`` over the median of its first third."""
    k = tv.size // 3
    if k < 1:
        return None
    head = float(np.median(tv[:k]))
    return float(np.median(tv[-k:])) / head if head > 0 else None
