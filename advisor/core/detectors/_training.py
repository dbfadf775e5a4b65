"""The training loss as the instability detector reads it: diverging, or climbing back
up towards its start (paper-notes §2 row 5: the optimiser going backwards)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from advisor.core import series as sr
from advisor.core.features import RunView
from advisor.core.fit import theil_sen
from advisor.model import Diagnosis
from advisor.model import Finding
from advisor.model import Severity

if TYPE_CHECKING:
    from advisor.core.detectors.instability import InstabilityParams


@dataclass(frozen=True, slots=True)
class TrainCurve:
    """The finite training-loss points, smoothed once for both tests that use them.

    Attributes:
        step: steps of the finite points.
        value: their values.
        smooth: the debiased EMA of ``value``.
        best_at: index of the smoothed minimum (the first, on ties).
        given_back: how much of the progress from the first smoothed value to the best
            has been lost since (inf when the best is the first value).
    """

    step: np.ndarray
    value: np.ndarray
    smooth: np.ndarray
    best_at: int
    given_back: float


def train_curve(view: RunView) -> TrainCurve | None:
    """The training loss as the divergence and regression tests read it (3+ points)."""
    if view.train is None:
        return None
    ts, tv = view.train.finite_part()
    if tv.size < 3:
        return None
    smooth = sr.ema(tv, sr.ema_beta(int(tv.size)))
    ib = int(np.argmin(smooth))
    best, first = float(smooth[ib]), float(smooth[0])
    given_back = float(smooth[-1] - best) / (first - best) if first > best else math.inf
    return TrainCurve(ts, tv, smooth, ib, given_back)


def train_divergence(train: TrainCurve, params: InstabilityParams, last: int) -> Finding | None:
    best = float(train.smooth[train.best_at])
    end = float(train.smooth[-1])
    # A training loss near zero quadruples on noise alone (the reference trainer's
    # constant-LR runs: 0.004 -> 0.017 at 93% accuracy), so divergence must also give
    # back a real part of the progress made since the start.
    if best > 0 and end >= params.diverge_ratio * best and train.given_back >= params.regress_frac:
        return Finding(
            Diagnosis.INSTABILITY,
            Severity.CRITICAL,
            1.0,
            last,
            f"training loss is {end / best:.1f}x its best smoothed value: diverging",
            {"train_ratio_to_best": end / best, "first_bad_step": last},
        )
    return None


def train_regress(
    view: RunView, train: TrainCurve, params: InstabilityParams, last: int
) -> Finding | None:
    """The training loss climbing back up (the caller checked that the validation value
    is above its best)."""
    ts, tv, ib = train.step, train.value, train.best_at
    # ib == 0: the loss never fell below its start, so there is no progress to give back.
    if tv.size < 8 or tv.size - ib < 4 or ib == 0:
        return None
    given_back = train.given_back
    if given_back < params.regress_frac:
        return None
    if view.lr_rose_since(int(ts[ib])):
        return None  # a warm-up, 1cycle ramp or restart explains a rising training loss
    trend = theil_sen(ts[ib:].astype(np.float64), tv[ib:])
    rising = trend.slope > 0 and trend.p_value < params.regress_p
    # Or it climbed back and stayed there: the later half of the points since the best
    # all sit, in median, at least ``regress_frac`` of the progress back. A loss that
    # jumped back early and then bounced about a bad level has no trend left to test
    # (the reference trainer's ``lr-too-high`` seeds 8 and 12: 51-98% given back, flat
    # since, and the run's summary said "horizontal" at 32-39% accuracy).
    best, first = float(train.smooth[ib]), float(train.smooth[0])
    later = tv[ib + (tv.size - ib) // 2 :]
    stayed = float(np.median(later)) - best >= params.regress_frac * (first - best)
    if not (rising or stayed):
        return None
    return Finding(
        Diagnosis.INSTABILITY,
        Severity.WARNING,
        min(1.0, 0.5 + 0.5 * given_back),
        last,
        f"training loss has climbed back {given_back * 100:.0f}% of the way to its start "
        f"since step {int(ts[ib])}, and the validation {view.noun} with it",
        {
            "train_given_back": given_back,
            "train_trend_p": trend.p_value,
            "first_bad_step": int(ts[ib]),
        },
    )
