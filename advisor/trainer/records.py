"""What a run reports: one :class:`Evaluation` per evaluation, a :class:`TrainResult` at the end.

Both import without torch, so a watcher driven through the training callback needs
nothing from the ``trainer`` extra.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The numbers logged at one evaluation (one CSV row, one step in the event file).

    Attributes:
        step: iterations done so far (the global step of every logged scalar).
        epoch: epochs done so far (fractional for evaluations inside an epoch).
        train_loss: mean training loss over the iterations since the last evaluation.
        train_accuracy: training accuracy over the same iterations.
        val_loss: validation loss (NaN when the model diverged).
        val_accuracy: validation accuracy in [0, 1].
        lr: learning rate of the last iteration.
        momentum: momentum of the last iteration.
        weight_decay: weight decay in use.
        batch_size: batch size in use.
    """

    step: int
    epoch: float
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    lr: float
    momentum: float
    weight_decay: float
    batch_size: int

    @property
    def finite(self) -> bool:
        """Whether both losses are finite numbers."""
        return math.isfinite(self.train_loss) and math.isfinite(self.val_loss)


EvalCallback = Callable[[Evaluation], None]
"""Called after each evaluation has been logged (the hook for an in-process watcher)."""


@dataclass(frozen=True, slots=True)
class TrainResult:
    """How a run ended.

    Attributes:
        final_val_loss: validation loss at the last evaluation.
        final_val_accuracy: validation accuracy at the last evaluation.
        best_val_loss: lowest finite validation loss seen (NaN if none was finite).
        best_val_accuracy: highest validation accuracy seen.
        epochs_run: epochs completed (fewer than asked when the run stopped on NaN).
        steps: iterations completed.
        seconds: wall-clock seconds of the run, data loading included.
        logdir: the directory holding the event file and ``metrics.csv``.
        diverged: the run stopped because a loss was not finite.
        history: every evaluation, in order.
    """

    final_val_loss: float
    final_val_accuracy: float
    best_val_loss: float
    best_val_accuracy: float
    epochs_run: float
    steps: int
    seconds: float
    logdir: Path
    diverged: bool
    history: tuple[Evaluation, ...]
