"""Healthy: the validation loss is on, or heading for, its horizontal part.

Paper-notes §2 row 2 and R2: the goal of tuning is the flat part of the validation
loss; "drops fast at first, then goes flat" is the healthy shape. §5.1: the paper has no
number for "horizontal"; we call the recent window horizontal when its Theil-Sen change
is under ``flat_rel`` of the level, or not significant (Mann-Kendall) and within the
noise.

The analysis reports this finding only when no other detector fires.

NaN/inf policy: uses the finite points only. Minimum points: ``min_points``.
"""

from __future__ import annotations

from dataclasses import dataclass

from advisor.core import confidence as cf
from advisor.core.features import Features
from advisor.core.features import RunView
from advisor.core.features import features_of
from advisor.core.features import view_of
from advisor.core.fit import theil_sen
from advisor.model import Diagnosis
from advisor.model import Finding
from advisor.model import RunCurves
from advisor.model import Severity


@dataclass(frozen=True, slots=True)
class PlateauParams:
    """Thresholds of the plateau detector.

    Attributes:
        min_points: finite evaluations needed before any diagnosis (fewer is ``unknown``).
        window_frac: the recent window is this fraction of the points (at least 4).
        flat_rel: a change over the window below this fraction of the level is horizontal
            (paper-notes §5.1 suggests "within seed noise"; 1% is our choice).
        flat_p: ...or a Mann-Kendall p-value above this with a change within
            ``flat_sigma`` noise sds: a few points cannot make any trend significant
            (four give p >= 0.08), so without the noise bound a window of four falling
            by 6% in steps of 5 sds was called horizontal (the reference trainer's
            ``lr-too-low``, just after a phase boundary).
        flat_sigma: see ``flat_p``; 3 sds, our choice (the Theil-Sen change over four
            points of pure noise has an sd of about 1.7 noise sds).
    """

    min_points: int = 5
    window_frac: float = 1.0 / 3.0
    flat_rel: float = 0.01
    flat_p: float = 0.05
    flat_sigma: float = 3.0

    def __post_init__(self) -> None:
        if self.min_points < 3:
            raise ValueError(f"min_points must be at least 3 but got {self.min_points}")


def detect(rc: RunCurves, params: PlateauParams = PlateauParams()) -> Finding | None:
    """A healthy finding (plateau reached or converging), or None with too few points."""
    view = view_of(rc)
    if view is None:
        return None
    return detect_features(view, features_of(view), params)


def detect_features(view: RunView, feat: Features, params: PlateauParams) -> Finding | None:
    """The plateau finding from an already built view and its features."""
    if feat.n < params.min_points:
        return None
    w = max(4, round(feat.y.size * params.window_frac))
    x, y = feat.x[-w:], feat.y[-w:]
    trend = theil_sen(x, y)
    change = trend.slope * float(x[-1] - x[0])
    change_rel = change / feat.level
    within_noise = abs(change) <= params.flat_sigma * feat.noise
    flat = abs(change_rel) < params.flat_rel or (trend.p_value > params.flat_p and within_noise)
    conf = cf.combine(cf.margin(feat.n, params.min_points, 5.0), 1.0 if flat else 0.6)
    what = "horizontal" if flat else "still converging" if change < 0 else "getting worse"
    return Finding(
        Diagnosis.HEALTHY,
        Severity.INFO,
        conf,
        int(view.val.step[-1]),
        f"validation curve is {what} (change {100 * change_rel:+.1f}% over the last {w} points)",
        {
            "plateau": 1.0 if flat else 0.0,
            "recent_change_pct": 100.0 * change_rel,
            "p_value": trend.p_value,
            "level": feat.best,
            "noise": feat.noise,
        },
    )
