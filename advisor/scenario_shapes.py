"""The curve shapes of the labelled suites: each a run's noisy curves with its label and
the evaluation from which the condition is visible (``scenarios`` adds the log format,
a scale and a name; its docstring states how each label's ``visible`` is set).

``hold`` selects the holdout suite's families and parameters (power-law falls, heavier
noise tails) instead of the tune suite's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from advisor.model import F64
from advisor.model import Diagnosis

# The longest fast phase of a healthy run, in evaluations (see ``scenarios``' docstring).
HEALTHY_TAU_CAP = 4.0


@dataclass(frozen=True, slots=True)
class Shape:
    """A run's curves before its log format, scale and name."""

    label: Diagnosis
    visible: int
    notes: str
    val: F64
    train: F64 | None
    lr: F64
    truth: dict[str, float]


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


def healthy(rng: np.random.Generator, n: int, hold: bool) -> Shape:
    tau = _healthy_tau(rng, n)
    true = _decay(rng, n, hold, tau)
    rel = _noisy(rng, hold)
    val = _noise(rng, true, rel, hold)
    return Shape(
        Diagnosis.HEALTHY,
        _plateau_visible(true),
        f"fast fall (tau {tau:.1f} evals) then flat; noise {rel:.3f}",
        val,
        _train_of(rng, true, rng.uniform(0.05, 0.3), False),
        _const_lr(rng, n),
        {"plateau_frac": (_plateau_visible(true) + 1) / n},
    )


def step_decay(rng: np.random.Generator, n: int, hold: bool) -> Shape:
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
    return Shape(
        Diagnosis.HEALTHY,
        _plateau_visible(true),
        f"LR step decay /10 at eval {at}: loss drops {drop / true[at - 1]:.0%} then flat",
        _noise(rng, true, rel, hold),
        _train_of(rng, true, rng.uniform(0.05, 0.3), False),
        lr,
        {"decay_frac": at / n},
    )


def warmup(rng: np.random.Generator, n: int, hold: bool) -> Shape:
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
    return Shape(
        Diagnosis.HEALTHY,
        _plateau_visible(true),
        f"linear LR warm-up over {w} evals, then fast fall and flat",
        _noise(rng, true, rel, hold),
        _train_of(rng, true, rng.uniform(0.05, 0.3), False),
        lr,
        {"warmup_frac": w / n},
    )


def recovering_spike(rng: np.random.Generator, n: int, hold: bool) -> Shape:
    n = max(n, 8)
    shape = healthy(rng, n, hold)
    val = shape.val.copy()
    at = int(rng.uniform(0.1, 0.4) * n) + 1
    height = rng.uniform(0.5, 1.5)
    val[at] *= 1.0 + height
    return Shape(
        Diagnosis.HEALTHY,
        shape.visible,
        f"one spike of +{height:.0%} at eval {at}, recovered at the next",
        val,
        shape.train,
        shape.lr,
        shape.truth | {"spike_frac": at / n},
    )


def noisy_plateau(rng: np.random.Generator, n: int, hold: bool) -> Shape:
    tau = _healthy_tau(rng, n)
    true = _decay(rng, n, hold, tau)
    rel = float(rng.uniform(0.03, 0.05))
    return Shape(
        Diagnosis.HEALTHY,
        _plateau_visible(true),
        f"noisy plateau, noise {rel:.3f} of the level",
        _noise(rng, true, rel, hold),
        _train_of(rng, true, rng.uniform(0.05, 0.3), False),
        _const_lr(rng, n),
        {},
    )


# --- underfitting ----------------------------------------------------------------------


def underfit(rng: np.random.Generator, n: int, hold: bool) -> Shape:
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
    return Shape(
        Diagnosis.UNDERFITTING,
        min(visible, n - 1),
        note + f"; LR too low; noise {rel:.3f}",
        _noise(rng, true, rel, hold),
        _train_of(rng, true, rng.uniform(0.0, 0.08), False),
        _const_lr(rng, n) / 30.0,
        {"tau_frac": tau},
    )


# --- overfitting -----------------------------------------------------------------------


