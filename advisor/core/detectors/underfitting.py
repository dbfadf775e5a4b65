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

When the logs state the planned length of training (``RunView.elapsed``), time is known
directly, and early in the run (up to ``plan_max_elapsed`` of it) the detector also asks:
can a healthy decay explain the current phase? A likelihood-ratio test
(``slow_test.slow_test``) compares the best fit by decays whose time constants are at most
``plan_tau_fast`` of the planned run (a healthy run flattens early: paper-notes §2 row 2)
with the best fit by any decay; a slow component that the data need, and that would
still bring ``plan_min_remaining_rel`` of the level by the planned end, is underfitting
(§2 row 1: "keeps falling with no plateau"; §5.2: if the best checkpoint falls in the
last part of the run, train longer). This needs no count of evaluations, so a long run
is flagged at a fifth to a quarter of its length instead of after 10-15 evaluations.

A loss that has barely left its first value after ``slow_points`` evaluations, yet falls
with a significant trend, is learning far too slowly whatever the time priors say:
underfitting at once. (Without the trend it is instability's "no progress", a network
that does not learn at all.)

Neither test calls a fast fall underfitting (over ``max_drop_rel`` or
``plan_max_drop_rel`` of the level per third of the phase): a decaying LR brings the loss
down steeply a second time, and that is not a LR too small to learn. Nor do the
count-based tests judge a loss that falls while a schedule anneals the LR down from a
peak it ramped up to (the second half of a 1cycle, the decay after a warm-up; not the
constant LR after a step decay) before ``anneal_until`` of the planned run: the fall is
the schedule's doing, and whether the loss still falls when the annealing is done is the
question.

