"""Progress of a run: a validation loss that never fell, and how far a training loss
fell over a window (the instability detector's oscillation and no-progress tests)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from advisor.core.features import RunView
from advisor.core.fit import theil_sen
from advisor.model import Diagnosis
from advisor.model import Finding
from advisor.model import Severity

if TYPE_CHECKING:
    from advisor.core.detectors.instability import InstabilityParams


def no_progress(
    view: RunView,
    steps: np.ndarray,
    y: np.ndarray,
    smooth: np.ndarray,
    *,
    params: InstabilityParams,
    last: int,
) -> Finding | None:
    """A validation loss that never fell: its smoothed best still within ``flat_frac`` of
    the first evaluation after ``flat_points`` of them, with no falling trend, and the LR
    not rising over the last ``flat_points`` (a warm-up or a range test holds the loss up
    on purpose; a network that a warm-up's peak killed is caught once it is over)."""
    if not view.val_is_loss or y.size < params.flat_points or y[0] <= 0:
        return None
    best = float(np.min(smooth)) / float(y[0])
    if best < params.flat_frac or view.lr_rose_since(int(steps[-params.flat_points])):
        return None
    trend = theil_sen(steps.astype(np.float64), y)
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


def stuck(view: RunView, y: np.ndarray, params: InstabilityParams) -> bool:
    """Has the validation loss made no progress since its first evaluation? The median of
    its last ``osc_window_stuck`` finite values ``y`` is at least ``osc_stuck_frac`` of
    the first (False for a validation metric, a first loss <= 0 or too few points)."""
    short = y[-params.osc_window_stuck :]
    if not view.val_is_loss or y.size == 0 or y[0] <= 0 or short.size < params.osc_window_stuck:
        return False
    return float(np.median(short)) >= params.osc_stuck_frac * float(y[0])


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
