"""What one training run is: a frozen, validated :class:`TrainConfig`."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any
from typing import Literal

DatasetName = Literal["digits", "mnist1d"]
ModelName = Literal["mlp", "cnn"]
ScheduleName = Literal["constant", "step", "cosine", "linear", "1cycle", "range"]
RangeMode = Literal["linear", "exponential"]
OptimizerName = Literal["sgd", "adamw"]

DATASETS: tuple[DatasetName, ...] = ("digits", "mnist1d")
MODELS: tuple[ModelName, ...] = ("mlp", "cnn")
SCHEDULES: tuple[ScheduleName, ...] = (
    "constant",
    "step",
    "cosine",
    "linear",
    "1cycle",
    "range",
)
RANGE_MODES: tuple[RangeMode, ...] = ("linear", "exponential")
OPTIMIZERS: tuple[OptimizerName, ...] = ("sgd", "adamw")


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Every hyper-parameter of a run; invalid values raise ``ValueError`` at once.

    Attributes:
        dataset: ``digits`` (scikit-learn's 8x8 digits) or ``mnist1d``.
        model: ``mlp`` or ``cnn`` (1-D for MNIST-1D, 2-D for digits).
        width: hidden units (MLP) or channels (CNN) per layer.
        depth: hidden layers (MLP) or convolution layers (CNN).
        lr: the learning rate; for ``1cycle`` the maximum, for ``range`` the end LR.
        min_lr: for ``1cycle`` the LR the cycle starts and ends at (default ``lr / 10``,
            the paper's max/10); for ``range`` the start LR (default ``lr / 1000``).
        optimizer: ``sgd`` (the paper's) or ``adamw`` (PyTorch's AdamW: decoupled weight
            decay, ``momentum`` as its beta1 and 0.999 as beta2, as fastai's 1cycle
            cycles beta1).
        momentum: SGD momentum; for ``1cycle`` the maximum of the cyclical momentum.
        min_momentum: for ``1cycle`` the momentum at the LR peak (paper: 0.95→0.85).
        nesterov: Nesterov momentum (the paper's Caffe solvers all use it).
        weight_decay: the optimizer's ``weight_decay``: L2 for SGD (Caffe-style),
            decoupled for AdamW.
        batch_size: examples per iteration.
        epochs: passes over the training set.
        schedule: ``constant``, ``step`` (decay), ``cosine`` (annealing to zero over the
            run, as PyTorch's ``CosineAnnealingLR`` and most recipes), ``linear``
            (decay to zero over the run, Hugging Face's default scheduler without
            warm-up), ``1cycle`` or ``range`` (LR range test).
        warmup_frac: for ``constant``, ``cosine`` and ``linear``, the part of the run
            over which the LR first rises linearly from 0 (Hugging Face's
            ``warmup_ratio``; the schedule then runs over the rest).
        step_epochs: for ``step``, epochs between decays (default a third of the run).
        gamma: for ``step``, the factor applied at each decay.
        cycle_frac: for ``1cycle``, the part of the run taken by the two linear phases
            (2 x stepsize); the paper's tables give 83-96%, we default to 90%.
        final_div: for ``1cycle``, the last phase anneals the LR to ``min_lr / final_div``.
        range_mode: for ``range``, ``linear`` (the paper) or ``exponential`` (fastai).
        n_train: keep only this many training examples (None: all of them).
        val_fraction: part of the data held out for validation.
        split_seed: seeds the train/validation split, so runs with different ``seed``
            are judged on the same validation set.
        seed: seeds initialisation and batch order.
        eval_every: also evaluate every this many iterations (None: once per epoch).
        log_every: also log the training loss of every this many batches, as
            ``train/loss_step`` in the event file (None: only the mean over the batches
            since the last evaluation, ``train/loss``), as Lightning's
            ``log_every_n_steps`` or HF's ``logging_steps`` do.
        stop_on_nan: stop at the first evaluation whose losses are not finite.
    """

    dataset: DatasetName = "digits"
    model: ModelName = "mlp"
    width: int = 64
    depth: int = 2
    lr: float = 0.1
    min_lr: float | None = None
    optimizer: OptimizerName = "sgd"
    momentum: float = 0.9
    min_momentum: float = 0.85
    nesterov: bool = False
    weight_decay: float = 0.0
    batch_size: int = 32
    epochs: int = 20
    schedule: ScheduleName = "constant"
    warmup_frac: float = 0.0
    step_epochs: int | None = None
    gamma: float = 0.1
    cycle_frac: float = 0.9
    final_div: float = 100.0
    range_mode: RangeMode = "linear"
    n_train: int | None = None
    val_fraction: float = 0.2
    split_seed: int = 0
    seed: int = 0
    eval_every: int | None = None
    log_every: int | None = None
    stop_on_nan: bool = True

    def __post_init__(self) -> None:
        _choice("dataset", self.dataset, DATASETS)
        _choice("model", self.model, MODELS)
        _choice("schedule", self.schedule, SCHEDULES)
        _choice("range_mode", self.range_mode, RANGE_MODES)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        for name in ("width", "depth", "batch_size", "epochs"):
            _at_least(name, getattr(self, name), 1)
        _positive("lr", self.lr)
        if self.min_lr is not None:
            _positive("min_lr", self.min_lr)
            if self.min_lr >= self.lr:
                raise ValueError(f"min_lr must be below lr ({self.lr}) but got {self.min_lr}")
        for name in ("momentum", "min_momentum"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1) but got {value}")
        if self.nesterov and self.momentum <= 0:
            raise ValueError("nesterov needs momentum > 0 but got momentum 0")
        if self.nesterov and self.optimizer != "sgd":
            raise ValueError(f"nesterov needs optimizer 'sgd' but got {self.optimizer!r}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ValueError(f"weight_decay must be >= 0 but got {self.weight_decay}")
        if not 0.0 <= self.warmup_frac < 1.0:
            raise ValueError(f"warmup_frac must be in [0, 1) but got {self.warmup_frac}")
        if self.warmup_frac > 0 and self.schedule not in _WARMUP_SCHEDULES:
            raise ValueError(
                f"warmup_frac applies to {', '.join(_WARMUP_SCHEDULES)} schedules"
                f" but got schedule {self.schedule!r}"
            )
        if self.step_epochs is not None:
            _at_least("step_epochs", self.step_epochs, 1)
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1] but got {self.gamma}")
        if not 0.0 < self.cycle_frac < 1.0:
            raise ValueError(f"cycle_frac must be in (0, 1) but got {self.cycle_frac}")
        _at_least("final_div", self.final_div, 1.0)
        if self.n_train is not None:
            _at_least("n_train", self.n_train, 1)
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1) but got {self.val_fraction}")
        if self.eval_every is not None:
            _at_least("eval_every", self.eval_every, 1)
        if self.log_every is not None:
            _at_least("log_every", self.log_every, 1)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def start_lr(self) -> float:
        """The LR the schedule starts from (``min_lr`` or its default for the schedule)."""
        if self.min_lr is not None:
            return self.min_lr
        if self.schedule == "1cycle":
            return self.lr / 10.0
        if self.schedule == "range":
            return self.lr / 1000.0
        return self.lr

    def hparams(self) -> dict[str, float | int | str | bool]:
        """The hyper-parameters as TensorBoard hparams.

        Fields that are None, and fields of schedules other than this run's (``gamma``
        of a 1cycle run, say), are left out, so that a reader of the log never takes an
        unused default for a setting. ``min_lr`` and ``step_epochs`` are written resolved.
        """
        unused = {name for names in _SCHEDULE_FIELDS.values() for name in names}
        unused -= set(_SCHEDULE_FIELDS.get(self.schedule, ()))
        out: dict[str, float | int | str | bool] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is not None and f.name not in unused:
                out[f.name] = value
        if self.schedule in ("1cycle", "range"):
            out["min_lr"] = self.start_lr()
        if self.schedule == "step":
            out["step_epochs"] = self.decay_epochs()
        return out

    def decay_epochs(self) -> int:
        """Epochs between step decays (``step_epochs``, else a third of the run)."""
        return self.step_epochs or max(self.epochs // 3, 1)


# Schedules that can start with a linear warm-up.
_WARMUP_SCHEDULES = ("constant", "cosine", "linear")

# Fields that only some schedules read.
_SCHEDULE_FIELDS: dict[str, tuple[str, ...]] = {
    **{name: ("warmup_frac",) for name in _WARMUP_SCHEDULES},
    "step": ("step_epochs", "gamma"),
    "1cycle": ("min_lr", "min_momentum", "cycle_frac", "final_div"),
    "range": ("min_lr", "range_mode"),
}


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)} but got {value!r}")


def _at_least(name: str, value: float, low: float) -> None:
    if not value >= low:
        raise ValueError(f"{name} must be >= {low:g} but got {value}")


def _positive(name: str, value: float) -> None:
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number but got {value}")
