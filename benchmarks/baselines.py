"""Baselines for ``diagnosis.py``: other tools' rules, implemented from their documented
defaults, run on the same labelled runs as the advisor.

How a trigger maps to a diagnosis (silence is ``healthy`` for all):

- Keras ``EarlyStopping(monitor="val_loss", patience=0 | 10, min_delta=0)``: the wait
  counter grows each epoch and resets on an improvement; stop when wait >= patience
  (after the first epoch). A stop means "the validation loss stopped improving", the
  callback's stated purpose against overfitting: ``overfitting``; a stop on a NaN/inf
  value (NaN never improves): ``instability``.
- Lightning ``EarlyStopping(monitor="val_loss", patience=3, check_finite=True)``: stops at
  once on NaN/inf (``instability``), otherwise like Keras (``overfitting``).
- SageMaker Debugger ``Overfit`` (start_step 0, patience 1, ratio_threshold 0.1): triggers
  when (val - train) / train > 0.1 for ``patience`` evaluations: ``overfitting``. Needs a
  training loss; silent without one.
- SageMaker Debugger ``LossNotDecreasing`` (num_steps 10, diff_percent 0.1,
  increase_threshold_percent 5): every 10 evaluations, compares the loss with the one 10
  evaluations before; triggers when it rose by more than 5% (``overfitting``) or fell by
  less than 0.1% (a stall: ``underfitting``, the rule's stated purpose of catching
  training that makes no progress).
- NNI ``MedianstopAssessor`` (start_step 0): stops a run when its best value so far is
  worse than the median of the other runs' running averages at the same point:
  ``underfitting`` (it learns slower than its peers). NNI compares trials of one task;
  the suite's runs have random scales, so each run is divided by its first value, and
  "the same point" is the same fraction of the run. This is the idea, adapted.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from advisor.core import series as sr
from advisor.model import Diagnosis
from advisor.model import Role
from advisor.model import RunCurves


@dataclass(frozen=True)
class Case:
    """One labelled run and its curves."""

    name: str
    label: Diagnosis
    visible_from: float
    truth: dict[str, float]
    rc: RunCurves


@dataclass(frozen=True)
class Outcome:
    """What one method said about one run.

    Attributes:
        diagnosis: at the end of the log.
        alerts: (evaluation index, diagnosis) of every alert opened, in order.
        n: evaluations in the run.
    """

    diagnosis: Diagnosis
    alerts: tuple[tuple[int, Diagnosis], ...]
    n: int

    def first(self, d: Diagnosis) -> float | None:
        """Fraction of the run at which an alert of diagnosis ``d`` first opened."""
        for i, got in self.alerts:
            if got is d:
                return (i + 1) / self.n
        return None


def monitored(rc: RunCurves) -> tuple[np.ndarray, np.ndarray]:
    """Steps and oriented values (lower is better) of the monitored validation series."""
    c = rc.first(Role.VAL_LOSS) or rc.first(Role.VAL_METRIC)
    assert c is not None
    ser = sr.oriented(sr.from_curve(c), c.role.direction)
    return ser.step, ser.value


def _train_at(rc: RunCurves, steps: np.ndarray) -> np.ndarray | None:
    c = rc.first(Role.TRAIN_LOSS)
    if c is None or rc.first(Role.VAL_LOSS) is None:
        return None
    ser = sr.from_curve(c)
    out: np.ndarray = np.interp(steps.astype(float), ser.step.astype(float), ser.value)
    return out


def _stop(index: int, diagnosis: Diagnosis, n: int) -> Outcome:
    return Outcome(diagnosis, ((index, diagnosis),), n)


def keras(patience: int) -> Callable[[Case], Outcome]:
    def run(case: Case) -> Outcome:
        _, v = monitored(case.rc)
        best, wait = math.inf, 0
        for i, cur in enumerate(v):
            wait += 1
            if cur < best:  # NaN never improves
                best, wait = float(cur), 0
                continue
            if wait >= patience and i > 0:
                d = Diagnosis.INSTABILITY if not math.isfinite(cur) else Diagnosis.OVERFITTING
                return _stop(i, d, v.size)
        return Outcome(Diagnosis.HEALTHY, (), v.size)

    return run


def lightning(case: Case, patience: int = 3) -> Outcome:
    _, v = monitored(case.rc)
    best, wait = math.inf, 0
    for i, cur in enumerate(v):
        if not math.isfinite(cur):
            return _stop(i, Diagnosis.INSTABILITY, v.size)
        if cur < best:
            best, wait = float(cur), 0
        else:
            wait += 1
            if wait >= patience:
                return _stop(i, Diagnosis.OVERFITTING, v.size)
    return Outcome(Diagnosis.HEALTHY, (), v.size)


def sm_overfit(case: Case, ratio_threshold: float = 0.1, patience: int = 1) -> Outcome:
    steps, v = monitored(case.rc)
    train = _train_at(case.rc, steps)
    if train is None:
        return Outcome(Diagnosis.HEALTHY, (), v.size)
    count = 0
    for i, (va, tr) in enumerate(zip(v, train, strict=True)):
        ratio = (va - tr) / tr if tr != 0 else math.nan
        count = count + 1 if ratio > ratio_threshold else 0
        if count >= patience:
            return _stop(i, Diagnosis.OVERFITTING, v.size)
    return Outcome(Diagnosis.HEALTHY, (), v.size)


def sm_loss_not_decreasing(
    case: Case, num_steps: int = 10, diff_percent: float = 0.1, increase_pct: float = 5.0
) -> Outcome:
    _, v = monitored(case.rc)
    for i in range(num_steps, v.size, num_steps):
        prev, cur = v[i - num_steps], v[i]
        if not (math.isfinite(prev) and math.isfinite(cur)):
            continue
        if cur > prev * (1 + increase_pct / 100):
            return _stop(i, Diagnosis.OVERFITTING, v.size)
        if (prev - cur) / prev * 100 < diff_percent:
            return _stop(i, Diagnosis.UNDERFITTING, v.size)
    return Outcome(Diagnosis.HEALTHY, (), v.size)


def nni_median(cases: list[Case]) -> Callable[[Case], Outcome]:
    """Median stop against the other runs of the suite (see the module docstring)."""
    norm: dict[str, np.ndarray] = {}
    for c in cases:
        _, v = monitored(c.rc)
        fin = v[np.isfinite(v)]
        first = float(fin[0]) if fin.size else 1.0
        norm[c.name] = np.where(np.isfinite(v), v, np.nan) / first
    running = {
        k: np.nancumsum(v) / np.maximum(np.cumsum(np.isfinite(v)), 1) for k, v in norm.items()
    }

    def run(case: Case) -> Outcome:
        v = norm[case.name]
        n = v.size
        best = np.fmin.accumulate(np.where(np.isfinite(v), v, np.inf))
        others = [r for k, r in running.items() if k != case.name]
        for i in range(n):
            f = (i + 1) / n
            med = float(np.median([r[max(0, math.ceil(f * r.size) - 1)] for r in others]))
            if best[i] > med:
                return _stop(i, Diagnosis.UNDERFITTING, n)
        return Outcome(Diagnosis.HEALTHY, (), n)

    return run
