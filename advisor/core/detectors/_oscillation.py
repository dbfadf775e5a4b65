"""Oscillation of the validation loss between evaluations, the instability detector's
test for an optimiser bouncing across a valley."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from advisor.core.detectors._progress import stuck
from advisor.core.detectors._progress import train_progress
from advisor.core.detectors._progress import train_since
from advisor.core.features import RunView
from advisor.core.fit import theil_sen
from advisor.model import Diagnosis
from advisor.model import Finding
from advisor.model import Severity

if TYPE_CHECKING:
    from advisor.core.detectors.instability import InstabilityParams

# The evidence key that marks an oscillation finding.
_AMPLITUDE = "amplitude_rel"


def oscillation(
    view: RunView,
    steps: np.ndarray,
    y: np.ndarray,
    level0: float,
    *,
    params: InstabilityParams,
    last: int,
) -> Finding | None:
    """Oscillation over the last ``osc_window`` raw evaluations, ``osc_window_stuck`` for
    a loss that made no progress (never binned: averaging neighbours would cancel a
    period-2 oscillation)."""
    n = params.osc_window
    if stuck(view, y, params):
        n = params.osc_window_stuck
    w = y[-n:]
    if w.size < n:
        return None
    d = np.diff(w)
    amp = float(np.median(np.abs(d)))
    level = float(np.median(w))
    rel = amp / level if level > 0 else amp / level0
    if rel < params.osc_rel:
        return None
    tw = train_since(view, int(steps[-n]))
    if tw is not None:
        if view.val_is_loss and level > 0 and float(np.median(tw)) / level < params.osc_gap_ratio:
            return None
        prog = train_progress(tw)
        if prog is not None and prog < params.osc_progress:
            return None
    if (
        view.val_is_loss
        and y[0] > 0
        and level < params.osc_low_frac * float(y[0])
        and not _lag1(w) <= params.osc_alternation
    ):
        return None
    sign = np.sign(d)
    flips = float(np.mean(sign[1:] != sign[:-1]))
    if flips < params.osc_flips:
        return None
    trend = theil_sen(steps[-n:].astype(np.float64), w)
    if trend.p_value <= params.osc_trend_p:
        return None
    return Finding(
        Diagnosis.INSTABILITY,
        Severity.WARNING,
        min(1.0, 0.5 + rel),
        last,
        f"validation {view.noun} oscillates by {rel * 100:.0f}% between evaluations",
        {_AMPLITUDE: rel, "flips": flips, "trend_p": trend.p_value},
    )


def is_oscillation(finding: Finding) -> bool:
    """Is this an oscillation finding (not a NaN, jump, spike or divergence)?"""
    return finding.diagnosis is Diagnosis.INSTABILITY and _AMPLITUDE in finding.evidence


def _lag1(w: np.ndarray) -> float:
    """Lag-1 autocorrelation of ``w`` about its least-squares line: -1 for a period-2
    alternation, near 0 for independent noise (NaN when undefined)."""
    t = np.arange(w.size, dtype=np.float64) - (w.size - 1) / 2.0
    r = w - np.mean(w) - t * (float(np.dot(t, w)) / float(np.dot(t, t)))
    den = float(np.dot(r, r))
    return float(np.dot(r[:-1], r[1:])) / den if den > 0 else math.nan
