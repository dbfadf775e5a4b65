"""Per-iteration learning-rate and momentum schedules (pure Python, no torch).

Every schedule maps the iteration index ``it`` (0-based, ``0 <= it < total``) to the LR
and momentum used for that iteration's update; indices outside the run are clamped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from advisor.trainer.config import TrainConfig


class Schedule(Protocol):
    """LR and momentum as functions of the iteration."""

    def lr(self, it: int) -> float:
        """The learning rate of iteration ``it``."""
        ...

    def momentum(self, it: int) -> float:
        """The momentum of iteration ``it``."""
        ...


def _warmed(it: int, warmup: int) -> tuple[float, int]:
    """(factor of a linear warm-up over ``warmup`` iterations at iteration ``it``, the
    iteration counted from the warm-up's end), as Hugging Face's schedulers: the factor
    is ``it / warmup`` during it, 1 after."""
    it = max(it, 0)
    if it < warmup:
        return it / warmup, 0
    return 1.0, it - warmup


@dataclass(frozen=True, slots=True)
class Constant:
    """The same LR and momentum throughout, after an optional linear warm-up over
    ``warmup`` iterations."""

    base_lr: float
    base_momentum: float
    warmup: int = 0

    def lr(self, it: int) -> float:
        return self.base_lr * _warmed(it, self.warmup)[0]

    def momentum(self, it: int) -> float:
        return self.base_momentum


@dataclass(frozen=True, slots=True)
class StepDecay:
    """LR multiplied by ``gamma`` every ``step_size`` iterations; constant momentum."""

    base_lr: float
    base_momentum: float
    step_size: int
    gamma: float

    def lr(self, it: int) -> float:
        return self.base_lr * self.gamma ** (max(it, 0) // self.step_size)

    def momentum(self, it: int) -> float:
        return self.base_momentum


@dataclass(frozen=True, slots=True)
class _Annealed:
    """LR from ``base_lr`` down to 0 over ``total`` iterations along ``_shape``, after an
    optional linear warm-up over the first ``warmup`` (then the shape spans the rest, as
    Hugging Face's schedulers do); constant momentum."""

    base_lr: float
    base_momentum: float
    total: int
    warmup: int = 0

    def _shape(self, frac: float) -> float:
        """The LR factor at ``frac`` (0 to 1) of the way: 1 at 0, 0 at 1."""
        raise NotImplementedError

    def lr(self, it: int) -> float:
        factor, since = _warmed(it, self.warmup)
        span = self.total - self.warmup
        return self.base_lr * factor * self._shape(min(since, span) / span)

    def momentum(self, it: int) -> float:
        return self.base_momentum


@dataclass(frozen=True, slots=True)
class Cosine(_Annealed):
    """Half a cosine (PyTorch's ``CosineAnnealingLR`` with ``T_max`` the run and
    ``eta_min`` 0, stepped per iteration; with ``warmup``, Hugging Face's
    ``get_cosine_schedule_with_warmup``)."""

    def _shape(self, frac: float) -> float:
        return 0.5 * (1.0 + math.cos(math.pi * frac))


@dataclass(frozen=True, slots=True)
class LinearDecay(_Annealed):
    """A straight line (Hugging Face's ``get_linear_schedule_with_warmup``; without a
    warm-up, PyTorch's ``LinearLR`` from 1 to 0)."""

    def _shape(self, frac: float) -> float:
        return 1.0 - frac


@dataclass(frozen=True, slots=True)
class OneCycle:
    """Smith's 1cycle in the shape of his Caffe runs (paper-notes §3).

    Three phases: the LR rises linearly from ``min_lr`` to ``max_lr`` over ``stepsize``
    iterations, falls linearly back to ``min_lr`` over the next ``stepsize``, then
    anneals linearly to ``final_lr`` over the remaining iterations, reaching it on the
    last one. Momentum mirrors the first two phases (``max_momentum`` →
    ``min_momentum`` → ``max_momentum``) and stays at ``max_momentum`` while annealing.
    Unlike fastai's and PyTorch's default (cosine, two phases), all phases are linear.
    """

    min_lr: float
    max_lr: float
    final_lr: float
    max_momentum: float
    min_momentum: float
    stepsize: int
    total: int

    def __post_init__(self) -> None:
        if self.stepsize < 1 or 2 * self.stepsize >= self.total:
            raise ValueError(
                f"1cycle needs 1 <= stepsize < total/2 but got stepsize {self.stepsize}"
                f" for {self.total} iterations"
            )

    def _phase(self, it: int) -> tuple[int, float]:
        """(phase 0/1/2, fraction of that phase done) for iteration ``it``."""
        it = min(max(it, 0), self.total - 1)
        s = self.stepsize
        if it <= s:
            return 0, it / s
        if it <= 2 * s:
            return 1, (it - s) / s
        return 2, (it - 2 * s) / (self.total - 1 - 2 * s)

    def lr(self, it: int) -> float:
        phase, frac = self._phase(it)
        if phase == 0:
            return self.min_lr + (self.max_lr - self.min_lr) * frac
        if phase == 1:
            return self.max_lr - (self.max_lr - self.min_lr) * frac
        return self.min_lr - (self.min_lr - self.final_lr) * frac

    def momentum(self, it: int) -> float:
        phase, frac = self._phase(it)
        span = self.max_momentum - self.min_momentum
        if phase == 0:
            return self.max_momentum - span * frac
        if phase == 1:
            return self.min_momentum + span * frac
        return self.max_momentum


@dataclass(frozen=True, slots=True)
class RangeTest:
    """The LR range test: LR rising from ``start_lr`` to ``end_lr`` over ``total`` steps.

    ``linear`` is the paper's (paper-notes §4); ``exponential`` is fastai's and
    torch-lr-finder's default. Momentum is constant.
    """

    start_lr: float
    end_lr: float
    total: int
    mode: str
    base_momentum: float

    def lr(self, it: int) -> float:
        frac = min(max(it, 0), self.total - 1) / max(self.total - 1, 1)
        if self.mode == "exponential":
            return self.start_lr * math.exp(math.log(self.end_lr / self.start_lr) * frac)
        return self.start_lr + (self.end_lr - self.start_lr) * frac

    def momentum(self, it: int) -> float:
        return self.base_momentum


def build_schedule(config: TrainConfig, iters_per_epoch: int) -> Schedule:
    """The schedule that ``config`` asks for, over ``config.epochs`` epochs.

    Raises:
        ValueError: the run is too short for the schedule (1cycle needs >= 3 iterations).
    """
    total = config.epochs * iters_per_epoch
    # Hugging Face rounds the warm-up up (``math.ceil(warmup_ratio * max_steps)``).
    warmup = min(math.ceil(config.warmup_frac * total), total - 1)
    if config.schedule == "constant":
        return Constant(config.lr, config.momentum, warmup)
    if config.schedule == "step":
        step_size = config.decay_epochs() * iters_per_epoch
        return StepDecay(config.lr, config.momentum, step_size, config.gamma)
    if config.schedule == "cosine":
        return Cosine(config.lr, config.momentum, total, warmup)
    if config.schedule == "linear":
        return LinearDecay(config.lr, config.momentum, total, warmup)
    if config.schedule == "1cycle":
        low = config.start_lr()
        stepsize = max(1, math.floor(config.cycle_frac * total / 2))
        return OneCycle(
            min_lr=low,
            max_lr=config.lr,
            final_lr=low / config.final_div,
            max_momentum=config.momentum,
            min_momentum=min(config.min_momentum, config.momentum),
            stepsize=stepsize,
            total=total,
        )
    return RangeTest(config.start_lr(), config.lr, total, config.range_mode, config.momentum)
