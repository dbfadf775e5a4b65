"""Replay a run as if live: the alerts the advisor would have raised, and when.

The walk visits the run's validation evaluations in logged (step) order and analyses
the prefix of every curve up to each one. Long runs are analysed on a grid of about
``max_analyses`` prefixes; wherever the raw diagnosis differs between two neighbouring
grid points, the interval is bisected down to adjacent evaluations, so the step at
which a diagnosis first appears is exact (a change that appears and vanishes inside an
interval whose two ends agree can be missed).

Alert lifecycle: a non-healthy diagnosis opens an alert once it has held for
``patience`` consecutive evaluations, or at once when its confidence reaches ``sure``
(instability findings, which confirm themselves, open at once); a change of severity
that holds as long updates it; ``resolve_patience`` consecutive evaluations without it
resolve it (evaluations that still fit it do not count: see ``_still_consistent``; an
oscillation alert without progress needs longer: ``_resolve_patience``). An alert's step
is the step at which the advisor would have said it.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from dataclasses import field

import numpy as np

from advisor.core.analysis import Analysis
from advisor.core.analysis import AnalysisParams
from advisor.core.analysis import analyze_view
from advisor.core.detectors import instability
from advisor.core.features import RunView
from advisor.core.features import view_of
from advisor.model import Alert
from advisor.model import AlertEvent
from advisor.model import Diagnosis
from advisor.model import Finding
from advisor.model import Role
from advisor.model import RunCurves
from advisor.model import RunSummary
from advisor.model import Severity

#: Detector ids used as alert rules until the rules engine lands.
RULES = {
    Diagnosis.OVERFITTING: "DET-OVERFIT",
    Diagnosis.UNDERFITTING: "DET-UNDERFIT",
    Diagnosis.INSTABILITY: "DET-INSTABILITY",
}


@dataclass(frozen=True, slots=True)
class ReplayParams:
    """How findings become alerts.

    Attributes:
        analysis: detector parameters.
        patience: evaluations an overfitting or underfitting finding must hold before
            its alert opens. 1: the detectors' own significance tests are the
            confirmation. Measured: 2 instead of 1 kept no healthy run free of alerts
            (60 synthetic, 166 real runs of the reference trainer's ``good`` and
            ``one-cycle`` presets, seeds 5-7 and 8-87: the same runs alert with both)
            and avoided no alert that later resolved on the problem runs of the three
            suites, while it cost one evaluation:
            overfitting within 15% of the run after the minimum 10 -> 11 of 16 (tune),
            8 -> 9 (holdout), underfitting by 30% 4 -> 5 of 14 (holdout).
        sure: with ``patience`` above 1, a finding at least this confident opens
            without waiting for it (on the tune suite no healthy prefix yields any
            such finding; the first findings of problem runs have confidence
            0.72-0.98, median 0.85).
        resolve_patience: evaluations without the diagnosis before its alert resolves.
        max_analyses: prefixes analysed on the coarse grid of a long run.
    """

    analysis: AnalysisParams = field(default_factory=lambda: AnalysisParams(with_trend=False))
    patience: int = 1
    sure: float = 0.8
    resolve_patience: int = 3
    max_analyses: int = 200

    def __post_init__(self) -> None:
        if self.patience < 1:
            raise ValueError(f"patience must be at least 1 but got {self.patience}")
        if self.max_analyses < 1:
            raise ValueError(f"max_analyses must be at least 1 but got {self.max_analyses}")


_Key = tuple[Diagnosis, Severity | None]


def _key(a: Analysis) -> _Key:
    if a.diagnosis in RULES and a.finding is not None:
        return a.diagnosis, a.finding.severity
    return Diagnosis.HEALTHY, None


def raw_timeline(
    view: RunView, params: ReplayParams, start: int = 0, before: Analysis | None = None
) -> list[Analysis]:
    """The analysis at every validation evaluation from index ``start`` on.

    A coarse grid of about ``max_analyses`` prefixes, refined by bisection wherever
    the raw diagnosis differs between two neighbouring grid points.

    Args:
        view: the run so far.
        params: the grid size and the detectors' parameters.
        start: the first evaluation wanted.
        before: the analysis of evaluation ``start - 1``, when the caller has it (the
            live pipeline keeps its last one): the grid's left end, so that a batch of
            new evaluations whose diagnosis did not change costs one analysis (the last
            one) instead of one at each end.
    """
    steps = view.val.step
    n = int(steps.size)
    if start >= n:
        return []
    done: dict[int, Analysis] = {}

    def at(i: int) -> Analysis:
        if i not in done:
            done[i] = analyze_view(view.upto(int(steps[i])), params.analysis)
        return done[i]

    stride = max(1, math.ceil((n - start) / params.max_analyses))
    first = start
    if before is not None and start > 0:
        first = start - 1
        done[first] = before
    grid = [*range(first, n, stride)]
    if grid[-1] != n - 1:
        grid.append(n - 1)
    # Where two neighbouring grid points differ, bisect down to adjacent evaluations:
    # about log2(gap) analyses per change instead of one per evaluation in the gap, on
    # the same assumption the grid makes (a diagnosis equal at both ends of an interval
    # holds inside it).
    pending = [(a, b) for a, b in itertools.pairwise(grid)]
    while pending:
        a, b = pending.pop()
        if _key(at(a)) != _key(at(b)) and b - a > 1:
            mid = (a + b) // 2
            pending += [(a, mid), (mid, b)]
    out: list[Analysis] = []
    last = at(first)
    for i in range(start, n):
        last = done.get(i, last)
        out.append(last)
    return out


def replay_run(
    rc: RunCurves, params: ReplayParams | None = None
) -> tuple[list[Alert], RunSummary]:
    """Walk a run's validation evaluations in order and return its alerts and summary.

    Args:
        rc: the whole run.
        params: alerting parameters (defaults when None).

    Returns:
        The alerts in order, and the summary at the end of the log (see
        ``end_diagnosis``).
    """
    params = params or ReplayParams()
    view = view_of(rc)
    if view is None or len(view.val) == 0:
        return [], RunSummary(rc.run, Diagnosis.UNKNOWN, 0, 0, {})
    timeline = raw_timeline(view, params)
    alerts, hold = _alerts(rc, timeline, params)
    first: dict[str, int] = {}
    for al in alerts:
        if al.event is AlertEvent.OPENED:
            first.setdefault(al.finding.diagnosis.value, al.finding.step)
    end = timeline[-1]
    diagnosis = end_diagnosis(hold, end)
    return alerts, RunSummary(rc.run, diagnosis, end.points, end.last_step, first)


def end_diagnosis(hold: Hold, last: Analysis) -> Diagnosis:
    """The run's diagnosis at the end of its log: the alert still open, else the last
    analysis.

    An alert stays open through evaluations that do not contradict it (an underfitting
    loss "still converging", a few evaluations without the finding); a summary that said
    "healthy" beside an open underfitting alert would contradict the advisor's own alert
    (the reference trainer's ``lr-too-low`` seeds 9, 17, 21 and 22: alert open from epoch
    5-7 to the end, loss still falling 9-11% over the last third, summary "healthy").
    """
    return hold.key[0] if hold.key is not None else last.diagnosis


@dataclass(frozen=True, slots=True)
class Hold:
    """The debounced diagnosis of one run, advanced one evaluation at a time.

    Attributes:
        key: the held (diagnosis, severity), or None when nothing is held.
        finding: the finding that opened or last updated what is held.
        streak: consecutive evaluations with the same raw key as the last one.
        streak_key: that raw key.
        clear: consecutive evaluations without the held diagnosis.
        level: for a held oscillation, the validation loss's ``Analysis.recent_level``
            when it opened or last updated (NaN otherwise).
    """

    key: _Key | None = None
    finding: Finding | None = None
    streak: int = 0
    streak_key: _Key | None = None
    clear: int = 0
    level: float = math.nan


def hold_step(
    h: Hold, a: Analysis, params: ReplayParams
) -> tuple[Hold, list[tuple[AlertEvent, Finding]]]:
    """Advance the held diagnosis by one evaluation's analysis.

    Returns:
        The new hold, and the lifecycle events this evaluation causes (at most a
        resolution and an opening, or one update).
    """
    key = _key(a)
    streak = h.streak + 1 if key == h.streak_key else 1
    alerting = key[0] in RULES and a.finding is not None
    ready = alerting and _ready(key, streak, params, a.finding.confidence if a.finding else 0.0)
    held, held_finding, clear, level = h.key, h.finding, h.clear, h.level
    events: list[tuple[AlertEvent, Finding]] = []
    if held is not None and held_finding is not None:
        if key[0] == held[0]:
            clear = 0
        elif not _still_consistent(held[0], a):
            clear += 1
        if clear >= _resolve_patience(a, level, params) or (
            alerting and key[0] != held[0] and ready
        ):
            events.append((AlertEvent.RESOLVED, _as_of(held_finding, a)))
            held, held_finding, clear, level = None, None, 0, math.nan
        elif alerting and key != held and ready:
            assert a.finding is not None
            events.append((AlertEvent.UPDATED, a.finding))
            held, held_finding, level = key, a.finding, _level_of(a)
    if held is None and alerting and ready:
        assert a.finding is not None
        events.append((AlertEvent.OPENED, a.finding))
        held, held_finding, clear, level = key, a.finding, 0, _level_of(a)
    return Hold(held, held_finding, streak, key, clear, level), events


def _level_of(a: Analysis) -> float:
    """What an alert opened or updated on ``a`` keeps for ``_resolve_patience``."""
    osc = a.finding is not None and instability.is_oscillation(a.finding)
    return a.recent_level if osc else math.nan


def _alerts(
    rc: RunCurves, timeline: list[Analysis], params: ReplayParams
) -> tuple[list[Alert], Hold]:
    alerts: list[Alert] = []
    h = Hold()
    for a in timeline:
        h, events = hold_step(h, a, params)
        alerts.extend(
            Alert(event, rc.run, RULES[f.diagnosis], f, *when_of(rc, f.step))
            for event, f in events
        )
    return alerts, h


def when_of(rc: RunCurves, step: int) -> tuple[float | None, float | None]:
    """(epoch, wall time) at ``step``, from the logged epoch and validation curves."""
    epoch = rc.first(Role.EPOCH)
    wall = rc.first(Role.VAL_LOSS) or rc.first(Role.VAL_METRIC)
    ep = wt = None
    if epoch is not None and len(epoch):
        ep = float(np.interp(step, epoch.step, epoch.value))
    if wall is not None and len(wall):
        i = int(np.searchsorted(wall.step, step, side="right")) - 1
        w = float(wall.wall_time[max(i, 0)])
        wt = w if math.isfinite(w) else None
    return ep, wt


def _resolve_patience(a: Analysis, level: float, params: ReplayParams) -> int:
    """Evaluations without the held diagnosis that resolve its alert.

    ``resolve_patience``; but an oscillation alert (``level`` known) while the loss has
    made no progress since it opened (``instability.no_progress_since``: the test of
    ``stuck`` against that level instead of the first value) needs a whole oscillation
    window (``osc_window`` evaluations). The oscillation test judges a window of
    evaluations; a few evaluations after it fails, that window is still mostly the same
    swings, a little under a threshold, not a run that calmed down. A run that bounces
    for good resolved and opened again, up to 4 times in one run of ``lr-too-high``
    evaluated 5 times per epoch (9-39% accuracy; the swings paused for 1-10
    evaluations), and once in 4 of the reference trainer's ``lr-too-high`` runs of seeds
    8-47. A loss that fell since, by the same measure, has recovered.
    """
    inst = params.analysis.instability
    if instability.no_progress_since(a.recent_level, level, inst):
        return max(params.resolve_patience, inst.osc_window)
    return params.resolve_patience


def _still_consistent(held: Diagnosis, a: Analysis) -> bool:
    """Does an evaluation without the held diagnosis still fit it?

    A validation loss "still converging" (healthy, no plateau yet) is what underfitting
    looks like while its test lacks confidence: between the planned-length test (early
    in the run) and the count-based test (after its time prior) the reference trainer's
    ``lr-too-low`` runs were healthy for 10 evaluations, so the alert resolved and opened
    again. Only a plateau (or another diagnosis) counts towards resolving underfitting,
    a loss that got worse over the plateau detector's window (rising is not "still
    improving"), and a model that fits its training data (``Analysis.fits_training``):
    its loss still creeping down is what keeps an underfitting alert from opening, so it
    cannot keep one open either (the reference trainer's ``good`` preset at LR 0.1 with
    cosine annealing, seed 17: alert at 45% of the run, then 17 epochs within 4% of 0.142
    at a training loss of 0.006, and the run ended "underfitting" at 95.7% accuracy).

    Instability resolves when the run recovers, not when its swings pause: while the
    validation loss has made no progress since its first evaluation
    (``instability.stuck``) the instability still stands. The reference
    trainer's ``lr-too-high`` seeds 34, 36 and 39 bounced at 20-50% accuracy for 40
    epochs; their alerts resolved between swings and the runs ended "healthy" (see also
    ``_resolve_patience``).
    """
    if held is Diagnosis.UNDERFITTING:
        return (
            a.diagnosis is Diagnosis.HEALTHY
            and a.finding is not None
            and a.finding.evidence.get("plateau") == 0.0
            and a.finding.evidence.get("recent_change_pct", 0.0) < 0.0
            and not a.fits_training
        )
    if held is Diagnosis.INSTABILITY:
        return a.stuck
    return False


def _ready(key: _Key, streak: int, params: ReplayParams, confidence: float = 0.0) -> bool:
    # Instability findings carry their own confirmation (a jump must persist to the next
    # point, a spike must be the second one, an oscillation fills a window), and waiting
    # longer would miss "at the first bad point" (issue 3).
    return (
        key[1] is Severity.CRITICAL
        or key[0] is Diagnosis.INSTABILITY
        or streak >= params.patience
        or confidence >= params.sure
    )


def _as_of(finding: Finding, now: Analysis) -> Finding:
    """The held finding, restated at the step where it went away."""
    return Finding(
        finding.diagnosis,
        finding.severity,
        finding.confidence,
        now.last_step,
        f"resolved: {finding.message}",
        finding.evidence,
    )
