"""LR range test: recognise one, and read the maximum and minimum LR for 1cycle.

Paper-notes §4: during a short run the LR rises (linearly in the paper, exponentially in
fastai and torch-lr-finder); the maximum LR is where the validation loss stops falling
(starts rising) or turns ragged, and the 1cycle minimum is max/10 (§1 checklist). For
comparison on the same curves this module also reimplements, from their documented
rules (paper-notes §4), fastai's ``valley``/``steep``/``minimum`` suggesters and
Lightning's suggestion (steepest per-index gradient after skipping the first 10 points).

NaN/inf policy: the loss curve is cut at its first non-finite value, or where it first
exceeds 4x its best smoothed value (fastai's and Lightning's stop rule). Minimum points:
``min_points`` logged LR values and loss values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from advisor.core import series as sr
from advisor.model import F64
from advisor.model import Diagnosis
from advisor.model import Finding
from advisor.model import Role
from advisor.model import RunCurves
from advisor.model import Severity


@dataclass(frozen=True, slots=True)
class LRRangeParams:
    """Thresholds for recognising and reading an LR range test.

    Attributes:
        min_points: LR and loss values needed.
        min_growth: the LR must grow by at least this factor over the run (range tests
            span 2-8 decades, paper-notes §4: 1e-7 to 10 in fastai).
        min_rising_frac: fraction of LR steps that must rise (a plateau of the LR, as
            after a warm-up, is not a range test).
        diverge_ratio: the loss curve is cut where it exceeds this multiple of its best
            smoothed value (paper-notes §5.3; fastai and Lightning stop at 4x).
        ragged_sigma: a point further than this many residual sds from the zero-phase
            smoothed curve is ragged (two in a row end the usable range; our choice).
        one_cycle_div: 1cycle minimum LR = max / this (paper-notes §1 checklist, §4).
    """

    min_points: int = 8
    min_growth: float = 10.0
    min_rising_frac: float = 0.9
    diverge_ratio: float = 4.0
    ragged_sigma: float = 4.0
    one_cycle_div: float = 10.0


@dataclass(frozen=True, slots=True)
class LRRange:
    """What a range test says, and what other tools would say on the same curve.

    Attributes:
        schedule: ``linear`` or ``exponential``.
        loss_tag: the loss curve read.
        max_lr: where the smoothed loss stops falling or turns ragged (ours).
        min_lr: ``max_lr / one_cycle_div`` (ours).
        fastai_valley: fastai's default suggester.
        fastai_steep: fastai's steepest-descent suggester.
        fastai_minimum: fastai's LR at minimum loss / 10.
        lightning: Lightning's suggestion.
    """

    schedule: str
    loss_tag: str
    max_lr: float
    min_lr: float
    fastai_valley: float
    fastai_steep: float
    fastai_minimum: float
    lightning: float


def range_schedule(lr: sr.Series, params: LRRangeParams = LRRangeParams()) -> str | None:
    """``linear`` or ``exponential`` when the LR rises over the whole run, else None."""
    _, v = lr.finite_part()
    if v.size < params.min_points:
        return None
    d = np.diff(v)
    if float(np.mean(d > 0)) < params.min_rising_frac or bool(np.any(d < 0)):
        return None
    first = float(v[v > 0][0]) if bool(np.any(v > 0)) else 0.0
    if first <= 0 or v[-1] < params.min_growth * first:
        return None
    idx = np.arange(v.size, dtype=np.float64)
    lin = abs(float(np.corrcoef(idx, v)[0, 1]))
    pos = v > 0
    logc = abs(float(np.corrcoef(idx[pos], np.log(v[pos]))[0, 1])) if int(pos.sum()) > 2 else 0.0
    return "exponential" if logc > lin else "linear"


def analyze_range(rc: RunCurves, params: LRRangeParams = LRRangeParams()) -> LRRange | None:
    """Read a range test; None when the run is not one or its curves are too short."""
    lr_curve = rc.first(Role.LR)
    if lr_curve is None:
        return None
    loss_curve = rc.first(Role.VAL_LOSS)
    if loss_curve is None or int(np.isfinite(loss_curve.value).sum()) < params.min_points:
        loss_curve = rc.first(Role.TRAIN_LOSS)
    if loss_curve is None:
        return None
    return read_range(sr.from_curve(lr_curve), sr.from_curve(loss_curve), loss_curve.tag, params)


def read_range(
    lr: sr.Series, loss: sr.Series, tag: str, params: LRRangeParams = LRRangeParams()
) -> LRRange | None:
    """Read a range test from cleaned LR and loss series (lower loss is better).

    Args:
        lr: the learning rate.
        loss: the loss read against it (validation preferred, paper-notes §5.4).
        tag: the loss's tag, for the report.
        params: thresholds.

    Returns:
        The suggestions, or None when the LR does not rise over the run.
    """
    schedule = range_schedule(lr, params)
    if schedule is None or len(loss) < params.min_points:
        return None
    ls, lv = lr.finite_part()
    log_lr = np.log(np.maximum(lv, 1e-300))
    lrs = np.exp(np.interp(loss.step.astype(np.float64), ls.astype(np.float64), log_lr))
    values = loss.value
    ours = _ours(lrs, values, params)
    valley, steep, minimum = _fastai(lrs, values, params)
    return LRRange(
        schedule,
        tag,
        ours,
        ours / params.one_cycle_div,
        valley,
        steep,
        minimum,
        _lightning(lrs, values, params),
    )


def finding_of(got: LRRange, step: int) -> Finding:
    """The LR_RANGE_TEST finding carrying the suggested LRs."""
    return Finding(
        Diagnosis.LR_RANGE_TEST,
        Severity.INFO,
        1.0,
        step,
        f"LR range test ({got.schedule}): max LR {got.max_lr:.3g}, 1cycle min LR "
        f"{got.min_lr:.3g} (fastai valley {got.fastai_valley:.3g}, Lightning "
        f"{got.lightning:.3g})",
        {
            "max_lr": got.max_lr,
            "min_lr": got.min_lr,
            "fastai_valley": got.fastai_valley,
            "fastai_steep": got.fastai_steep,
            "fastai_minimum": got.fastai_minimum,
            "lightning": got.lightning,
        },
    )


def detect(rc: RunCurves, params: LRRangeParams = LRRangeParams()) -> Finding | None:
    """An LR_RANGE_TEST finding carrying the suggested LRs, or None."""
    got = analyze_range(rc, params)
    lr_curve = rc.first(Role.LR)
    if got is None or lr_curve is None:
        return None
    return finding_of(got, int(lr_curve.step[-1]))


def _cut(values: F64, smooth: F64, ratio: float) -> int:
    """Length of the usable prefix: before the first NaN/inf or ``ratio`` x best smoothed."""
    bad = ~np.isfinite(values)
    best = np.minimum.accumulate(np.where(np.isfinite(smooth), smooth, np.inf))
    over = smooth > ratio * np.maximum(best, 0.0)
    stop = np.nonzero(bad | (over & (best > 0)))[0]
    return int(stop[0]) if stop.size else int(values.size)


def _ours(lrs: F64, values: F64, params: LRRangeParams) -> float:
    n = int(values.size)
    beta = 1.0 - 2.0 / (min(10.0, max(2.0, n / 15.0)) + 1.0)
    causal = sr.ema(values, beta)
    end = max(3, _cut(values, causal, params.diverge_ratio))
    y = values[:end]
    fin = np.isfinite(y)
    y = np.where(fin, y, np.interp(np.arange(end), np.nonzero(fin)[0], y[fin]))
    # Zero-phase smoothing (forward then backward EMA) puts the minimum where it is,
    # without the lag of a causal average.
    zero = sr.ema(sr.ema(y, beta)[::-1].copy(), beta)[::-1]
    i_min = int(np.argmin(zero))
    resid = y - zero
    sd = 1.4826 * float(np.median(np.abs(resid[: max(3, i_min)])))
    # The loss "starts rising" at the right end of a flat bottom, not at the noisy
    # argmin inside it: walk right while the smoothed loss stays within its own noise.
    tol = 2.0 * sd * sr.ema_noise_factor(beta)
    flat = np.nonzero(zero[i_min:] > zero[i_min] + tol)[0]
    i_min = i_min + (int(flat[0]) - 1 if flat.size else int(zero.size) - 1 - i_min)
    if sd > 0:
        ragged = np.abs(resid) > params.ragged_sigma * sd
        pair = ragged[1:i_min] & ragged[: max(0, i_min - 1)]
        hits = np.nonzero(pair)[0]
        if hits.size:
            i_min = int(hits[0])
    return float(lrs[i_min])


def _smooth98(values: F64) -> F64:
    """fastai's and Lightning's loss smoothing: debiased EMA with beta 0.98."""
    return sr.ema(values, 0.98)


def _fastai(lrs: F64, values: F64, params: LRRangeParams) -> tuple[float, float, float]:
    smooth = _smooth98(values)
    end = _cut(values, smooth, params.diverge_ratio)
    n_it = int(values.size)
    lo, hi = n_it // 10, min(end, n_it - 5)
    if hi - lo < 3:
        return math.nan, math.nan, math.nan
    lr, loss = lrs[lo:hi], smooth[lo:hi]
    # valley: halfway along the longest strictly decreasing subsequence.
    m = int(loss.size)
    length = np.ones(m, dtype=np.int64)
    start = np.arange(m)
    for i in range(1, m):
        prev = np.nonzero(loss[:i] > loss[i])[0]
        if prev.size:
            j = int(prev[np.argmax(length[prev])])
            length[i] = length[j] + 1
            start[i] = start[j]
    end_i = int(np.argmax(length))
    valley = float(lr[(int(start[end_i]) + end_i) // 2])
    # steep: the most negative slope of loss against log LR.
    grad = np.diff(loss) / np.diff(np.log(lr))
    steep = float(lr[int(np.argmin(grad))]) if grad.size else math.nan
    minimum = float(lr[int(np.argmin(loss))]) / 10.0
    return valley, steep, minimum


def _lightning(lrs: F64, values: F64, params: LRRangeParams) -> float:
    smooth = _smooth98(values)
    end = _cut(values, smooth, params.diverge_ratio)
    skip_begin, skip_end = 10, 1
    loss = smooth[skip_begin : end - skip_end]
    idx = np.arange(skip_begin, max(skip_begin, end - skip_end))
    ok = np.isfinite(loss)
    loss, idx = loss[ok], idx[ok]
    if loss.size < 2:
        return math.nan
    return float(lrs[int(idx[int(np.argmin(np.gradient(loss)))])])