def overfit(rng: np.random.Generator, n: int, hold: bool) -> Shape:
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
    return Shape(
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


def nan(rng: np.random.Generator, n: int, hold: bool) -> Shape:
    shape = healthy(rng, n, hold)
    at = min(n - 1, int(rng.uniform(0.3, 0.9) * n))
    val = shape.val.copy()
    bad = np.nan if rng.uniform() < 0.7 else np.inf
    val[at:] = bad
    train = shape.train.copy() if shape.train is not None else None
    if train is not None:
        train[at:] = bad
    return Shape(
        Diagnosis.INSTABILITY,
        at,
        f"loss becomes {bad} at eval {at}",
        val,
        train,
        shape.lr,
        {"first_bad": float(at)},
    )


def diverge(rng: np.random.Generator, n: int, hold: bool) -> Shape:
    n = max(n, 8)
    tau = _healthy_tau(rng, n)
    true = _decay(rng, n, hold, tau)
    at = min(n - 2, max(3, int(rng.uniform(0.3, 0.8) * n)))
    growth = rng.uniform(1.3, 2.0)
    k = np.arange(1, n - at + 1, dtype=np.float64)
    true[at:] = true[at - 1] * np.minimum(growth**k, 1e3)
    rel = _noisy(rng, hold)
    return Shape(
        Diagnosis.INSTABILITY,
        at,
        f"diverges from eval {at}, x{growth:.2f} per eval",
        _noise(rng, true, rel, hold),
        _train_of(rng, true, 0.1, False) * np.concatenate([np.ones(at), growth**k]),
        _const_lr(rng, n) * 10.0,
        {"first_bad": float(at)},
    )


def spikes(rng: np.random.Generator, n: int, hold: bool) -> Shape:
    n = max(n, 12)
    shape = healthy(rng, n, hold)
    val = shape.val.copy()
    count = int(rng.integers(3, 7))
    where = np.sort(
        rng.choice(np.arange(max(2, int(0.15 * n)), n), size=min(count, n // 3), replace=False)
    )
    # Keep spikes apart so that each recovers before the next.
    where = where[np.concatenate([[True], np.diff(where) > 1])]
    val[where] *= 1.0 + rng.uniform(0.6, 2.0, where.size)
    second = int(where[1]) if where.size > 1 else int(where[0])
    return Shape(
        Diagnosis.INSTABILITY,
        second,
        f"{where.size} loss spikes from eval {int(where[0])}",
        val,
        shape.train,
        shape.lr * 10.0,
        {"first_bad": float(second)},
    )


def oscillate(rng: np.random.Generator, n: int, hold: bool) -> Shape:
    tau = _healthy_tau(rng, n)
    true = _decay(rng, n, hold, tau)
    at = int(rng.uniform(0.2, 0.6) * n)
    amp = rng.uniform(0.15, 0.4)
    period = 2 if not hold else int(rng.choice([2, 3]))
    k = np.arange(n - at)
    wave = np.where(k % period == 0, 1.0, -1.0) if period == 2 else np.cos(2 * np.pi * k / 3)
    true[at:] *= 1.0 + amp * wave
    rel = _noisy(rng, hold)
    return Shape(
        Diagnosis.INSTABILITY,
        min(n - 1, at + 6),
        f"oscillates by +-{amp:.0%} (period {period}) from eval {at}",
        _noise(rng, true, rel, hold),
        _train_of(rng, true, 0.1, False),
        _const_lr(rng, n) * 10.0,
        {"first_bad": float(min(n - 1, at + 6))},
    )


# --- LR range test ---------------------------------------------------------------------


def lr_range(rng: np.random.Generator, n: int, hold: bool) -> Shape:
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
    return Shape(
        Diagnosis.LR_RANGE_TEST,
        7,
        f"{'linear' if linear else 'exponential'} LR range test {lo:.2g} -> {hi:.2g}; "
        f"loss minimum at LR {best:.3g}",
        val,
        val * rng.uniform(0.9, 1.0),
        lr,
        {"max_lr": best},
    )
