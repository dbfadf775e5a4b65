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
(``Scenario.hparams``, see ``PLANNED``): the planned length of training for HF, MLflow
and TensorBoard runs, nothing for CSV, JSON Lines and plain text. ``run_curves()`` passes
them to the core and the generator writes them to the files, so both paths see the same.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field

import numpy as np

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
# (Keras autolog, ``hp.KerasCallback``). Keras CSV, plain text and JSON Lines have no
# place for it. Every run ends where it was planned to (the log is complete).
PLANNED = {
    "hf": ("max_steps", "num_train_epochs"),
    "mlflow": ("epochs",),
    "tfevents": ("epochs",),
}
# The longest fast phase of a healthy run, in evaluations (see the module docstring).
HEALTHY_TAU_CAP = 4.0
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


@dataclass(frozen=True, slots=True)
class _Shape:
    """A noise-free run before noise, formats and names."""

    label: Diagnosis
    visible: int
    notes: str
    val: F64
    train: F64 | None
    lr: F64
    truth: dict[str, float]


def suite(name: str) -> list[Scenario]:
    """The labelled runs of a suite (``tune`` or ``holdout``), in a fixed order."""
    if name not in SUITES:
        raise ValueError(f"suite must be one of {sorted(SUITES)} but got {name!r}")
    rng = np.random.default_rng(SUITES[name])
    hold = name == "holdout"
    plan: list[tuple[str, int, Callable[[np.random.Generator, int, bool], _Shape]]] = [
        ("healthy", 10, _healthy),
        ("step_decay", 5, _step_decay),
        ("warmup", 5, _warmup),
        ("spike_recovers", 5, _recovering_spike),
        ("noisy_plateau", 5, _noisy_plateau),
        ("underfit", 14, _underfit),
        ("overfit", 16, _overfit),
        ("nan", 4, _nan),
        ("diverge", 5, _diverge),
        ("spikes", 4, _spikes),
        ("oscillate", 5, _oscillate),
        ("lr_range", 8, _lr_range),
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
    rng: np.random.Generator, name: str, fmt: str, shape: _Shape, *, index: int, hold: bool
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
    every loader returns numbers)."""
    value = {"max_steps": float(step[-1]), "num_train_epochs": float(epoch[-1]),
             "epochs": float(epoch[-1])}  # fmt: skip
    return {name: value[name] for name in PLANNED.get(fmt, ())}


def _round(v: F64) -> F64:
    """Six significant digits, as most loggers print (keeps the fixtures small)."""
    out = np.array(v, dtype=np.float64)
    fin = np.isfinite(out) & (out != 0)
    mag = np.floor(np.log10(np.abs(out[fin])))
    out[fin] = np.round(out[fin] / 10.0**mag, 5) * 10.0**mag
    return out


# --- building blocks -------------------------------------------------------------------


def _decay(rng: np.random.Generator, n: int, hold: bool, tau_evals: float) -> F64:
    """A saturating fall from ~L0 to L_inf over evaluations 1..n (true curve)."""
    l0 = rng.uniform(1.5, 3.0)
    linf = l0 * rng.uniform(0.15, 0.5)
    i = np.arange(1, n + 1, dtype=np.float64)
    if hold:
        # Holdout: a power-law approach, c in [1.5, 3], instead of an exponential.
        c = rng.uniform(1.5, 3.0)
        out: F64 = linf + (l0 - linf) * (1.0 + i / tau_evals) ** (-c)
        return out
    out = linf + (l0 - linf) * np.exp(-i / tau_evals)
    return out


def _healthy_tau(rng: np.random.Generator, n: int) -> float:
    return float(max(0.5, min(HEALTHY_TAU_CAP, rng.uniform(0.03, 0.12) * n)))


def _noise(rng: np.random.Generator, true: F64, rel: float, hold: bool) -> F64:
    """Noise proportional to the current value (heteroscedastic, like real losses)."""
    if hold:
        z = rng.standard_t(6, true.size) / math.sqrt(6.0 / 4.0)
    else:
        z = rng.standard_normal(true.size)
    out: F64 = true * (1.0 + rel * z)
    return out


def _train_of(rng: np.random.Generator, val: F64, gap: float, keep_falling: bool) -> F64:
    """A training loss below the validation loss; optionally still falling at the end."""
    n = val.size
    base = np.minimum.accumulate(val) * (1.0 - gap)
    if keep_falling:
        t = np.arange(n, dtype=np.float64) / max(n - 1, 1)
        base = base * (1.0 - 0.5 * t**1.2)
    out: F64 = base * (1.0 + 0.005 * rng.standard_normal(n))
    return out


def _const_lr(rng: np.random.Generator, n: int) -> F64:
    return np.full(n, 10.0 ** rng.uniform(-4, -1))


def _plateau_visible(true: F64) -> int:
    linf = float(true[-1])
    idx = np.nonzero(np.abs(true - linf) <= 0.02 * abs(linf))[0]
    return int(idx[0]) if idx.size else true.size - 1


def _noisy(rng: np.random.Generator, hold: bool) -> float:
    return float(rng.uniform(0.003, 0.02 if not hold else 0.025))


# --- healthy ---------------------------------------------------------------------------


def _healthy(rng: np.random.Generator, n: int, hold: bool) -> _Shape:
    tau = _healthy_tau(rng, n)
    true = _decay(rng, n, hold, tau)
    rel = _noisy(rng, hold)
    val = _noise(rng, true, rel, hold)
    return _Shape(
        Diagnosis.HEALTHY,
        _plateau_visible(true),
        f"fast fall (tau {tau:.1f} evals) then flat; noise {rel:.3f}",
        val,
        _train_of(rng, true, rng.uniform(0.05, 0.3), False),
        _const_lr(rng, n),
        {"plateau_frac": (_plateau_visible(true) + 1) / n},
    )


def _step_decay(rng: np.random.Generator, n: int, hold: bool) -> _Shape:
    n = max(n, 12)
    tau = _healthy_tau(rng, n)
    true = _decay(rng, n, hold, tau)
    at = int(rng.uniform(0.5, 0.8) * n)
    drop = rng.uniform(0.1, 0.3) * float(true[at])
    k = np.arange(n - at, dtype=np.float64)
    true[at:] -= drop * (1.0 - np.exp(-(k + 1) / rng.uniform(0.3, 1.5)))
    lr = _const_lr(rng, n)
    lr[at:] /= 10.0
    rel = _noisy(rng, hold)
    return _Shape(
        Diagnosis.HEALTHY,
        _plateau_visible(true),
        f"LR step decay /10 at eval {at}: loss drops {drop / true[at - 1]:.0%} then flat",
        _noise(rng, true, rel, hold),
        _train_of(rng, true, rng.uniform(0.05, 0.3), False),
        lr,
        {"decay_frac": at / n},
    )


def _warmup(rng: np.random.Generator, n: int, hold: bool) -> _Shape:
    n = max(n, 12)
    w = max(2, int(rng.uniform(0.05, 0.12) * n))
    tau = _healthy_tau(rng, n)
    fall = _decay(rng, n - w, hold, tau)
    # During warm-up the loss stays near its start, with a small bump (up to 5%).
    bump = fall[0] * (1.0 + rng.uniform(0.0, 0.05) * np.sin(np.linspace(0, np.pi, w)))
    true = np.concatenate([bump, fall])
    lr_max = 10.0 ** rng.uniform(-4, -1)
    lr = np.concatenate([lr_max * np.arange(1, w + 1) / w, np.full(n - w, lr_max)])
    rel = _noisy(rng, hold)
    return _Shape(
        Diagnosis.HEALTHY,
        _plateau_visible(true),
        f"linear LR warm-up over {w} evals, then fast fall and flat",
        _noise(rng, true, rel, hold),
        _train_of(rng, true, rng.uniform(0.05, 0.3), False),
        lr,
        {"warmup_frac": w / n},
    )


def _recovering_spike(rng: np.random.Generator, n: int, hold: bool) -> _Shape:
    n = max(n, 8)
    shape = _healthy(rng, n, hold)
    val = shape.val.copy()
    at = int(rng.uniform(0.1, 0.4) * n) + 1
    height = rng.uniform(0.5, 1.5)
    val[at] *= 1.0 + height
    return _Shape(
        Diagnosis.HEALTHY,
        shape.visible,
        f"one spike of +{height:.0%} at eval {at}, recovered at the next",
        val,
        shape.train,
        shape.lr,
        shape.truth | {"spike_frac": at / n},
    )


def _noisy_plateau(rng: np.random.Generator, n: int, hold: bool) -> _Shape:
    tau = _healthy_tau(rng, n)
    true = _decay(rng, n, hold, tau)
    rel = float(rng.uniform(0.03, 0.05))
    return _Shape(
        Diagnosis.HEALTHY,
        _plateau_visible(true),
        f"noisy plateau, noise {rel:.3f} of the level",
        _noise(rng, true, rel, hold),
        _train_of(rng, true, rng.uniform(0.05, 0.3), False),
        _const_lr(rng, n),
        {},
    )


# --- underfitting ----------------------------------------------------------------------


def _underfit(rng: np.random.Generator, n: int, hold: bool) -> _Shape:
    l0 = rng.uniform(1.5, 3.0)
    linf = l0 * rng.uniform(0.1, 0.4)
    t = np.arange(1, n + 1, dtype=np.float64) / n
    tau = rng.uniform(0.7, 2.5)
    true = linf + (l0 - linf) * np.exp(-t / tau)
    note = f"slow exponential fall, tau {tau:.2f} of the run"
    if hold:
        # Holdout: a short fast drop (10% of the way) in the first evaluations, then slow.
        true = true - 0.1 * (l0 - linf) * (1.0 - np.exp(-np.arange(n) / 1.5))
        note += ", after a short fast drop"
    elif rng.uniform() < 0.5:
        # Tune: half the runs start with a fast drop (5-20% of the way) within ~1 eval.
        frac = rng.uniform(0.05, 0.2)
        true = true - frac * (l0 - linf) * (1.0 - np.exp(-np.arange(n) / 1.0))
        note += f", after a fast drop of {frac:.0%}"
    rel = _noisy(rng, hold)
    visible = max(int(3 * HEALTHY_TAU_CAP), int(0.1 * n))
    return _Shape(
        Diagnosis.UNDERFITTING,
        min(visible, n - 1),
        note + f"; LR too low; noise {rel:.3f}",
        _noise(rng, true, rel, hold),
        _train_of(rng, true, rng.uniform(0.0, 0.08), False),
        _const_lr(rng, n) / 30.0,
        {"tau_frac": tau},
    )


# --- overfitting -----------------------------------------------------------------------


def _overfit(rng: np.random.Generator, n: int, hold: bool) -> _Shape:
    tau = _healthy_tau(rng, n)
    base = _decay(rng, n, hold, tau)
    t = np.arange(1, n + 1, dtype=np.float64) / n
    t_min = rng.uniform(0.25, 0.6)
    rise = rng.uniform(0.15, 0.6)
    power = rng.choice([1.0, 1.5]) if not hold else rng.choice([0.7, 1.0, 2.0])
    linf = float(base[-1])
    true = base + rise * linf * np.clip((t - t_min) / (1.0 - t_min), 0.0, None) ** power
    # The minimum is where the rise starts: when the fall has flattened out to float
    # precision before ``t_min``, argmin would pick the first of equal values instead.
    m = int(np.nonzero(true - true.min() <= 1e-9 * abs(true.min()))[0][-1])
    rel = _noisy(rng, hold)
    up = true - true[m]
    seen = np.nonzero((np.arange(n) > m) & (up > max(0.02 * linf, 2.0 * rel * linf)))[0]
    visible = int(seen[0]) if seen.size else n - 1
    return _Shape(
        Diagnosis.OVERFITTING,
        visible,
        f"minimum at {m / n:.0%} of the run, then +{rise:.0%} by the end (power {power}); "
        f"training loss keeps falling; noise {rel:.3f}",
        _noise(rng, true, rel, hold),
        _train_of(rng, base, rng.uniform(0.1, 0.4), True),
        _const_lr(rng, n),
        {"min_frac": (m + 1) / n, "min_index": float(m)},
    )


# --- instability -----------------------------------------------------------------------


def _nan(rng: np.random.Generator, n: int, hold: bool) -> _Shape:
    shape = _healthy(rng, n, hold)
    at = min(n - 1, int(rng.uniform(0.3, 0.9) * n))
    val = shape.val.copy()
    bad = np.nan if rng.uniform() < 0.7 else np.inf
    val[at:] = bad
    train = shape.train.copy() if shape.train is not None else None
    if train is not None:
        train[at:] = bad
    return _Shape(
        Diagnosis.INSTABILITY,
        at,
        f"loss becomes {bad} at eval {at}",
        val,
        train,
        shape.lr,
        {"first_bad": float(at)},
    )


def _diverge(rng: np.random.Generator, n: int, hold: bool) -> _Shape:
    n = max(n, 8)
    tau = _healthy_tau(rng, n)
    true = _decay(rng, n, hold, tau)
    at = min(n - 2, max(3, int(rng.uniform(0.3, 0.8) * n)))
    growth = rng.uniform(1.3, 2.0)
    k = np.arange(1, n - at + 1, dtype=np.float64)
    true[at:] = true[at - 1] * np.minimum(growth**k, 1e3)
    rel = _noisy(rng, hold)
    return _Shape(
        Diagnosis.INSTABILITY,
        at,
        f"diverges from eval {at}, x{growth:.2f} per eval",
        _noise(rng, true, rel, hold),
        _train_of(rng, true, 0.1, False) * np.concatenate([np.ones(at), growth**k]),
        _const_lr(rng, n) * 10.0,
        {"first_bad": float(at)},
    )


def _spikes(rng: np.random.Generator, n: int, hold: bool) -> _Shape:
    n = max(n, 12)
    shape = _healthy(rng, n, hold)
    val = shape.val.copy()
    count = int(rng.integers(3, 7))
    where = np.sort(
        rng.choice(np.arange(max(2, int(0.15 * n)), n), size=min(count, n // 3), replace=False)
    )
    # Keep spikes apart so that each recovers before the next.
    where = where[np.concatenate([[True], np.diff(where) > 1])]
    val[where] *= 1.0 + rng.uniform(0.6, 2.0, where.size)
    second = int(where[1]) if where.size > 1 else int(where[0])
    return _Shape(
        Diagnosis.INSTABILITY,
        second,
        f"{where.size} loss spikes from eval {int(where[0])}",
        val,
        shape.train,
        shape.lr * 10.0,
        {"first_bad": float(second)},
    )


def _oscillate(rng: np.random.Generator, n: int, hold: bool) -> _Shape:
    tau = _healthy_tau(rng, n)
    true = _decay(rng, n, hold, tau)
    at = int(rng.uniform(0.2, 0.6) * n)
    amp = rng.uniform(0.15, 0.4)
    period = 2 if not hold else int(rng.choice([2, 3]))
    k = np.arange(n - at)
    wave = np.where(k % period == 0, 1.0, -1.0) if period == 2 else np.cos(2 * np.pi * k / 3)
    true[at:] *= 1.0 + amp * wave
    rel = _noisy(rng, hold)
    return _Shape(
        Diagnosis.INSTABILITY,
        min(n - 1, at + 6),
        f"oscillates by +-{amp:.0%} (period {period}) from eval {at}",
        _noise(rng, true, rel, hold),
        _train_of(rng, true, 0.1, False),
        _const_lr(rng, n) * 10.0,
        {"first_bad": float(min(n - 1, at + 6))},
    )


# --- LR range test ---------------------------------------------------------------------


def _lr_range(rng: np.random.Generator, n: int, hold: bool) -> _Shape:
    linear = rng.uniform() < (0.25 if not hold else 0.6)
    if linear:
        lo, hi = 10.0 ** rng.uniform(-5, -3), 10.0 ** rng.uniform(-1, 0.5)
        lr = np.linspace(lo, hi, n)
    else:
        lo, hi = 10.0 ** rng.uniform(-7, -5), 10.0 ** rng.uniform(0, 1)
        lr = np.geomspace(lo, hi, n)
    u = np.log10(lr)
    u0, u1 = float(u[0]), float(u[-1])
    # Loss against log LR: flat, a fall centred at c, then a blow-up past b.
    c = u0 + (u1 - u0) * rng.uniform(0.35, 0.55)
    b = c + (u1 - u0) * rng.uniform(0.15, 0.3)
    width = (u1 - u0) * rng.uniform(0.04, 0.08)
    l0 = rng.uniform(2.0, 3.0)
    fall = l0 * rng.uniform(0.5, 0.8)
    grow = rng.uniform(2.0, 4.0) / width

    def curve(x: F64) -> F64:
        out: F64 = (
            l0
            - fall / (1.0 + np.exp(-(x - c) / width))
            + 0.05 * l0 * np.expm1(np.clip(grow * (x - b), None, 50.0)).clip(0.0, None)
        )
        return out

    true = curve(u)
    fine = np.linspace(u0, u1, 20001)
    best = float(10.0 ** fine[int(np.argmin(curve(fine)))])
    rel = _noisy(rng, hold) + 0.01
    val = _noise(rng, true, rel, hold)
    return _Shape(
        Diagnosis.LR_RANGE_TEST,
        7,
        f"{'linear' if linear else 'exponential'} LR range test {lo:.2g} -> {hi:.2g}; "
        f"loss minimum at LR {best:.3g}",
        val,
        val * rng.uniform(0.9, 1.0),
        lr,
        {"max_lr": best},
    )
