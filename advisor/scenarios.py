"""Labelled synthetic training runs for tuning and scoring the detectors.

Pure numpy with an explicit seed: ``suite("tune")`` (seed 0) and ``suite("holdout")``
(seed 1, other curve families and parameters; never used to tune thresholds) return the
same runs on every call. ``fixtures/scenarios/generate.py`` writes them to disk in every
log format the advisor reads.

Each run carries its label and ``visible_from``: the fraction of the run from which the
condition can be seen in the curve, by construction:

- healthy: the true curve is within 2% of its plateau (nothing to alert on, ever);
- underfitting: 12 evaluations, or 10% of the run if later. A healthy run's fast phase
  lasts at most 3 time constants of at most 4 evaluations (the modelling assumption that
  separates "still falling early" from "still falling, too slowly": a prefix of a healthy
  run looks like an underfitting run stretched in time);
- overfitting: the true rise above the minimum exceeds 2% of the level and 2 noise sds
  (the minimum, ``truth["min_frac"]``, is where the rise starts: the last point of the
  true curve within 1e-9 of its lowest value, since a fall that has flattened out to
  float precision would otherwise put it at the first of many equal values);
- instability: the first bad point (first NaN/inf; first evaluation after a divergence
  sets in; the second spike, since one spike that recovers is healthy; the sixth
  evaluation of an oscillation, i.e. three periods);
- LR range test: the eighth evaluation (enough rising LR values to recognise one).

Each run also carries the hyper-parameters its format stores with the logs
(``Scenario.hparams``, see ``PLANNED``): the planned length of training for HF, MLflow,
TensorBoard and plain-text runs, nothing for CSV and JSON Lines. ``run_curves()`` passes
them to the core and the generator writes them to the files, so both paths see the same.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field

import numpy as np

from advisor import scenario_shapes as sh
from advisor.model import F64
from advisor.model import I64
from advisor.model import Curve
from advisor.model import Diagnosis
from advisor.model import Direction
from advisor.model import HParamValue
from advisor.model import Role
from advisor.model import RunCurves
from advisor.model import TagRole

SUITES = {"tune": 0, "holdout": 1}
# The log formats a run is written in, in rotation (fixtures/scenarios/generate.py).
FORMATS = ("csv", "jsonl", "hf", "mlflow", "stdout", "tfevents")
# Formats whose natural x-axis is the epoch (one evaluation per epoch).
EPOCH_FORMATS = frozenset({"csv", "stdout"})
# Where each format stores the planned length of training, as real writers do: HF's
# trainer_state.json has ``max_steps`` and ``num_train_epochs``; an MLflow run's params
# and TensorBoard's hparams plugin hold what the user logged, typically ``epochs``
# (Keras autolog, ``hp.KerasCallback``); Keras prints ``Epoch k/N`` to stdout, which the
# text reader takes as ``epochs``. Keras CSV and JSON Lines have no place for it. Every
# run ends where it was planned to (the log is complete).
PLANNED = {
    "hf": ("max_steps", "num_train_epochs"),
    "mlflow": ("epochs",),
    "stdout": ("epochs",),
    "tfevents": ("epochs",),
}
_WALL0 = 1_764_000_000.0


@dataclass(frozen=True, slots=True)
class Scenario:
    """One labelled synthetic run.

    Attributes:
        name: the run's name, unique in its suite.
        label: the diagnosis at the end of the log.
        visible_from: fraction of the run from which the condition is visible.
        notes: how the run was made.
        fmt: the log format it is written in.
        step: step of each evaluation.
        epoch: epoch of each evaluation.
        val: validation loss (NaN where not logged as a loss: see ``val_metric``).
        val_metric: validation accuracy (maximise) instead of a loss, or None.
        train: training loss at each evaluation, or None.
        lr: learning rate at each evaluation, or None.
        truth: numbers behind the label (e.g. ``min_frac``, ``max_lr``).
        hparams: the hyper-parameters its format stores with the logs: the planned
            length of training, where the format has a place for it (see ``PLANNED``).
    """

    name: str
    label: Diagnosis
    visible_from: float
    notes: str
    fmt: str
    step: I64
    epoch: F64
    val: F64 | None
    val_metric: F64 | None
    train: F64 | None
    lr: F64 | None
    truth: dict[str, float] = field(default_factory=dict)
    hparams: dict[str, HParamValue] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Evaluations in the run."""
        return int(self.step.size)

    def wall_time(self) -> F64:
        """A fixed synthetic wall clock, 30 s per evaluation."""
        return _WALL0 + 30.0 * np.arange(self.n, dtype=np.float64)

    def run_curves(self) -> RunCurves:
        """The run as the core sees it."""
        wall = self.wall_time()
        curves: dict[str, Curve] = {}

        def add(tag: str, role: TagRole, value: F64 | None) -> None:
            if value is not None:
                curves[tag] = Curve(tag, role, self.step.copy(), wall.copy(), value.copy())

        add("val_loss", TagRole(Role.VAL_LOSS), self.val)
        add("val_accuracy", TagRole(Role.VAL_METRIC, Direction.MAX), self.val_metric)
        add("loss", TagRole(Role.TRAIN_LOSS), self.train)
        add("lr", TagRole(Role.LR), self.lr)
        add("epoch", TagRole(Role.EPOCH), self.epoch)
        return RunCurves(self.name, curves, dict(self.hparams))


