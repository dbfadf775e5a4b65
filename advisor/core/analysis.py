"""The whole analysis of a run at one moment: every detector, one diagnosis.

Priority when several detectors fire: an LR range test is analysed as such (its loss
blows up by design); then instability (a NaN or a divergence makes every other reading
moot); then overfitting, underfitting, and healthy. Fewer than ``plateau.min_points``
finite validation points, or no validation signal, is ``unknown``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from dataclasses import field

import numpy as np

from advisor.core import lrrange
from advisor.core.detectors import instability
from advisor.core.detectors import overfitting
from advisor.core.detectors import plateau
from advisor.core.detectors import underfitting
from advisor.core.features import RunView
from advisor.core.features import features_of
from advisor.core.features import view_of
from advisor.core.fit import TrendFit
from advisor.model import Diagnosis
from advisor.model import Finding
from advisor.model import Role
from advisor.model import RunCurves


@dataclass(frozen=True, slots=True)
class AnalysisParams:
    """Parameters of every detector, and whether to fit the trend for plotting.

    Attributes:
        instability: see ``InstabilityParams``.
        overfitting: see ``OverfittingParams``.
        underfitting: see ``UnderfittingParams``.
        plateau: see ``PlateauParams``.
        lrrange: see ``LRRangeParams``.
        with_trend: fit the trend of the current phase even when no detector needs it.
    """

    instability: instability.InstabilityParams = field(
        default_factory=instability.InstabilityParams
    )
    overfitting: overfitting.OverfittingParams = field(
        default_factory=overfitting.OverfittingParams
    )
    underfitting: underfitting.UnderfittingParams = field(
        default_factory=underfitting.UnderfittingParams
    )
    plateau: plateau.PlateauParams = field(default_factory=plateau.PlateauParams)
    lrrange: lrrange.LRRangeParams = field(default_factory=lrrange.LRRangeParams)
    with_trend: bool = True


@dataclass(frozen=True, slots=True)
class Analysis:
    """What the advisor says about a run at its last logged point.

    Attributes:
        run: the run's name.
        diagnosis: the one diagnosis.
        finding: the finding behind it (None for ``unknown``).
        findings: every detector's finding, in priority order.
        trend: the trend fitted to the current phase of the validation signal (for
            plotting; None with fewer than 4 points or when not requested).
        lr_range: the range-test reading, for an LR range test.
        points: validation points seen (NaN/inf included).
        last_step: the last validation step seen.
        stuck: the validation loss has made no progress since its first evaluation
            (``instability.stuck``).
        fits_training: the model fits its training data far better than the validation
            set (``underfitting.fits_training_data``).
        recent_level: where the validation loss is now, whatever its swings
            (``instability.recent_level``; NaN for a metric or too few points).
    """

    run: str
    diagnosis: Diagnosis
    finding: Finding | None
    findings: tuple[Finding, ...]
    trend: TrendFit | None
    lr_range: lrrange.LRRange | None
    points: int
    last_step: int
    stuck: bool = False
    fits_training: bool = False
    recent_level: float = math.nan


def analyze(rc: RunCurves, params: AnalysisParams | None = None) -> Analysis:
    """Analyse a run as it stands.

    Args:
        rc: the run's curves.
        params: detector parameters (defaults when None).

    Returns:
        The analysis; ``unknown`` when the run logs no validation signal.
    """
    view = view_of(rc)
    if view is None:
        # No validation signal; a range test may still log the training loss (fastai).
        got = lrrange.analyze_range(rc, (params or AnalysisParams()).lrrange)
        lr = rc.first(Role.LR)
        if got is None or lr is None:
            return Analysis(rc.run, Diagnosis.UNKNOWN, None, (), None, None, 0, 0)
        last = int(lr.step[-1])
        f = lrrange.finding_of(got, last)
        return Analysis(rc.run, Diagnosis.LR_RANGE_TEST, f, (f,), None, got, 0, last)
    return analyze_view(view, params or AnalysisParams())


def analyze_view(view: RunView, params: AnalysisParams) -> Analysis:
    """``analyze`` on an already cleaned view (the timeline walks prefixes of one view)."""
    # Logged values can be anything (1e308, inf, NaN); overflow in a residual is expected
    # there and handled by the detectors, so numpy's warnings are only noise.
    with np.errstate(all="ignore"):
        return _analyze_view(view, params)


def _analyze_view(view: RunView, params: AnalysisParams) -> Analysis:
    points = len(view.val)
    last = int(view.val.step[-1]) if points else 0
    if view.lr is not None:
        loss = view.val
        if int(loss.finite.sum()) < params.lrrange.min_points and view.train is not None:
            loss = view.train
        got = lrrange.read_range(view.lr, loss, view.tag, params.lrrange)
        if got is not None:
            f = lrrange.finding_of(got, last)
            return Analysis(view.run, Diagnosis.LR_RANGE_TEST, f, (f,), None, got, points, last)
    feat = features_of(view)
    found: list[Finding] = []
    inst = instability.detect_features(view, feat, params.instability)
    if inst is not None:
        found.append(inst)
    trend = None
    if feat.n >= 4 and params.with_trend:
        trend = underfitting.phase_fit(view, feat)
    if feat.n >= params.plateau.min_points:
        over = overfitting.detect_features(view, feat, params.overfitting)
        under = underfitting.detect_features(view, feat, params.underfitting, trend)
        healthy = plateau.detect_features(view, feat, params.plateau)
        found.extend(f for f in (over, under, healthy) if f is not None)
    finite = view.val.finite_part()[1]
    stuck = instability.stuck(view, finite, params.instability)
    fits = underfitting.fits_training_data(view, feat, params.underfitting.max_train_ratio)
    level = instability.recent_level(view, finite, params.instability)
    top = found[0] if found else None
    return Analysis(
        view.run,
        top.diagnosis if top else Diagnosis.UNKNOWN,
        top,
        tuple(found),
        trend,
        None,
        points,
        last,
        stuck,
        fits,
        level,
    )
