"""Underfitting: the validation loss is still falling with no plateau in sight.

Paper-notes §2 row 1: "validation loss keeps falling with no plateau" (the LR is too
low). The detector looks at the current phase of training only (after a warm-up, the
last step decay, and the flat start), and asks three things: is the loss still falling
now (Mann-Kendall on the recent half), has the fall not slowed down (the slope of the
fitted trend over the last third against the first third), and is it falling by more
than a negligible amount.

A short prefix of a healthy run also falls without slowing: what separates the two is
time. ``min_points`` is that time prior: a healthy run's fast phase lasts a few
evaluations (paper-notes §2 row 2: "drops fast at first, then goes flat"); a decline
that has not slowed after ``min_points`` evaluations is underfitting.

NaN/inf policy: uses the finite points only. Minimum points: ``min_points`` finite
evaluations in the current phase.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from advisor.core import confidence as cf
from advisor.core.features import Features
from advisor.core.features import RunView
from advisor.core.features import features_of
from advisor.core.features import view_of
from advisor.core.fit import TrendFit
from advisor.core.fit import fit_trend
from advisor.core.fit import theil_sen
from advisor.model import Diagnosis
from advisor.model import Finding
from advisor.model import RunCurves
from advisor.model import Severity


@dataclass(frozen=True, slots=True)
class UnderfittingParams:
    """Thresholds of the underfitting detector.

    Attributes:
        min_points: evaluations needed in the current phase (the time prior above;
            measured on the tune suite, whose healthy runs leave their fast phase within
            3 time constants of at most 4 evaluations).
        max_p: Mann-Kendall p-value of the fall over the recent half.
        min_ratio: slope of the fitted trend over the last third of the phase against
            the first third; an exponential decay observed over 2 time constants gives
            0.26 and a line 1 (measured on the tune suite: healthy runs stay below 0.3
            once past ``min_points``).
        min_late_ratio: or the slope over the last third against the middle third, which
            ignores a fast drop at the very start (measured on the tune suite; an
            exponential decay gives exp(-span / (3 tau)): 0.31 for a healthy run of 15
            evaluations and tau 4, 0.62 and up for underfitting runs; healthy tune runs
            reach 0.54 with 12 points and 0.40 with 15).
        min_late_points: evaluations needed for the late ratio (a healthy run's fast
            phase must be over: 3 time constants of 4 evaluations and some).
        min_drop_rel: the fitted fall over the last third must exceed this fraction of
            the level (below it the curve is horizontal in practice, cf. paper-notes §5.1).
    """

    min_points: int = 10
    max_p: float = 0.01
    min_ratio: float = 0.4
    min_drop_rel: float = 0.01
    min_late_ratio: float = 0.6
    min_late_points: int = 15

    def __post_init__(self) -> None:
        if self.min_points < 6:
            raise ValueError(f"min_points must be at least 6 but got {self.min_points}")
        if not 0 < self.min_ratio < 1:
            raise ValueError(f"min_ratio must be in (0, 1) but got {self.min_ratio}")


def detect(rc: RunCurves, params: UnderfittingParams = UnderfittingParams()) -> Finding | None:
    """Underfitting of a run, or None."""
    view = view_of(rc)
    if view is None:
        return None
    return detect_features(view, features_of(view), params)


def phase_fit(view: RunView, feat: Features) -> TrendFit | None:
    """The trend fitted to the current phase (also what ``analyze`` plots)."""
    seg = feat.segment
    return fit_trend(feat.x[seg:], feat.y[seg:], float(view.origin))


def detect_features(
    view: RunView, feat: Features, params: UnderfittingParams, fit: TrendFit | None = None
) -> Finding | None:
    """Underfitting from an already built view and its features (and phase fit)."""
    seg = feat.segment
    x, y = feat.x[seg:], feat.y[seg:]
    m = int(y.size) * feat.per
    if m < params.min_points:
        return None
    half = max(3, y.size // 2)
    recent = theil_sen(x[-half:], y[-half:])
    if recent.slope >= 0 or recent.p_value > params.max_p:
        return None
    fit = fit if fit is not None else phase_fit(view, feat)
    if fit is None:
        return None
    third = (x[-1] - x[0]) / 3.0
    pts = fit.predict(np.array([x[0], x[0] + third, x[-1] - third, x[-1]]))
    first_drop, mid_drop, last_drop = (float(a - b) for a, b in itertools.pairwise(pts))
    if first_drop <= 0 or last_drop <= 0:
        return None
    ratio = last_drop / first_drop
    late = last_drop / mid_drop if mid_drop > 0 else 0.0
    drop_rel = last_drop / feat.level
    steady = ratio >= params.min_ratio or (
        late >= params.min_late_ratio and m >= params.min_late_points
    )
    if not steady or drop_rel < params.min_drop_rel:
        return None
    evidence = {
        "slope_ratio": ratio,
        "late_slope_ratio": late,
        "last_third_drop_pct": 100.0 * drop_rel,
        "p_value": recent.p_value,
        "phase_start_step": float(x[0]),
        "remaining_pct": 100.0 * fit.remaining / feat.level,
        "remaining_lo_pct": 100.0 * fit.remaining_lo / feat.level,
        "remaining_hi_pct": 100.0 * fit.remaining_hi / feat.level,
        "asymptote": fit.asymptote,
    }
    train_support = 0.5
    ts = feat.train_smooth
    if ts is not None:
        t_tail = ts[-half:]
        ok = np.isfinite(t_tail)
        if int(ok.sum()) >= 3:
            tr = theil_sen(x[-half:][ok], t_tail[ok])
            evidence["train_slope"] = tr.slope
            train_support = cf.from_p(tr.p_value) if tr.slope < 0 else 0.0
            evidence["gap_rel"] = float((feat.smooth[-1] - ts[-1]) / feat.level)
    conf = cf.combine(
        cf.margin(
            max(ratio, late - params.min_late_ratio + params.min_ratio), params.min_ratio, 0.15
        ),
        cf.from_p(recent.p_value),
        cf.margin(float(m), float(params.min_points), 5.0),
        0.5 + 0.5 * train_support,
    )
    remaining = fit.remaining / feat.level
    noun = "value" if view.direction.value == "max" else "loss"
    more = "" if math.isinf(remaining) else f"; about {100 * remaining:.0f}% more to come"
    return Finding(
        Diagnosis.UNDERFITTING,
        Severity.WARNING,
        conf,
        int(view.val.step[-1]),
        f"validation {noun} is still improving ({100 * drop_rel:.1f}% over the last third "
        f"of the phase, not slowing down){more}",
        evidence,
    )
