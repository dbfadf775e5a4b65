"""The rise test: has a curve risen since its minimum (the overfitting signature)?

Takes plain float arrays of finite values, like ``fit``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from advisor.core.fit import theil_sen
from advisor.model import F64

# sd of the median of w Gaussian points is about sqrt(pi/2) * sd / sqrt(w).
_MEDIAN_EFFICIENCY = math.sqrt(math.pi / 2.0)


@dataclass(frozen=True, slots=True)
class Rise:
    """A test for a rise after the minimum of a curve.

    Attributes:
        min_index: index of the minimum of the smoothed curve.
        rise: median of the last ``window`` points minus the median around the minimum.
        z: ``rise`` in units of its standard error under pure noise.
        p_value: one-sided Mann-Kendall p-value for an increase after the minimum.
        after: points after the minimum.
    """

    min_index: int
    rise: float
    z: float
    p_value: float
    after: int


def rise_after_min(y: F64, smoothed: F64, noise: float, window: int, start: int = 0) -> Rise:
    """Has the curve risen since the minimum of its smoothed version?

    Comparing medians (of the raw points around the minimum and of the last ``window``
    points) rather than the smoothed minimum itself avoids the bias of taking the
    minimum of a noisy curve: on a flat plateau the rise is then zero on average.

    Args:
        y: finite values (lower is better).
        smoothed: their smoothed version, same length.
        noise: point noise sd of ``y``.
        window: points per median (at least 2).
        start: the first index the median around the minimum may use (the start of the
            minimum's phase: the points before an LR drop sit at another level).

    Returns:
        The rise test; ``after`` is 0 when the minimum is at the end.
    """
    n = int(y.size)
    m = int(np.argmin(smoothed))
    after = n - 1 - m
    if after < 2:
        return Rise(m, 0.0, 0.0, 1.0, after)
    half = max(1, window // 2)
    around = y[max(start, m - half) : m + half + 1]
    recent = y[max(m + 1, n - window) :]
    rise = float(np.median(recent) - np.median(around))
    se = _MEDIAN_EFFICIENCY * noise * math.sqrt(1.0 / around.size + 1.0 / recent.size)
    z = rise / se if se > 0 else (math.inf if rise > 0 else 0.0)
    tail = y[m:]
    mk = theil_sen(np.arange(tail.size, dtype=np.float64), tail)
    p_one = mk.p_value / 2.0 if mk.tau > 0 else 1.0 - mk.p_value / 2.0
    return Rise(m, rise, z, p_one, after)
