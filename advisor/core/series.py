"""Cleaning, smoothing and noise estimation of one logged series.

Everything here is O(n) or O(n log n) in the number of points and vectorised, so the
same functions serve a 6-point Keras log and a 20,000-point step log.

NaN/inf policy: cleaning never drops a non-finite value. It stays in ``Series.value``
with ``Series.finite`` false, because a NaN or inf loss is itself evidence of
instability (paper-notes §5.3). Smoothing and noise estimation skip non-finite points.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter

from advisor.model import F64
from advisor.model import I64
from advisor.model import Curve
from advisor.model import Direction

Mask = npt.NDArray[np.bool_]

# 1.4826 turns a median absolute deviation into a Gaussian standard deviation.
_MAD_TO_SD = 1.4826


@dataclass(frozen=True, slots=True)
class Series:
    """One cleaned series: steps strictly increasing, values as logged (NaN/inf kept).

    Attributes:
        step: strictly increasing steps.
        value: the value at each step; NaN and inf kept.
        finite: ``np.isfinite(value)``, computed once.
    """

    step: I64
    value: F64
    finite: Mask

    def __len__(self) -> int:
        return int(self.step.shape[0])

    def upto(self, step: int) -> Series:
        """The prefix of the series with ``self.step <= step`` (O(log n), no copy)."""
        end = int(np.searchsorted(self.step, step, side="right"))
        return Series(self.step[:end], self.value[:end], self.finite[:end])

    def finite_part(self) -> tuple[I64, F64]:
        """Steps and values of the finite points only."""
        return self.step[self.finite], self.value[self.finite]


def clean(step: npt.ArrayLike, value: npt.ArrayLike) -> Series:
    """Sort by step and keep the last logged value of each duplicated step.

    The sort is stable, so among points logged with the same step the one logged last
    wins (a re-evaluation after a restart overrides the earlier one).

    Args:
        step: steps in logged order.
        value: values in logged order (NaN and inf allowed).

    Returns:
        The cleaned series.
    """
    s = np.asarray(step, dtype=np.int64)
    v = np.asarray(value, dtype=np.float64)
    if s.shape != v.shape:
        raise ValueError(f"step and value differ in length: {s.shape} vs {v.shape}")
    if s.size and bool(np.any(s[1:] < s[:-1])):
        order = np.argsort(s, kind="stable")
        s, v = s[order], v[order]
    if s.size > 1 and bool(np.any(s[1:] == s[:-1])):
        keep = np.ones(s.shape, dtype=bool)
        keep[:-1] = s[1:] != s[:-1]
        s, v = s[keep], v[keep]
    return Series(s, v, np.isfinite(v))


def from_curve(curve: Curve) -> Series:
    """Clean one curve of a run."""
    return clean(curve.step, curve.value)


def oriented(series: Series, direction: Direction) -> Series:
    """The series as a loss-like quantity: lower is better, positive where possible.

    A metric to maximise becomes an error: ``1 - v`` for fractions (accuracy), ``100 - v``
    for percentages, and ``max + range - v`` otherwise, so that the ratio rules built for
    losses (divergence at 4x the best, paper-notes §5.3) keep a meaning.
    """
    if direction is Direction.MIN:
        return series
    v = series.value
    fin = v[series.finite]
    if fin.size == 0:
        return Series(series.step, -v, series.finite)
    hi, lo = float(fin.max()), float(fin.min())
    if lo >= 0.0 and hi <= 1.0:
        top = 1.0
    elif lo >= 0.0 and hi <= 100.0:
        top = 100.0
    else:
        top = hi + max(hi - lo, abs(hi), 1e-12)
    return Series(series.step, top - v, series.finite)


def ema(values: F64, beta: float) -> F64:
    """Debiased exponential moving average (Adam-style bias correction).

    Non-finite values are skipped: the average carries its last value across them.

    Args:
        values: the series.
        beta: the decay in [0, 1); 0 returns the values themselves.

    Returns:
        The smoothed series, same length; NaN before the first finite value.
    """
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta must be in [0, 1) but got {beta}")
    out = np.full(values.shape, np.nan)
    fin = np.isfinite(values)
    x = values[fin]
    if x.size == 0:
        return out
    smoothed = np.asarray(lfilter([1.0 - beta], [1.0, -beta], x), dtype=np.float64)
    if beta > 0:
        # The bias factor 1 - beta**k reaches 1 (in float64) after a few hundred points;
        # computing the power only where it matters keeps this O(n) pass cheap.
        head = min(x.size, int(math.log(1e-17) / math.log(beta)) + 1)
        smoothed[:head] /= 1.0 - beta ** np.arange(1, head + 1, dtype=np.float64)
    if bool(fin.all()):
        return smoothed
    out[fin] = smoothed
    if not bool(fin.all()):
        # Carry the last smoothed value over non-finite points (forward fill).
        idx = np.where(fin, np.arange(values.size), -1)
        np.maximum.accumulate(idx, out=idx)
        valid = idx >= 0
        out[valid] = out[idx[valid]]
    return out


def ema_beta(n: int) -> float:
    """The smoothing decay for a series of ``n`` points.

    The span grows as sqrt(n), between 2 and 15 evaluations: a 9-epoch Keras log gets a
    span of 3, a 500-point step log 15. Our choice, not tuned; the cap echoes the
    10-epoch patience of ReduceLROnPlateau (paper-notes §5.1).
    """
    span = min(15.0, max(2.0, math.sqrt(max(n, 1))))
    return 1.0 - 2.0 / (span + 1.0)


def ema_noise_factor(beta: float) -> float:
    """Standard deviation of the EMA of white noise, per unit of the noise's sd."""
    return math.sqrt((1.0 - beta) / (1.0 + beta))


