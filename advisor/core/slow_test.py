"""The slow-decay test: does a falling curve need a decay slower than a given time
constant (a likelihood-ratio test between two-exponential fits)?

Takes plain float arrays of finite values, like ``fit``. The underfitting detector asks
it whether a run will plateau by its planned end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from advisor.model import F64

# Time constants of the two-exponential grid, in units of the planned run: from well below
# one evaluation of a long run to far beyond the run (a straight line in practice).
_TAU_GRID = np.geomspace(1e-3, 30.0, 48)
_PAIR_I, _PAIR_J = np.triu_indices(_TAU_GRID.size, 1)
# Points more than this many noise sds above the free fit are spikes, left out of the test
# (instability's business; one recovering spike is healthy, issue 3).
_SPIKE_SIGMA = 5.0


@dataclass(frozen=True, slots=True)
class SlowTest:
    """Does the curve need a component slower than ``tau_fast`` (a likelihood-ratio test)?

    Both models are ``a + b1*exp(-t/tau1) + b2*exp(-t/tau2)`` with b1, b2 >= 0 (each
    term falling): the fast model has every time constant at most ``tau_fast``, the free
    model any (a very slow term is a straight line over the run).

    Attributes:
        lam: (RSS of the fast model - RSS of the free model) / noise variance; about
            chi-squared with one degree of freedom when the curve is a fast decay.
        tau_slow: the slowest time constant the free fit uses (0 for a flat curve).
        remaining: the free fit's fall from the last point to ``t_end`` (same units as y).
        used: points used (spikes left out).
    """

    lam: float
    tau_slow: float
    remaining: float
    used: int


def _two_exp_rss(t: F64, y: F64) -> tuple[F64, F64, F64, F64, F64]:
    """RSS and coefficients of every single and paired term of the grid (b >= 0 only).

    Returns:
        rss1, b of each single term; rss2, b1, b2 of each pair (inf where infeasible).
    """
    g = np.exp(-t[None, :] / _TAU_GRID[:, None])
    gc = g - g.mean(axis=1, keepdims=True)
    yc = y - y.mean()
    tot = float(yc @ yc)
    gy = gc @ yc
    gg = np.einsum("ij,ij->i", gc, gc)
    b = np.where(gg > 0, gy / np.where(gg > 0, gg, 1.0), 0.0)
    rss1 = np.where(b > 0, tot - b * gy, np.inf)
    cross = gc @ gc.T
    aa, bb, ab = gg[_PAIR_I], gg[_PAIR_J], cross[_PAIR_I, _PAIR_J]
    ay, by = gy[_PAIR_I], gy[_PAIR_J]
    det = aa * bb - ab * ab
    ok = det > 1e-9 * aa * bb
    det = np.where(ok, det, 1.0)
    b1 = (bb * ay - ab * by) / det
    b2 = (aa * by - ab * ay) / det
    ok &= (b1 > 0) & (b2 > 0)
    rss2 = np.where(ok, tot - (b1 * ay + b2 * by), np.inf)
    return rss1, b, rss2, b1, b2


def slow_test(t: F64, y: F64, noise: float, tau_fast: float, t_end: float) -> SlowTest | None:
    """Test whether a decay slower than ``tau_fast`` is needed to explain ``y``.

    Points more than ``_SPIKE_SIGMA`` noise sds above the free fit (spikes) are left out
    and the test is made again without them.

    Args:
        t: time since the start of the phase, in units of the planned run (increasing).
        y: finite values, lower is better.
        noise: point noise sd of ``y`` (positive).
        tau_fast: the slowest time constant the fast model may use.
        t_end: the planned end of the run on the same axis.

    Returns:
        The test; None with fewer than 5 points (after leaving out spikes) or no noise.
    """
    if t.size < 5 or not noise > 0:
        return None
    got, fitted = _slow_test(t, y, noise, tau_fast, t_end)
    keep = (y - fitted) <= _SPIKE_SIGMA * noise
    if bool(keep.all()):
        return got
    if int(keep.sum()) < 5:
        return None
    return _slow_test(t[keep], y[keep], noise, tau_fast, t_end)[0]


def _slow_test(
    t: F64, y: F64, noise: float, tau_fast: float, t_end: float
) -> tuple[SlowTest, F64]:
    """The test on all the given points, and the free fit's values."""
    rss1, b, rss2, b1, b2 = _two_exp_rss(t, y)
    mean = float(y.mean())
    tot = float(((y - mean) ** 2).sum())
    fast1 = tau_fast >= _TAU_GRID
    fast2 = _TAU_GRID[_PAIR_J] <= tau_fast
    rss_fast = min(tot, float(np.min(rss1[fast1], initial=np.inf)),
                   float(np.min(rss2[fast2], initial=np.inf)))  # fmt: skip
    k1, k2 = int(np.argmin(rss1)), int(np.argmin(rss2))
    now, end = float(t[-1]), max(float(t_end), float(t[-1]))
    terms: list[tuple[float, float]] = []  # (amplitude, time constant) of the free fit
    if min(rss1[k1], rss2[k2]) < tot:
        if rss1[k1] <= rss2[k2]:
            terms = [(float(b[k1]), float(_TAU_GRID[k1]))]
        else:
            i, j = int(_PAIR_I[k2]), int(_PAIR_J[k2])
            terms = [(float(b1[k2]), float(_TAU_GRID[i])), (float(b2[k2]), float(_TAU_GRID[j]))]
    rss_free = min(tot, float(rss1[k1]), float(rss2[k2]))
    fitted = np.full(y.shape, mean)
    for amp, tau in terms:
        g = np.exp(-t / tau)
        fitted += amp * (g - g.mean())
    remaining = sum(amp * (math.exp(-now / tau) - math.exp(-end / tau)) for amp, tau in terms)
    tau_slow = max((tau for _, tau in terms), default=0.0)
    lam = (rss_fast - rss_free) / (noise * noise)
    return SlowTest(lam, tau_slow, float(remaining), int(t.size)), fitted
