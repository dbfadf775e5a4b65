"""Apply one of the advisor's recommendations to a :class:`TrainConfig`.

The rules speak of parameters (``lr``, ``weight_decay``, ``batch_size``, ``momentum``,
``schedule``, ``epochs``, ``training``); this maps each onto the reference trainer's
fields, so that the demo and ``advisor e2e`` can rerun a bad run with the advice followed.
A numeric suggestion is used as given; without one, the recommendation's factor is
applied to the config's value (the config, not the log, is the truth of what ran).

- ``lr`` raise/lower/set: the LR (for 1cycle, the maximum; the minimum keeps its ratio).
- ``weight_decay``, ``batch_size``, ``epochs``: the field.
- ``momentum`` lower/set to a number: the momentum. Cyclical momentum 0.95 → 0.85 exists
  in this trainer only inside 1cycle, so a "cyclical" momentum switches to 1cycle.
- ``schedule`` set to 1cycle: 1cycle with the current LR as its maximum, the minimum a
  tenth of it (paper-notes §1 checklist) and momentum 0.95 → 0.85.
- ``training`` stop at a step: ``epochs`` becomes the epoch of that step, rounded up (the
  run is deterministic, so the rerun ends at the best evaluation of the first).
- ``lr`` lowered to "the max of an LR range test": the caller's ``range_test`` runs one on
  the same model and data and returns its (max, min); the rerun is 1cycle between them.

Pure; no torch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass

from advisor.model import Recommendation
from advisor.trainer.config import TrainConfig
from advisor.trainer.records import Evaluation

# Paper-notes §2 (momentum row) and §1 checklist: 1cycle momentum 0.95 → 0.85.
CYCLE_MOMENTUM = (0.95, 0.85)
ONE_CYCLE_DIV = 10.0


RangeTest = Callable[[TrainConfig], tuple[float, float]]
"""Runs an LR range test like the given run; returns its (max LR, min LR) for 1cycle."""


class NotApplicableError(ValueError):
    """The reference trainer has no setting for this recommendation."""


@dataclass(frozen=True, slots=True)
class Applied:
    """A recommendation applied.

    Attributes:
        config: the config to rerun.
        change: what changed, for a person (``lr 0.001 → 0.003``).
    """

    config: TrainConfig
    change: str


def apply_recommendation(
    config: TrainConfig,
    rec: Recommendation,
    history: Sequence[Evaluation] = (),
    range_test: RangeTest | None = None,
) -> Applied:
    """``config`` with ``rec`` followed.

    Args:
        config: the run the recommendation is about.
        rec: the recommendation.
        history: the run's evaluations (needed for ``training stop``: step → epoch).
        range_test: runs an LR range test (needed when the advice is to take the LR
            from one).

    Raises:
        NotApplicableError: the trainer has no such setting, or the recommendation gives no
            value and no factor to apply.
    """
    try:
        new = _apply(config, rec, history, range_test)
    except ValueError as exc:  # TrainConfig refused the value
        if isinstance(exc, NotApplicableError):
            raise
        raise NotApplicableError(f"{rec.action} {rec.param}: {exc}") from None
    return Applied(new, _change(config, new))


def _apply(
    config: TrainConfig,
    rec: Recommendation,
    history: Sequence[Evaluation],
    range_test: RangeTest | None,
) -> TrainConfig:
    param = rec.param
    if param == "lr" and isinstance(rec.suggested, str) and "range test" in rec.suggested:
        if range_test is None:
            raise NotApplicableError(f"{rec.action} lr: needs an LR range test to be run")
        high, low = range_test(config)
        return _one_cycle(config.replace(schedule="constant", lr=high, min_lr=None), low)
    if param == "lr":
        return _with_lr(config, _number(rec, config.lr))
    if param == "weight_decay":
        return config.replace(weight_decay=_number(rec, config.weight_decay))
    if param == "batch_size":
        return config.replace(batch_size=max(1, round(_number(rec, config.batch_size))))
    if param == "epochs":
        return config.replace(epochs=max(1, round(_number(rec, config.epochs))))
    if param == "momentum":
        if isinstance(rec.suggested, str) and "cycl" in rec.suggested:
            return _one_cycle(config)
        return config.replace(momentum=_number(rec, config.momentum))
    if param == "schedule":
        if isinstance(rec.suggested, str) and "1cycle" in rec.suggested:
            return _one_cycle(config)
        raise NotApplicableError(f"schedule {rec.suggested!r}: only 1cycle is mapped")
    if param == "training" and rec.action == "stop":
        return config.replace(epochs=_epoch_of(rec, history))
    raise NotApplicableError(f"the reference trainer has no setting for {rec.action} {param}")


def _number(rec: Recommendation, current: float) -> float:
    """The suggested number, else the factor applied to ``current``."""
    if isinstance(rec.suggested, int | float) and not isinstance(rec.suggested, bool):
        return float(rec.suggested)
    if rec.factor is not None and current > 0:
        return current * rec.factor
    raise NotApplicableError(f"{rec.action} {rec.param}: no value to apply (current {current})")


def _with_lr(config: TrainConfig, lr: float) -> TrainConfig:
    if config.schedule == "1cycle":
        low = config.start_lr() * lr / config.lr
        return config.replace(lr=lr, min_lr=low)
    if config.schedule == "range":
        raise NotApplicableError("a range test's LR is its sweep, not a setting to change")
    return config.replace(lr=lr)


def _one_cycle(config: TrainConfig, low: float | None = None) -> TrainConfig:
    """1cycle with the LR as its maximum, ``low`` (default a tenth) as its minimum."""
    if config.schedule == "1cycle":
        return config.replace(momentum=CYCLE_MOMENTUM[0], min_momentum=CYCLE_MOMENTUM[1])
    return config.replace(
        schedule="1cycle",
        min_lr=low if low is not None else config.lr / ONE_CYCLE_DIV,
        momentum=CYCLE_MOMENTUM[0],
        min_momentum=CYCLE_MOMENTUM[1],
    )


def _epoch_of(rec: Recommendation, history: Sequence[Evaluation]) -> int:
    if not isinstance(rec.suggested, int | float) or not history:
        raise NotApplicableError("stop training: needs the step and the run's evaluations")
    step = float(rec.suggested)
    at = [ev for ev in history if ev.step <= step]
    epoch = at[-1].epoch if at else history[0].epoch
    return max(1, math.ceil(epoch - 1e-9))


_FIELDS = ("schedule", "lr", "min_lr", "momentum", "min_momentum", "weight_decay",
           "batch_size", "epochs")  # fmt: skip


def _change(old: TrainConfig, new: TrainConfig) -> str:
    """``lr 0.001 → 0.003, epochs 40 → 13``: the fields that changed."""
    parts = []
    names = list(_FIELDS)
    if new.schedule == "1cycle" and old.schedule != "1cycle":
        parts.append(
            f"{old.schedule} LR {old.lr:.3g} → 1cycle LR {new.start_lr():.3g}-{new.lr:.3g}, "
            f"momentum {new.momentum:g}-{new.min_momentum:g}"
        )
        names = [n for n in names if n not in ("schedule", "lr", "min_lr", "momentum",
                                               "min_momentum")]  # fmt: skip
    for name in names:
        a, b = getattr(old, name), getattr(new, name)
        if name in ("min_lr", "min_momentum") and new.schedule != "1cycle":
            continue
        if name == "min_lr":
            a, b = old.start_lr(), new.start_lr()
        if a != b:
            parts.append(f"{name} {_fmt(a)} → {_fmt(b)}")
    return ", ".join(parts) or "no change"


def _fmt(x: object) -> str:
    return f"{x:.3g}" if isinstance(x, float) else str(x)