NaN/inf policy: uses the finite points only. Minimum points: ``min_points`` finite
evaluations in the current phase.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from advisor.core import confidence as cf
from advisor.core import series as sr
from advisor.core.detectors._progress import near_start
from advisor.core.features import Features
from advisor.core.features import RunView
from advisor.core.features import features_of
from advisor.core.features import view_of
from advisor.core.fit import Slope
from advisor.core.fit import TrendFit
from advisor.core.fit import fit_trend
from advisor.core.fit import theil_sen
from advisor.core.slow_test import slow_test
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
        max_drop_rel: ...and stay under this one: a loss that falls by more than a
            quarter of its level over a third of the phase is in a fast phase, not held
            back by a small LR. The count-based tests read such a fall as "not slowing down" when a
            decaying LR brings the loss down a second time: the reference trainer's CNN
            at LR 0.07-0.1 with cosine annealing (``--schedule cosine``; 34 runs of
            five variants) or linear decay (6 runs) was alerted mid-run by them in 12,
            falling 32-93% of the level over the last third; the alerts resolved a few
            epochs later. Where underfitting opened by these tests: the reference
            trainer's runs with a LR 10-40x too low 5.6-16.5% (constant, cosine and
            linear schedules), the tune suite's up to 19.3% (holdout 19.9%).
        plan_tau_fast: with a planned length: the slowest time constant of a healthy
            decay, as a fraction of the planned run (measured on the tune suite, whose
            healthy runs fall with time constants of at most 0.12 of the run and whose
            underfitting runs with at least 0.7; with 0.14 two underfitting runs are
            flagged after 30% instead of before).
        plan_min_lam: ...the likelihood-ratio statistic against that healthy decay must
            reach this (9: three standard errors for one degree of freedom; on the tune
            suite no healthy prefix within ``plan_max_elapsed`` reaches it together with
            ``plan_min_remaining_rel``, and 6 alarms on one)...
        plan_min_remaining_rel: ...and the free fit must still fall by this fraction of
            the level between now and the planned end (measured on the tune suite, with
            the plan given to every run: healthy prefixes that pass the likelihood test
            have at most 4.4% to come, underfitting runs at least 12.7% when first
            flagged; 8% lies between).
        plan_max_elapsed: the test judges the early part of the run only (paper-notes
            §2 row 1: "in early epochs"; the target is underfitting by 30%, plus a few
            evaluations of patience); later the count-based tests above decide. The
            bound on a healthy time constant holds early only: a power-law approach (which
            ``fit.fit_trend`` also models) slows down as it goes, its local time constant
            growing with time. On the tune suite 0.35, 0.5 and 1.0 give the same first
            alerts; the bound came in after a version without it alarmed on a holdout
            healthy run (a power-law approach) at 55% of the run, so the holdout suite is
            not a clean test of this one parameter.
        plan_min_points: evaluations in the phase the planned test needs (the plateau
            detector's minimum for any diagnosis).
        plan_max_drop_rel: ...and the loss must not fall, at its pace over the recent
            half of the phase (Theil-Sen), by more than this fraction of the level over a
            third of the phase (the count-based tests' ``max_drop_rel``, measured on the
            recent slope: the fitted trend of a long phase is a slow decay that misses a
            steep fall at its end). The planned test's healthy run, a decay that
            flattens early, has no room for the second drop that a decaying LR brings,
            and took it for a slow decay: the reference trainer's CNN at LR 0.07-0.1
            with cosine annealing (34 runs) and linear decay (6 runs) alerted at 27-35%
            of the run in 6, falling 32-64% at that pace; 2 more runs (constant and
            step LR) 23-33%. Underfitting runs where this test opened: at most 14.6%
            (the reference trainer's runs with a LR 10-40x too low under constant,
            cosine and linear schedules, and the suites). 20%, between.
        long_points: a phase of at least this many evaluations (twice ``min_points``, so
            that a healthy run's fast phase is over)...
        long_drop_rel: ...whose fitted fall over its last third still exceeds this
            fraction of the level...
        long_drop_sigma: ...and this many noise sds is underfitting even though it slows
            down: no plateau is in sight (paper-notes §2 row 1). A decay whose time
            constant is a good part of the run slows down over any long enough span, so
            the slope ratios above fall below their thresholds while the loss still
            drops steadily: the reference trainer's ``lr-too-low`` runs (LR 1e-3, 52-56%
            accuracy) fall 10-12% of their level, 9-20 sds, over the last third at the
            end and were called healthy. Healthy runs of the three suites and of the
            reference trainer reach 4.0 sds where the fall passes 8% (a recovering spike;
            ``good`` at 1.1): 6 leaves a margin. Chosen with all three suites in view.
        long_min_elapsed: with a planned length, the ``long_*`` test applies only from
            this fraction of the run on: before, the plan tells a slow healthy approach
            from underfitting better (a healthy decay with a time constant of a tenth of
            the run still falls 24% of its level over a third of 44 evaluations); in the
            last quarter, a loss still falling means train longer (paper-notes §5.2).
        max_train_ratio: no underfitting while the training loss is below this
            fraction of the validation loss (``fits_training_data``): the model fits its
            training data, the gap to validation is most of the loss, and a validation
            loss still creeping down is the slow tail of generalisation, not a learning
            rate too low to learn (paper-notes §2 row 1's remedies, a larger LR, less
            regularisation, a larger model, would widen that gap). Measured where
            underfitting alerts opened: ``lr-too-low`` runs of the reference trainer
            1.00-1.03 (20 seeds), the suites' underfitting runs 0.92 and up; ``good``
            seeds 31 and 72 late in the run (training loss 0.006, validation loss 0.17)
            0.054 and 0.055, alerts now avoided. 0.25 is our choice between. Those
            ratios were of smoothed values; the test now takes the medians of the last
            three points (same alerts on all of them; ``good`` 31 and 72 at 0.03-0.04
            there), since a training loss that falls fast at the end of a 1cycle leaves
            its average far behind: ``one-cycle`` seed 77 at 0.10 by the medians, over
            0.25 smoothed, was alerted on its last evaluation.
        slow_points: a validation loss whose smoothed best is still ``slow_frac`` of its
            first value or more after this many evaluations, the LR not rising over the
            last of them...
        slow_frac: ...(see ``slow_points``)...
        slow_trend_p: ...that falls over the run (Theil-Sen slope below zero, Mann-Kendall
            p at most this) learns, but far too slowly: underfitting, at once (paper-notes
            §2 row 1: still falling, no plateau in sight). The same numbers as the
            instability detector's no-progress test, which takes such a loss without the
            falling trend. The count-based tests called these runs horizontal (under
            ``min_drop_rel``) and the planned-length test saw too little to come: AdamW at
            LR 1e-5 with a warm-up and linear decay, evaluated 5 times per epoch, 2.30 ->
            2.05 at 20% accuracy over 40 epochs, was alerted at 37-56% of the run.
            Measured over the suites and the reference trainer's runs of this README
            (about 900): it fires on runs labelled underfitting only (that one, AdamW at
            1e-5 once per epoch, ``lr-too-low`` evaluated 5 times per epoch, one tune run),
            at their 12th evaluation or the 12th after a warm-up.
        anneal_until: with a planned length, while the logged LR anneals down from a
            peak it rose to, the count-based tests wait until this fraction of the run.
            The reference trainer's ``one-cycle`` evaluated 5 times per epoch was
            alerted at 74% and 81% of the run (seeds 10, 13: 19.9% and 24.1% over the
            last third, not slowing down; resolved at 84%), ``lr-too-high`` with a 10%
            warm-up and linear decay at 35% (seed 11, 95.5% accuracy). Where the
            count-based tests open on real underfitting under such schedules, 1cycle with
            a too-low maximum LR, they do so at the last evaluation; the warm-up runs
            with a too-low LR are alerted by the planned-length test, earlier. 0.9: our
            choice, the last tenth of the run, where the annealing ends. No suite run
            changed, nor any other of the scratch runs. Without a planned length no
            end is in sight and the tests apply as before.
    """

    min_points: int = 10
    max_p: float = 0.01
    min_ratio: float = 0.4
    min_drop_rel: float = 0.01
    min_late_ratio: float = 0.6
    min_late_points: int = 15
    plan_tau_fast: float = 0.12
    plan_min_lam: float = 9.0
    plan_min_remaining_rel: float = 0.08
    plan_max_elapsed: float = 0.35
    plan_min_points: int = 5
    long_drop_rel: float = 0.08
    long_drop_sigma: float = 6.0
    long_points: int = 20
    long_min_elapsed: float = 0.75
    max_train_ratio: float = 0.25
    max_drop_rel: float = 0.25
    plan_max_drop_rel: float = 0.2
    slow_points: int = 12
    slow_frac: float = 0.95
    slow_trend_p: float = 0.05
    anneal_until: float = 0.9

    def __post_init__(self) -> None:
        if not (self.plan_tau_fast > 0 and self.plan_min_lam > 0):
            raise ValueError("plan_tau_fast and plan_min_lam must be positive")
        if self.plan_min_remaining_rel <= 0:
            raise ValueError(
                f"plan_min_remaining_rel must be positive but got {self.plan_min_remaining_rel}"
            )
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
    if fits_training_data(view, feat, params.max_train_ratio):
        return None
    slow = _slow_start(view, params)
    if slow is not None:
        return slow
    frac = view.elapsed()
    if frac is not None and frac <= params.plan_max_elapsed:
        # The planned length says how far the run is: it replaces the count prior.
        return _planned(view, feat, params, frac)
    return _counted(view, feat, params, frac, fit)


def _counted(
    view: RunView,
    feat: Features,
    params: UnderfittingParams,
    frac: float | None,
    fit: TrendFit | None,
) -> Finding | None:
    """Underfitting judged by the count prior and the fitted trend's slopes (``frac``:
    the elapsed fraction of the planned run, when known)."""
    seg = feat.segment
    x, y = feat.x[seg:], feat.y[seg:]
    m = int(y.size) * feat.per
    if m < params.min_points:
        return None
    if frac is not None and frac < params.anneal_until and _annealing(view, float(x[0])):
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
    far = (
        m >= params.long_points
        and (frac is None or frac >= params.long_min_elapsed)
        and drop_rel >= params.long_drop_rel
        and last_drop >= params.long_drop_sigma * feat.noise
    )
    if not (steady or far) or not params.min_drop_rel <= drop_rel <= params.max_drop_rel:
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
    train_support = _train_support(feat, x[-half:], evidence)
    conf = cf.combine(
        cf.margin(
            max(ratio, late - params.min_late_ratio + params.min_ratio), params.min_ratio, 0.15
        ),
        cf.from_p(recent.p_value),
        cf.margin(float(m), float(params.min_points), 5.0),
        0.5 + 0.5 * train_support,
    )
    remaining = fit.remaining / feat.level
    return Finding(
        Diagnosis.UNDERFITTING,
        Severity.WARNING,
        conf,
        int(view.val.step[-1]),
        f"validation {view.noun} is still improving ({100 * drop_rel:.1f}% over the last third "
        f"of the phase, {'not slowing down' if steady else 'slowing, but far above the noise'}); "
        f"{_to_come(remaining)}",
        evidence,
    )


def _annealing(view: RunView, phase_start: float) -> bool:
    """Is the logged LR coming down from a peak that it rose to from its first value,
    and still lower now than where the current phase started (``phase_start``, a step)?

    The second condition leaves out a constant LR after a step decay (a warm-up followed
    by step decays): the phase after a drop is judged as usual.
    """
    if view.lr is None:
        return False
    ls, lv = view.lr.finite_part()
    if lv.size < 3:
        return False
    pk = int(np.argmax(lv))
    at_start = lv[max(0, int(np.searchsorted(ls, phase_start, side="right")) - 1)]
    return bool(pk > 0 and lv[pk] > lv[0] and lv[-1] < lv[pk] and lv[-1] < at_start)


def _slow_start(view: RunView, params: UnderfittingParams) -> Finding | None:
    """A loss near its start (``near_start`` with ``slow_points`` and ``slow_frac``) that
    falls steadily: learning, far too slowly."""
    steps, y = view.val.finite_part()
    smooth = sr.ema(y, sr.ema_beta(int(y.size)))
    start = near_start(view, steps, y, smooth, points=params.slow_points, frac=params.slow_frac)
    if start is None:
        return None
    best, trend = start.best_to_first, start.trend
    if not (trend.slope < 0 and trend.p_value <= params.slow_trend_p):
        return None
    return Finding(
        Diagnosis.UNDERFITTING,
        Severity.WARNING,
        cf.combine(cf.from_p(trend.p_value), cf.margin(best, params.slow_frac, 0.02)),
        int(steps[-1]),
        f"validation {view.noun} is still {100 * best:.0f}% of its first value after "
        f"{y.size} evaluations, though falling steadily: learning, but far too slowly",
        {"best_to_first": best, "trend_p": trend.p_value, "evaluations": float(y.size)},
    )


def _train_support(feat: Features, x: np.ndarray, evidence: dict[str, float]) -> float:
    """How much the training loss over the last ``x.size`` points backs the finding: 1
    for a clear fall, 0 when it does not fall, 0.5 when it is not logged. Adds its
    numbers to ``evidence``."""
    ts = feat.train_smooth
    if ts is None:
        return 0.5
    t_tail = ts[-x.size :]
    ok = np.isfinite(t_tail)
    if int(ok.sum()) < 3:
        return 0.5
    tr = theil_sen(x[ok], t_tail[ok])
    evidence["train_slope"] = tr.slope
    evidence["gap_rel"] = float((feat.smooth[-1] - ts[-1]) / feat.level)
    return cf.from_p(tr.p_value) if tr.slope < 0 else 0.0


def _planned(
    view: RunView, feat: Features, params: UnderfittingParams, frac: float
) -> Finding | None:
    """Underfitting judged against the planned length of the run (``frac`` of it done)."""
    seg = feat.segment
    x, y = feat.x[seg:], feat.y[seg:]
    if int(y.size) * feat.per < params.plan_min_points:
        return None
    # The planned end on the step axis (elapsed() is the last step over it), and time in
    # units of the planned run since the start of the phase.
    end = float(view.val.step[-1]) / frac
    t = (x - x[0]) / end
    test = slow_test(t, y, feat.noise, params.plan_tau_fast, 1.0 - float(x[0]) / end)
    if test is None or test.lam < params.plan_min_lam:
        return None
    half = max(3, y.size // 2)
    recent = theil_sen(x[-half:], y[-half:])
    remaining_rel = test.remaining / feat.level
    if recent.slope >= 0 or remaining_rel < params.plan_min_remaining_rel:
        return None
    if -recent.slope * (x[-1] - x[0]) / 3.0 > params.plan_max_drop_rel * feat.level:
        return None
    if view.val_is_loss and _too_steep_to_be_slow(x, recent, params.plan_tau_fast * end):
        return None
    conf = cf.combine(
        cf.margin(test.lam, params.plan_min_lam, params.plan_min_lam / 2.0),
        cf.margin(remaining_rel, params.plan_min_remaining_rel, params.plan_min_remaining_rel),
    )
    return Finding(
        Diagnosis.UNDERFITTING,
        Severity.WARNING,
        conf,
        int(view.val.step[-1]),
        f"validation {view.noun} is still improving at {100 * frac:.0f}% of the planned run, "
        f"more slowly than a run that will plateau in time; {_to_come(remaining_rel)} by its "
        f"planned end",
        {
            "elapsed_pct": 100.0 * frac,
            "planned_end_step": end,
            "slow_lr_stat": test.lam,
            "slow_tau_frac": test.tau_slow,
            "remaining_to_plan_pct": 100.0 * remaining_rel,
            "phase_start_step": float(x[0]),
        },
    )


# Points whose median is "now" for the training-data test.
_RECENT = 3


def fits_training_data(view: RunView, feat: Features, max_ratio: float) -> bool:
    """Is the training loss under ``max_ratio`` of the validation loss now (the medians
    of their last ``_RECENT`` points)?

    Then the validation loss still creeping down is not underfitting: no alert opens, and
    an open one does not stay open on it (``core.timeline``).
    """
    if not view.val_is_loss or view.train is None or feat.n == 0:
        return False
    ts, tv = view.train.finite_part()
    tv = tv[ts <= view.val.step[-1]]
    if tv.size == 0:
        return False
    # The last few points of each, not their smoothed values: a training loss that fell
    # fast (a 1cycle's or cosine's annealing) leaves its average lagging far behind.
    train = float(np.median(tv[-_RECENT:]))
    val = float(np.median(feat.y[-_RECENT:]))
    return bool(0.0 <= train < max_ratio * val)


def _too_steep_to_be_slow(x: np.ndarray, recent: Slope, tau_fast: float) -> bool:
    """Does the loss fall too fast now for any decay slower than ``tau_fast`` (steps)?

    A decay ``L = a + b exp(-t / tau)`` towards ``a >= 0`` (a loss) falls at
    ``(L - a) / tau <= L / tau``; falling faster than ``L / tau_fast`` therefore means a
    time constant under ``tau_fast``, i.e. a healthy fast phase. The slow-decay test can
    still prefer a slow component there: a real run often starts with a sigmoid-like,
    near-straight fall that no decay from the first point fits (the reference trainer's
    ``good`` seeds 12 and 20 were called underfitting at epoch 5 of 40, LR 0.03 seed 2
    likewise). Measured as the time the loss would take to reach zero at its current
    rate over ``tau_fast``: 23 ``good`` runs at epochs 4-8, 0.37-0.99; underfitting runs
    of both suites and ``lr-too-low`` when first flagged, 2.3-28.
    """
    now = recent.intercept + recent.slope * float(x[-1])
    return now > 0 and -recent.slope * tau_fast > now


def _to_come(remaining: float) -> str:
    """The extrapolated improvement left, as a fraction of the level, in words.

    A drop larger than the level itself (the loss going below zero) says only that no
    plateau is in sight: the fitted trend is not a forecast there.
    """
    return (
        f"about {100 * remaining:.0f}% more to come"
        if 0 < remaining <= 1
        else "no plateau in sight"
    )