def robust_noise(values: F64) -> float:
    """Point-to-point noise sd from the MAD of second differences (finite values only).

    Second differences cancel any locally linear trend, so the fast fall at the start of
    a run does not inflate the estimate (first differences did, by 3-6x on the tune
    suite's short runs); the MAD ignores isolated spikes and step decays. For white
    noise of sd s, second differences have sd s*sqrt(6), hence the division.

    Returns:
        The noise sd, 0.0 with fewer than four finite values.
    """
    x = values[np.isfinite(values)]
    if x.size < 4:
        return 0.0
    d2 = x[2:] - 2.0 * x[1:-1] + x[:-2]
    mad = float(np.median(np.abs(d2 - np.median(d2))))
    return _MAD_TO_SD * mad / math.sqrt(6.0)


def zero_phase(values: F64, beta: float, starts: tuple[int, ...] = ()) -> F64:
    """Forward then backward debiased EMA: smooth without shifting features in time.

    Used to locate a minimum: a causal average puts it late by about its span.

    Args:
        values: the points.
        beta: EMA decay.
        starts: indices where a new phase of training starts (a step decay of the
            learning rate): each phase is smoothed on its own, so that the level before
            a drop does not drag the smoothed values after it up for a span of points.
    """
    out: F64 = np.empty_like(values)
    bounds = [0, *(i for i in starts if 0 < i < values.size), values.size]
    for lo, hi in itertools.pairwise(bounds):
        fwd = ema(values[lo:hi], beta)
        out[lo:hi] = ema(fwd[::-1].copy(), beta)[::-1]
    return out


def binned(step: I64, value: F64, max_points: int) -> tuple[F64, F64, int]:
    """Average consecutive finite points into at most ``max_points`` bins.

    Args:
        step: steps of finite points.
        value: finite values.
        max_points: the largest number of bins.

    Returns:
        Bin steps (mean), bin values (mean) and the number of points per bin.
    """
    n = int(step.shape[0])
    if n <= max_points:
        return step.astype(np.float64), value.copy(), 1
    per = math.ceil(n / max_points)
    starts = np.arange(0, n, per)
    counts = np.diff(np.append(starts, n)).astype(np.float64)
    xs = np.add.reduceat(step.astype(np.float64), starts) / counts
    ys = np.add.reduceat(value, starts) / counts
    return xs, ys, per
