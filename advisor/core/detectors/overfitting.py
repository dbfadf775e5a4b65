"""Overfitting: the validation loss passed a minimum and is drifting up.

Paper-notes §2 row 3: "loss reaches a minimum, then drifts upward slowly"; issue 3 adds
"while the training loss falls". The rise is measured between the medians of the raw
points around the smoothed minimum and of the last few points, in units of the noise, so
that a flat noisy plateau does not look like a rise.

NaN/inf policy: uses the finite points only (non-finite ones are instability's
business). Minimum points: ``min_points`` finite evaluations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from advisor.core import confidence as cf
from advisor.core.features import Features
from advisor.core.features import RunView
from advisor.core.features import features_of
from advisor.core.features import view_of
from advisor.core.fit import rise_after_min
from advisor.core.fit import theil_sen
from advisor.model import Diagnosis
from advisor.model import Finding
from advisor.model import RunCurves
from advisor.model import Severity


@dataclass(frozen=True, slots=True)
class OverfittingParams:
    """Thresholds of the overfitting detector.

    Attributes:
        min_points: finite evaluations needed.
        min_after: evaluations after the minimum needed for a trend test.
        window: points per median is ``n // window_div``, clipped to [2, ``max_window``].
        window_div: see ``window``.
        max_window: see ``window``.
        min_z: the rise must exceed this many standard errors (measured on the tune
            suite: where the descent and trend tests pass, healthy runs reach 2.9; 3.5
            leaves a margin and costs 0.007 of the run in mean earliness).
        min_rise_rel: ...and this fraction of the best level (paper-notes §5.1: within
            seed noise is horizontal; the paper's 4-run std is 0.1-1 accuracy points; 2%
            is our choice, healthy tune runs reach 3.9% where the other tests pass, so
            ``min_z`` is the binding test).
        max_p: one-sided Mann-Kendall p-value of an increase after the minimum.
        min_descent_sigma: the curve must have fallen by this many noise sds before the
            minimum, so that a warm-up bump at the start is not mistaken for a rise.
        train_rise_p: a training loss rising with this significance vetoes the finding
            (both rising is instability or a broken run, not overfitting).
        critical_rise_rel: a rise above this fraction of the best level is critical.
    """

    min_points: int = 6
    min_after: int = 3
    window_div: int = 8
    max_window: int = 10
    min_z: float = 3.5
    min_rise_rel: float = 0.02
    max_p: float = 0.05
    min_descent_sigma: float = 3.0
    train_rise_p: float = 0.01
    critical_rise_rel: float = 0.25

    def __post_init__(self) -> None:
        if self.min_points < 4:
            raise ValueError(f"min_points must be at least 4 but got {self.min_points}")
        if not 0 < self.max_p < 1:
            raise ValueError(f"max_p must be in (0, 1) but got {self.max_p}")


def detect(rc: RunCurves, params: OverfittingParams = OverfittingParams()) -> Finding | None:
    """Overfitting of a run, or None."""
    view = view_of(rc)
    if view is None:
        return None
    return detect_features(view, features_of(view), params)


def detect_features(view: RunView, feat: Features, params: OverfittingParams) -> Finding | None:
    """Overfitting from an already built view and its features."""
    if feat.n < params.min_points:
        return None
    y = feat.y
    window = int(np.clip(y.size // params.window_div, 2, params.max_window))
    rise = rise_after_min(y, feat.zero, feat.noise, window)
    if rise.after < params.min_after or rise.min_index < 1:
        return None
    descent = float(feat.zero[0] - feat.zero[rise.min_index])
    if descent < params.min_descent_sigma * max(feat.noise, 1e-12 * feat.level):
        return None
    rise_rel = rise.rise / feat.level
    if rise.z < params.min_z or rise_rel < params.min_rise_rel or rise.p_value > params.max_p:
        return None
    evidence = {
        "min_step": float(feat.x[rise.min_index]),
        "rise_pct": 100.0 * rise_rel,
        "rise_z": rise.z,
        "p_value": rise.p_value,
        "noise": feat.noise,
    }
    train_support = 0.5
    ts = feat.train_smooth
    if ts is not None:
        tail = ts[rise.min_index :]
        ok = np.isfinite(tail)
        if int(ok.sum()) >= 3:
            trend = theil_sen(feat.x[rise.min_index :][ok], tail[ok])
            evidence["train_slope"] = trend.slope
            if trend.slope > 0 and trend.p_value < params.train_rise_p:
                return None
            train_support = cf.from_p(trend.p_value) if trend.slope < 0 else 0.5
            gap = (feat.smooth - ts)[rise.min_index :][ok]
            evidence["gap_growth"] = float(gap[-1] - gap[0])
    conf = cf.combine(
        cf.margin(rise.z, params.min_z, 2.0),
        cf.margin(rise_rel, params.min_rise_rel, params.min_rise_rel),
        cf.from_p(rise.p_value),
        0.5 + 0.5 * train_support,
    )
    severity = Severity.CRITICAL if rise_rel >= params.critical_rise_rel else Severity.WARNING
    noun = "value" if view.direction.value == "max" else "loss"
    suffix = " while training loss keeps falling" if train_support > 0.5 else ""
    return Finding(
        Diagnosis.OVERFITTING,
        severity,
        conf,
        int(view.val.step[-1]),
        f"validation {noun} has risen {100 * rise_rel:.1f}% since its minimum at step "
        f"{int(feat.x[rise.min_index])}{suffix}",
        evidence,
    )
