"""Overfitting: the validation loss passed a minimum and is drifting up.

Paper-notes §2 row 3: "loss reaches a minimum, then drifts upward slowly"; issue 3 adds
"while the training loss falls". The rise is measured between the medians of the raw
points around the smoothed minimum and of the last few points (at least three, so that
one spike is not a rise), in units of the noise, so that a flat noisy plateau does not
look like a rise.

Two ways to confirm it, from two to any number of points after the minimum (the
significance adapts to the noise level instead of waiting for a fixed count):

- the rise is large against the noise (``min_z``) and either rising steadily (a
  Mann-Kendall trend after the minimum) or the training loss falls meanwhile;
- the training loss falls strongly since the minimum (the generalisation gap grows from
  both sides, issue 3's signature of overfitting), the validation curve rises steadily
  (Mann-Kendall), and the rise is above the noise (``min_z_train``).

A rise while the logged learning rate climbs after the minimum is not overfitting: a
large LR regularises and raises the loss for as long as it is large (paper-notes §1 R3,
§2 row 6), and the rise of a 1cycle or warm-up ramp falls back as the LR anneals. Nor is
a rise while the training loss, as high as the validation loss, does not fall: there is
no generalisation gap to grow.

NaN/inf policy: uses the finite points only (non-finite ones are instability's
business). Minimum points: ``min_points`` finite evaluations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from advisor.core import confidence as cf
from advisor.core import series as sr
from advisor.core.features import Features
from advisor.core.features import RunView
from advisor.core.features import features_of
from advisor.core.features import view_of
from advisor.core.fit import theil_sen
from advisor.core.rise import Rise
from advisor.core.rise import rise_after_min
from advisor.model import Diagnosis
from advisor.model import Finding
from advisor.model import RunCurves
from advisor.model import Severity


@dataclass(frozen=True, slots=True)
class OverfittingParams:
    """Thresholds of the overfitting detector.

    Attributes:
        min_points: finite evaluations needed.
        min_after: evaluations after the minimum needed (2: ``rise_after_min`` measures
            nothing with fewer; the significance tests below decide the rest).
        window: points per median is ``n // window_div``, clipped to [``min_window``,
            ``max_window``].
        window_div: see ``window``.
        min_window: see ``window``; 3, so that the median of the recent points ignores
            one spike (measured on the tune suite: with 2, a recovering spike reaches
            z = 20 on a healthy run; with 3, healthy runs reach 2.9).
        max_window: see ``window``.
        min_z: the rise must exceed this many standard errors (measured on the tune
            suite: where the descent and size tests pass, healthy runs reach z = 2.9; 3.2
            leaves a margin)...
        min_rise_rel: ...and this fraction of the best level (paper-notes §5.1: within
            seed noise is horizontal; the paper's 4-run std is 0.1-1 accuracy points; 2%
            is our choice, healthy tune runs reach 3.9% where the other tests pass, so
            ``min_z`` is the binding test).
        max_p: one-sided Mann-Kendall p-value of an increase after the minimum, for the
            first way of confirming (or ``train_confirm_p``).
        train_confirm_p: logged training-loss points falling since the minimum with this
            two-sided Mann-Kendall p-value confirm a rise above ``min_z`` instead of the
            validation trend test, which needs 4 points after the minimum to pass at all
            (measured on the tune suite: where the size and descent tests pass, healthy
            runs reach p = 0.07 but then z <= 2.4; 0.1 is our choice).
        train_strong_p: a training loss falling since the minimum this significantly...
        strong_max_p: ...and a validation rise with a Mann-Kendall p-value below this...
        min_z_train: ...need only this many standard errors of rise (measured on the
            tune suite: healthy runs' training loss never falls with p below 0.07 after
            the minimum, it is flat on the plateau; 0.01, 0.01 and 1.5 are our choices,
            1.5 keeps the rise above the noise of the medians). ``train_strong_p`` was
            1e-3, which the Mann-Kendall test cannot reach on fewer than 7 points, so
            this way was mute for the first 6 evaluations after the minimum, 15% of a
            40-epoch run: 0.01 lets it speak from 6 (a perfectly monotone fall gives
            0.003). Real runs of the reference trainer's ``overfit`` preset, constant
            (20), cosine (20) and linear (6) schedules: 7 alerted 1-3 evaluations
            earlier (within 15% of the run after the minimum, constant LR: 14 -> 15 of
            20); no new alert on any of its healthy runs, with or without a decaying
            LR (over 300), nor on the suites. 0.02 changes nothing more.
        min_descent_sigma: the curve must have fallen by this many noise sds before the
            minimum, so that a warm-up bump at the start is not mistaken for a rise.
        train_rise_p: a training loss rising with this significance vetoes the finding
            (both rising is instability or a broken run, not overfitting).
        no_gap_ratio: a training loss that has not fallen since the minimum (Theil-Sen
            slope not below zero) and sits, in median since then, at this fraction of
            the validation loss or above vetoes it too: a model that fits its training
            data no better than unseen data has no generalisation gap to grow. Measured
            where an overfitting alert opened: the reference trainer's runs (over 100:
            ``overfit`` under every schedule, AdamW, step decays) at most 0.77, the
            suites' overfitting runs at most 0.81 (higher only where the training loss
            falls); ``lr-too-high`` evaluated 5 times per epoch at 0.92-1.00, its
            training loss flat or rising (3 alerts on seed 9, each resolved). 0.9, our
            choice between.
        critical_rise_rel: a rise above this fraction of the best level is critical.
    """

    min_points: int = 6
    min_after: int = 2
    window_div: int = 8
    min_window: int = 3
    max_window: int = 10
    min_z: float = 3.2
    min_rise_rel: float = 0.02
    max_p: float = 0.05
    train_confirm_p: float = 0.1
    train_strong_p: float = 0.01
    strong_max_p: float = 0.01
    min_z_train: float = 1.5
    min_descent_sigma: float = 3.0
    train_rise_p: float = 0.01
    no_gap_ratio: float = 0.9
    critical_rise_rel: float = 0.25

    def __post_init__(self) -> None:
        if self.min_points < 4:
            raise ValueError(f"min_points must be at least 4 but got {self.min_points}")
        if not 0 < self.max_p < 1:
            raise ValueError(f"max_p must be in (0, 1) but got {self.max_p}")
        if self.min_window < 2 or self.max_window < self.min_window:
            bad = (self.min_window, self.max_window)
            raise ValueError(f"need 2 <= min_window <= max_window but got {bad}")


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
    rise, noise = _rise(feat, params)
    if rise.after < params.min_after or rise.min_index < 1:
        return None
    descent = float(feat.zero[0] - feat.zero[rise.min_index])
    if descent < params.min_descent_sigma * max(feat.noise, 1e-12 * feat.level):
        return None
    rise_rel = rise.rise / feat.level
    if rise_rel < params.min_rise_rel:
        return None
    min_step = float(feat.x[rise.min_index])
    if view.lr_rose_since(int(min_step)):
        # A rise while the LR climbs is the schedule's (a 1cycle ramp, a warm-up, a
        # restart), not overfitting: the reference trainer's 1cycle runs (13 seeds) rise
        # 6-80% above their lowest value so far around the peak LR and fall again as it
        # anneals. Judged again once the curve sets a new minimum after the peak.
        return None
    evidence = {
        "min_step": min_step,
        "rise_pct": 100.0 * rise_rel,
        "rise_z": rise.z,
        "p_value": rise.p_value,
        "noise": noise,
    }
    train_p = _train_since_min(view, feat, rise.min_index, params, evidence)
    if train_p is None:
        return None
    steady = rise.p_value <= params.max_p or train_p <= params.train_confirm_p
    strong_train = (
        train_p <= params.train_strong_p
        and rise.p_value <= params.strong_max_p
        and rise.z >= params.min_z_train
    )
    if not ((rise.z >= params.min_z and steady) or strong_train):
        return None
    train_support = cf.from_p(train_p) if train_p < 1.0 else 0.5
    z_floor = params.min_z_train if strong_train else params.min_z
    conf = cf.combine(
        cf.margin(rise.z, z_floor, 2.0),
        cf.margin(rise_rel, params.min_rise_rel, params.min_rise_rel),
        max(cf.from_p(rise.p_value), train_support),
        0.5 + 0.5 * train_support,
    )
    severity = Severity.CRITICAL if rise_rel >= params.critical_rise_rel else Severity.WARNING
    suffix = " while training loss keeps falling" if train_support > 0.5 else ""
    return Finding(
        Diagnosis.OVERFITTING,
        severity,
        conf,
        int(view.val.step[-1]),
        f"validation {view.noun} has risen {100 * rise_rel:.1f}% since its minimum at step "
        f"{int(min_step)}{suffix}",
        evidence,
    )


def _rise(feat: Features, params: OverfittingParams) -> tuple[Rise, float]:
    """The rise test after the smoothed minimum, and the noise it was measured against."""
    y = feat.y
    window = int(np.clip(y.size // params.window_div, params.min_window, params.max_window))
    # After a logged LR drop the noise is the new phase's: a large LR's swings before it
    # would inflate it (our choice: at least 8 points to estimate it from).
    m = int(np.argmin(feat.zero))
    start = max((d for d in feat.drops if d <= m), default=0)
    noise = feat.noise
    if start > 0 and y.size - start >= 8:
        noise = sr.robust_noise(y[start:])
    return rise_after_min(y, feat.zero, noise, window, start=start), noise


def _train_since_min(
    view: RunView,
    feat: Features,
    min_index: int,
    params: OverfittingParams,
    evidence: dict[str, float],
) -> float | None:
    """What the training loss says since the minimum at ``min_index``: the two-sided
    p-value of its fall (1.0 when it does not fall or is not logged), or None when it
    vetoes the finding. Adds its numbers to ``evidence``."""
    train_p = 1.0
    ts = feat.train_smooth
    if ts is None or view.train is None:
        return train_p
    # The trend of the logged points since the minimum (a smoothed curve would lag and
    # keep falling for a while after the training loss has flattened).
    t_step, t_val = view.train.finite_part()
    min_step = float(feat.x[min_index])
    since = t_step >= min_step
    if int(since.sum()) >= 3:
        trend = theil_sen(t_step[since].astype(np.float64), t_val[since])
        evidence["train_slope"] = trend.slope
        evidence["train_p_value"] = trend.p_value
        if trend.slope > 0 and trend.p_value < params.train_rise_p:
            return None
        if trend.slope < 0:
            train_p = trend.p_value
        elif view.val_is_loss and _no_gap(view, t_val[since], min_step, params):
            return None
    tail = ts[min_index:]
    ok = np.isfinite(tail)
    if int(ok.sum()) >= 2:
        gap = (feat.smooth - ts)[min_index:][ok]
        evidence["gap_growth"] = float(gap[-1] - gap[0])
    return train_p


def _no_gap(view: RunView, train: np.ndarray, since: float, params: OverfittingParams) -> bool:
    """Is the median training loss ``train`` (logged since step ``since``) at least
    ``no_gap_ratio`` of the median validation loss since then?"""
    v_step, v_val = view.val.finite_part()
    val = v_val[v_step >= since]
    level = float(np.median(val)) if val.size else math.nan
    return bool(level > 0 and float(np.median(train)) >= params.no_gap_ratio * level)