def suite(name: str) -> list[Scenario]:
    """The labelled runs of a suite (``tune`` or ``holdout``), in a fixed order."""
    if name not in SUITES:
        raise ValueError(f"suite must be one of {sorted(SUITES)} but got {name!r}")
    rng = np.random.default_rng(SUITES[name])
    hold = name == "holdout"
    plan: list[tuple[str, int, Callable[[np.random.Generator, int, bool], sh.Shape]]] = [
        ("healthy", 10, sh.healthy),
        ("step_decay", 5, sh.step_decay),
        ("warmup", 5, sh.warmup),
        ("spike_recovers", 5, sh.recovering_spike),
        ("noisy_plateau", 5, sh.noisy_plateau),
        ("underfit", 14, sh.underfit),
        ("overfit", 16, sh.overfit),
        ("nan", 4, sh.nan),
        ("diverge", 5, sh.diverge),
        ("spikes", 4, sh.spikes),
        ("oscillate", 5, sh.oscillate),
        ("lr_range", 8, sh.lr_range),
    ]
    out: list[Scenario] = []
    for kind, count, make in plan:
        for k in range(count):
            i = len(out)
            fmt = FORMATS[i % len(FORMATS)]
            n = _length(rng, kind, hold)
            shape = make(rng, n, hold)
            out.append(_finish(rng, f"{kind}_{k:02d}", fmt, shape, index=i, hold=hold))
    return out


def _length(rng: np.random.Generator, kind: str, hold: bool) -> int:
    """Evaluations in a run: log-uniform, 6 to 500 (some kinds need more to exist)."""
    lo = {"underfit": 12, "overfit": 10, "oscillate": 20, "lr_range": 60}.get(kind, 6)
    hi = 300 if kind == "lr_range" else 500
    if hold:
        lo = max(lo, 8)
    return round(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _finish(
    rng: np.random.Generator, name: str, fmt: str, shape: sh.Shape, *, index: int, hold: bool
) -> Scenario:
    n = int(shape.val.size)
    per_eval = 1 if fmt in EPOCH_FORMATS else int(rng.choice([10, 50, 100, 250, 1000]))
    step = np.arange(n, dtype=np.int64) * per_eval + (0 if fmt in EPOCH_FORMATS else per_eval)
    epoch = np.arange(n, dtype=np.float64) + (0.0 if fmt in EPOCH_FORMATS else 1.0)
    # Scale-free checks: every run is multiplied by a random positive constant.
    scale = 10.0 ** rng.uniform(-1.0, 1.0)
    val = shape.val * scale
    train = shape.train * scale if shape.train is not None else None
    metric = None
    no_train = rng.uniform() < 0.2
    # A few runs log an accuracy and no validation loss (metric to maximise).
    if shape.label in (Diagnosis.HEALTHY, Diagnosis.OVERFITTING) and index % 7 == 3:
        metric = 1.0 - 0.9 * shape.val / (shape.val.max() * 1.05 if hold else shape.val[0] * 1.2)
        metric = np.where(np.isfinite(metric), np.clip(metric, 0.0, 1.0), metric)
        val_out: F64 | None = None
    else:
        val_out = _round(val)
    return Scenario(
        name=name,
        label=shape.label,
        visible_from=min(1.0, (shape.visible + 1) / n),
        notes=shape.notes + f"; x{scale:.3g}",
        fmt=fmt,
        step=step,
        epoch=epoch,
        val=val_out,
        val_metric=_round(metric) if metric is not None else None,
        train=None if (train is None or no_train) else _round(train),
        lr=_round(shape.lr),
        truth=shape.truth,
        hparams=_planned(fmt, step, epoch),
    )


def _planned(fmt: str, step: I64, epoch: F64) -> dict[str, HParamValue]:
    """The planned length of training in the names ``fmt`` stores it under (floats, as
    every loader returns numbers): one evaluation per epoch, so as many epochs as
    evaluations (``epoch`` counts from 0 in the epoch formats, from 1 in the others)."""
    value = {"max_steps": float(step[-1]), "num_train_epochs": float(epoch.size),
             "epochs": float(epoch.size)}  # fmt: skip
    return {name: value[name] for name in PLANNED.get(fmt, ())}


def _round(v: F64) -> F64:
    """Six significant digits, as most loggers print (keeps the fixtures small)."""
    out = np.array(v, dtype=np.float64)
    fin = np.isfinite(out) & (out != 0)
    mag = np.floor(np.log10(np.abs(out[fin])))
    out[fin] = np.round(out[fin] / 10.0**mag, 5) * 10.0**mag
    return out
