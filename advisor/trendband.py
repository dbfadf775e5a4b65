"""The trend of a run's current phase, extrapolated with a 95% interval, for plotting.

``analyze`` fits the trend (``core.fit.TrendFit``) to the oriented validation signal
(lower is better); this module evaluates it over the fitted phase and ahead of it, puts
an interval around the extrapolation, and maps everything back to the logged units (an
accuracy stays an accuracy). Pure: no I/O, no plotting library.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from advisor.core import series as sr
from advisor.core.analysis import analyze
from advisor.core.features import features_of
from advisor.core.features import view_of
from advisor.core.fit import TrendFit
from advisor.model import F64
from advisor.model import Direction
from advisor.model import Role
from advisor.model import RunCurves

# How far the trend is extrapolated, as a fraction of the run so far.
HORIZON = 0.5
# Two-sided 95% normal quantile.
_Z95 = 1.959964


@dataclass(frozen=True, slots=True)
class TrendBand:
    """The fitted trend of a run's current phase, in the plotted units.

    Attributes:
        fit_step: steps of the phase the trend was fitted on.
        fit: the trend there.
        step: steps of the extrapolation, from the last fitted step on.
        mid: the extrapolated trend.
        lo: lower end of its 95% interval.
        hi: upper end.
    """

    fit_step: F64
    fit: F64
    step: F64
    mid: F64
    lo: F64
    hi: F64


def trend_band(rc: RunCurves, horizon: float = HORIZON) -> TrendBand | None:
    """The trend ``analyze`` fitted to the current phase, extrapolated, in logged units.

    Returns:
        None when no trend was fitted (too few points, an LR range test).
    """
    view = view_of(rc)
    curve = rc.first(Role.VAL_LOSS) or rc.first(Role.VAL_METRIC)
    if view is None or curve is None:
        return None
    with np.errstate(all="ignore"):
        trend = analyze(rc).trend
        if trend is None:
            return None
        feat = features_of(view)
        x, y = feat.x[feat.segment :], feat.y[feat.segment :]
        last = float(x[-1])
        ahead = np.linspace(last, last + horizon * max(last - view.origin, 1.0), 50)
        mid = trend.predict(ahead)
        lo, hi = _interval(trend, x, y, ahead, mid)
    back = _unorient(view.direction, view.val, sr.from_curve(curve))
    lo, hi = back(lo), back(hi)
    return TrendBand(x, back(trend.predict(x)), ahead, back(mid),
                     np.minimum(lo, hi), np.maximum(lo, hi))  # fmt: skip


def _interval(trend: TrendFit, x: F64, y: F64, ahead: F64, mid: F64) -> tuple[F64, F64]:
    """95% interval of the extrapolated trend at ``ahead``.

    A saturating fit knows the 95% interval of the improvement still to come after its
    last point (``remaining_lo``, ``remaining_hi``); at a step ahead, the trend has made a
    fraction of that improvement, and the interval is scaled by the same fraction (the
    rate held at its fitted value). The level the trend starts from is itself uncertain
    by the residuals' standard error, which widens the interval by that much; without
    it a fit that has converged would claim a band of zero width. A line, or a fit
    without a usable covariance, gets the least-squares confidence band of a line's mean.
    """
    n = int(x.size)
    sd = math.sqrt(float(((y - trend.predict(x)) ** 2).sum()) / max(n - 2, 1))
    at_last = float(trend.predict(x[-1:])[0])
    r, r_lo, r_hi = trend.remaining, trend.remaining_lo, trend.remaining_hi
    if trend.model != "linear" and r > 0 and math.isfinite(r_lo) and math.isfinite(r_hi):
        made = (at_last - mid) / r
        level = _Z95 * sd / math.sqrt(n)
        return at_last - made * r_hi - level, at_last - made * r_lo + level
    dx = x - x.mean()
    sxx = float((dx * dx).sum()) or 1.0
    half = _Z95 * sd * np.sqrt(1.0 / n + (ahead - x.mean()) ** 2 / sxx)
    return mid - half, mid + half


def _unorient(direction: Direction, val: sr.Series, raw: sr.Series) -> Callable[[F64], F64]:
    """Map loss-like (oriented) values back to the logged metric: ``v = top - oriented``."""
    if direction is Direction.MIN:
        return lambda v: v
    both = val.finite & raw.finite
    top = float((val.value[both] + raw.value[both])[0]) if bool(both.any()) else 0.0
    return lambda v: top - v
