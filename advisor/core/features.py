"""What the detectors see of a run: the validation signal, cleaned, binned and smoothed.

``view_of`` picks the curves (validation loss, else a validation metric turned into a
loss-like error; the training loss and learning rate when logged) and cleans them once.
``features_of`` derives the numbers every detector shares. Both are pure; building the
features of a 10,000-point run costs well under a millisecond.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from advisor.core import series as sr
from advisor.core.planned import Plan
from advisor.core.planned import elapsed
from advisor.core.planned import plan_of
from advisor.model import F64
from advisor.model import Direction
from advisor.model import Role
from advisor.model import RunCurves

# Detectors fit trends on at most this many points; longer runs are averaged into bins.
# 128 keeps the O(n^2) Theil-Sen and the curve fits under a millisecond each.
MAX_BINS = 128
# A single drop larger than this many noise sds (trend removed) is a level shift such as
# a step decay of the learning rate. Measured on the tune suite, noise alone does not
# separate them (fast-phase drops of healthy runs reach 170 sd, some decays are 4.4 sd):
# the relative floor below, the spike guard, and a logged LR drop do most of the work.
LEVEL_SHIFT_SIGMA = 8.0
# ...and at least this fraction of the current level, so that noise-free synthetic
# curves (noise ~ 0) do not see a level shift in every step (our choice).
LEVEL_SHIFT_REL = 0.04
# An LR falling by at least this factor between two logged values is a step decay...
LR_DROP_FACTOR = 2.0
# ...when it was flat before: its last two values within this fraction of each other
# (float noise in a logged constant; a 1cycle or cosine LR changes by more than 1% per
# evaluation wherever it halves between two).
LR_FLAT_REL = 0.01


@dataclass(frozen=True, slots=True)
class RunView:
    """The cleaned curves the detectors use.

    Attributes:
        run: the run's name.
        tag: the validation tag analysed.
        direction: its logged direction.
        val: the validation signal, oriented so that lower is better.
        train: the training loss, when logged.
        lr: the learning rate, when logged.
        origin: the run's first logged step (any curve).
        plan: the planned length of training, when the hyper-parameters state it.
        epoch: the logged epoch, when logged (to place a plan in epochs on the steps).
        val_is_loss: ``val`` is a validation loss, on the training loss's scale (not a
            metric turned into an error), so the two can be compared.
    """

    run: str
    tag: str
    direction: Direction
    val: sr.Series
    train: sr.Series | None
    lr: sr.Series | None
    origin: int
    plan: Plan | None = None
    epoch: sr.Series | None = None
    val_is_loss: bool = True

    def elapsed(self) -> float | None:
        """Fraction of the planned run done at the last validation point, if known."""
        if self.plan is None or len(self.val) == 0:
            return None
        ep = self.epoch
        return elapsed(
            self.plan,
            int(self.val.step[-1]),
            ep.step if ep is not None else None,
            ep.value if ep is not None else None,
        )

    @property
    def noun(self) -> str:
        """How messages name the validation signal: "loss", or "value" for a metric to
        maximise (an accuracy)."""
        return "value" if self.direction.value == "max" else "loss"

    def lr_rose_since(self, step: int) -> bool:
        """Did the logged learning rate rise after ``step`` (a warm-up, a 1cycle ramp, a
        restart)? False when no LR is logged."""
        if self.lr is None:
            return False
        ls, lv = self.lr.finite_part()
        after = lv[ls >= step]
        return after.size > 1 and bool(np.max(after) > after[0])

    def lr_over_now(self, steps: np.ndarray) -> np.ndarray:
        """The logged learning rate at each of ``steps`` (the last value logged at or
        before it) over the last one logged: inf after a decay to exactly zero (a linear
        schedule's last step), NaN where unknown or no LR is logged."""
        out = np.full(steps.size, np.nan)
        if self.lr is None:
            return out
        ls, lv = self.lr.finite_part()
        if lv.size == 0 or not lv[-1] >= 0:
            return out
        i = np.searchsorted(ls, steps, side="right") - 1
        known = i >= 0
        with np.errstate(divide="ignore", invalid="ignore"):
            out[known] = lv[i[known]] / lv[-1]
        return out

    def upto(self, step: int) -> RunView:
        """The view as it was when ``step`` had just been logged."""
        return RunView(
            self.run,
            self.tag,
            self.direction,
            self.val.upto(step),
            self.train.upto(step) if self.train is not None else None,
            self.lr.upto(step) if self.lr is not None else None,
            self.origin,
            self.plan,
            self.epoch.upto(step) if self.epoch is not None else None,
            self.val_is_loss,
        )


def view_of(rc: RunCurves) -> RunView | None:
    """Pick and clean the curves of a run; None when it logs no validation signal."""
    loss = rc.first(Role.VAL_LOSS)
    curve = loss or rc.first(Role.VAL_METRIC)
    if curve is None:
        return None
    val = sr.oriented(sr.from_curve(curve), curve.role.direction)
    tr = rc.first(Role.TRAIN_LOSS)
    lr = rc.first(Role.LR)
    plan = plan_of(rc.hparams)
    ep = rc.first(Role.EPOCH) if plan is not None and plan.steps is None else None
    steps = [int(c.step.min()) for c in rc.curves.values() if len(c)]
    return RunView(
        rc.run,
        curve.tag,
        curve.role.direction,
        val,
        sr.oriented(sr.from_curve(tr), tr.role.direction) if tr is not None else None,
        sr.from_curve(lr) if lr is not None else None,
        min(steps) if steps else 0,
        plan,
        sr.from_curve(ep) if ep is not None else None,
        loss is not None,
    )


@dataclass(frozen=True, slots=True)
class Features:
    """Numbers shared by the detectors, for the view's validation signal.

    Attributes:
        n: finite validation points.
        x: binned steps of the finite points.
        y: binned values.
        per: points per bin (1 when not binned).
        smooth: debiased EMA of ``y``.
        zero: zero-phase smoothed ``y`` (forward and backward EMA), to locate extremes.
        beta: its decay.
        noise: point noise sd of ``y`` (robust).
        best: the lowest smoothed value.
        level: the scale for relative thresholds (``best`` for positive losses).
        segment: index in ``x`` where the current segment starts (after the warm-up,
            the last step decay, and the highest early point).
        drops: indices in ``x`` of the first evaluation after each logged step decay of
            the learning rate (``_lr_drops``; ``len(x)`` for one after the last
            evaluation), in order. ``zero`` smooths each phase between them on its own.
        train_smooth: smoothed training loss at ``x`` (NaN before its first point), or None.
    """

    n: int
    x: F64
    y: F64
    per: int
    smooth: F64
    zero: F64
    beta: float
    noise: float
    best: float
    level: float
    segment: int
    drops: tuple[int, ...]
    train_smooth: F64 | None


def features_of(view: RunView) -> Features:
    """Derive the shared numbers from a view (finite validation points only)."""
    steps, values = view.val.finite_part()
    x, y, per = sr.binned(steps, values, MAX_BINS)
    beta = sr.ema_beta(int(y.size))
    smooth = sr.ema(y, beta)
    noise = sr.robust_noise(y)
    best = float(np.min(smooth)) if smooth.size else math.nan
    spread = float(np.ptp(y)) if y.size else 0.0
    level = best if best > 0 else max(spread, abs(best), 1e-12)
    train_smooth = None
    if view.train is not None and bool(view.train.finite.any()):
        ts, tv = view.train.finite_part()
        tsm = sr.ema(tv, sr.ema_beta(int(tv.size)))
        train_smooth = np.interp(x, ts.astype(np.float64), tsm, left=np.nan)
    drops = _lr_drops(view, x)
    return Features(
        n=int(values.size),
        x=x,
        y=y,
        per=per,
        smooth=smooth,
        # Smoothing across a logged LR drop would drag the values after it up towards
        # the level before it, for a span of points, and so move the minimum late.
        zero=sr.zero_phase(y, beta, drops),
        beta=beta,
        noise=noise,
        best=best,
        level=level,
        segment=_segment_start(view, x, y, smooth, drops, noise=noise, level=level),
        drops=drops,
        train_smooth=train_smooth,
    )


def _lr_drops(view: RunView, x: F64) -> tuple[int, ...]:
    """Indices into ``x`` of the first evaluation after each logged step decay of the LR.

    A step decay is a drop by ``LR_DROP_FACTOR`` from an LR that was flat: the last two
    values before it within ``LR_FLAT_REL`` of each other (the first logged value counts
    as flat). An LR annealed smoothly to zero (1cycle's last phase, cosine, linear decay)
    halves between consecutive logged values near its end without any step decay.
    """
    if view.lr is None or len(view.lr) < 3:
        return ()
    ls, lv = view.lr.finite_part()
    if lv.size < 3:
        return ()
    drop = lv[1:] * LR_DROP_FACTOR <= lv[:-1]
    flat = np.ones(lv.size - 1, dtype=bool)
    flat[1:] = np.abs(lv[1:-1] - lv[:-2]) <= LR_FLAT_REL * np.abs(lv[:-2])
    after = ls[np.nonzero(drop & flat)[0] + 1].astype(np.float64)
    return tuple(int(i) for i in np.searchsorted(x, after))


def _segment_start(
    view: RunView,
    x: F64,
    y: F64,
    smooth: F64,
    drops: tuple[int, ...],
    *,
    noise: float,
    level: float,
) -> int:
    """Where the current phase of training starts, as an index into ``x``.

    Three things end a phase: a warm-up (the LR rising at the start), a step decay (the
    last of ``drops``, or the loss dropping by a level shift), and the flat or rising
    start before the loss begins to fall (the highest point in the first half).
    """
    n = int(y.size)
    if n < 3:
        return 0
    start = 0
    if view.lr is not None and len(view.lr) >= 3:
        ls, lv = view.lr.finite_part()
        if lv.size >= 3:
            rising = np.diff(lv) > 0
            if bool(rising[0]):
                # End of warm-up: the first time the LR stops rising.
                stop = int(np.argmin(rising)) if not bool(rising.all()) else lv.size - 1
                start = max(start, int(np.searchsorted(x, float(ls[stop]))))
    if drops:
        start = max(start, drops[-1])
    d = np.diff(y)
    centred = d - np.median(d)
    shift = (centred < -LEVEL_SHIFT_SIGMA * noise * math.sqrt(2.0)) & (
        -d > LEVEL_SHIFT_REL * level
    )
    # The fall back from a spike is not a step decay: the new level must also be below
    # the point before the one it dropped from.
    before = np.concatenate([[np.inf], y[:-2]])
    shift &= y[1:] < before - LEVEL_SHIFT_REL * level
    idx = np.nonzero(shift)[0]
    if idx.size:
        start = max(start, int(idx[-1]) + 1)
    head = smooth[start : start + max(1, (n - start) // 2)]
    if head.size:
        start += int(np.argmax(head))
    return min(start, n - 1)
