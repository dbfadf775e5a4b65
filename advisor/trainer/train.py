"""Train one :class:`TrainConfig` with SGD or AdamW, logging every evaluation.

Determinism: one seed drives initialisation and batch order, deterministic algorithms
are switched on, and torch runs on one thread by default (measured here: with the other
core busy, two threads ran 10-50x slower). The global torch settings touched (threads,
deterministic algorithms) are put back when the run ends.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from advisor.trainer.config import TrainConfig
from advisor.trainer.data import Dataset
from advisor.trainer.data import load_dataset
from advisor.trainer.models import build_model
from advisor.trainer.progress import Progress
from advisor.trainer.records import EvalCallback
from advisor.trainer.records import Evaluation
from advisor.trainer.records import TrainResult
from advisor.trainer.runlog import RunLog
from advisor.trainer.schedules import Schedule
from advisor.trainer.schedules import build_schedule


def train(
    config: TrainConfig,
    logdir: Path,
    *,
    quiet: bool = False,
    callback: EvalCallback | None = None,
    num_threads: int = 1,
) -> TrainResult:
    """Train ``config`` and log it under ``logdir``.

    Evaluates the validation set at the end of every epoch, and also every
    ``config.eval_every`` iterations when set. With ``config.stop_on_nan`` the run stops
    at the first evaluation whose losses are not finite (that row is still logged).

    Args:
        config: what to train.
        logdir: where the event file and ``metrics.csv`` go (must not hold a run yet).
        quiet: no progress bar.
        callback: called with each :class:`Evaluation` after it has been logged.
        num_threads: torch intra-op threads for this run.

    Returns:
        How the run ended, with every evaluation.

    Raises:
        FileExistsError: ``logdir`` already holds a run's log.
        ValueError: the data or schedule cannot serve ``config``.
    """
    started = time.perf_counter()
    data = load_dataset(
        config.dataset,
        split_seed=config.split_seed,
        val_fraction=config.val_fraction,
        n_train=config.n_train,
    )
    iters_per_epoch = math.ceil(len(data.y_train) / config.batch_size)
    schedule = build_schedule(config, iters_per_epoch)
    with _torch_settings(num_threads), RunLog(logdir, config.hparams()) as log:
        torch.manual_seed(config.seed)
        loop = _Loop(config, data, schedule, iters_per_epoch, log.write_batch)
        history: list[Evaluation] = []
        with Progress(config.epochs, enabled=not quiet) as bar:
            for ev in loop.run():
                log.write(ev)
                history.append(ev)
                bar.update(ev.epoch, ev.val_loss, ev.val_accuracy)
                if callback is not None:
                    callback(ev)
    return _result(history, logdir, time.perf_counter() - started)


@contextmanager
def _torch_settings(num_threads: int) -> Iterator[None]:
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(num_threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


# AdamW's second-moment decay (PyTorch's and fastai's default).
_BETA2 = 0.999


class _Loop:
    """The training loop as a generator of evaluations."""

    def __init__(
        self,
        config: TrainConfig,
        data: Dataset,
        schedule: Schedule,
        iters_per_epoch: int,
        log_batch: Callable[[int, float], None],
    ) -> None:
        self.config = config
        self.log_batch = log_batch
        self.schedule = schedule
        self.iters_per_epoch = iters_per_epoch
        self.x_train = torch.from_numpy(data.x_train)
        self.y_train = torch.from_numpy(data.y_train)
        self.x_val = torch.from_numpy(data.x_val)
        self.y_val = torch.from_numpy(data.y_val)
        self.model = build_model(
            config.model, data.input_shape, data.n_classes, config.width, config.depth
        )
        self.optimizer: torch.optim.Optimizer
        if config.optimizer == "adamw":
            self.optimizer = torch.optim.AdamW(
                self.model.parameters(),
                lr=schedule.lr(0),
                betas=(schedule.momentum(0), _BETA2),
                weight_decay=config.weight_decay,
            )
        else:
            self.optimizer = torch.optim.SGD(
                self.model.parameters(),
                lr=schedule.lr(0),
                momentum=schedule.momentum(0),
                nesterov=config.nesterov,
                weight_decay=config.weight_decay,
            )
        self.loss_fn = nn.CrossEntropyLoss()
        # Batch order has its own generator, so it does not depend on how many random
        # numbers initialisation drew.
        self.order = torch.Generator().manual_seed(config.seed)

    def run(self) -> Iterator[Evaluation]:
        """Train, yielding one evaluation at each evaluation point."""
        cfg = self.config
        step = 0
        loss_sum, correct, seen = 0.0, 0, 0
        n = len(self.y_train)
        for _ in range(cfg.epochs):
            perm = torch.randperm(n, generator=self.order)
            for start in range(0, n, cfg.batch_size):
                idx = perm[start : start + cfg.batch_size]
                loss, hits = self._step(step, self.x_train[idx], self.y_train[idx])
                step += 1
                if cfg.log_every and step % cfg.log_every == 0:
                    self.log_batch(step, loss)
                loss_sum += loss * len(idx)
                correct += hits
                seen += len(idx)
                end_of_epoch = step % self.iters_per_epoch == 0
                if end_of_epoch or (cfg.eval_every and step % cfg.eval_every == 0):
                    ev = self._evaluate(step, loss_sum / seen, correct / seen)
                    loss_sum, correct, seen = 0.0, 0, 0
                    yield ev
                    if cfg.stop_on_nan and not ev.finite:
                        return

    def _step(self, it: int, x: torch.Tensor, y: torch.Tensor) -> tuple[float, int]:
        momentum = self.schedule.momentum(it)
        for group in self.optimizer.param_groups:
            group["lr"] = self.schedule.lr(it)
            if "betas" in group:
                group["betas"] = (momentum, _BETA2)
            else:
                group["momentum"] = momentum
        self.model.train()
        logits = self.model(x)
        loss = self.loss_fn(logits, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return float(loss.item()), int((logits.argmax(1) == y).sum().item())

    @torch.no_grad()
    def _evaluate(self, step: int, train_loss: float, train_accuracy: float) -> Evaluation:
        self.model.eval()
        logits = self.model(self.x_val)
        val_loss = float(self.loss_fn(logits, self.y_val).item())
        accuracy = float((logits.argmax(1) == self.y_val).float().mean().item())
        last = step - 1
        return Evaluation(
            step=step,
            epoch=step / self.iters_per_epoch,
            train_loss=train_loss,
            train_accuracy=train_accuracy,
            val_loss=val_loss,
            val_accuracy=accuracy,
            lr=self.schedule.lr(last),
            momentum=self.schedule.momentum(last),
            weight_decay=self.config.weight_decay,
            batch_size=self.config.batch_size,
        )


def _result(history: list[Evaluation], logdir: Path, seconds: float) -> TrainResult:
    last = history[-1]
    finite = [ev.val_loss for ev in history if math.isfinite(ev.val_loss)]
    return TrainResult(
        final_val_loss=last.val_loss,
        final_val_accuracy=last.val_accuracy,
        best_val_loss=min(finite) if finite else math.nan,
        best_val_accuracy=max(ev.val_accuracy for ev in history),
        epochs_run=last.epoch,
        steps=last.step,
        seconds=seconds,
        logdir=logdir,
        diverged=not last.finite,
        history=tuple(history),
    )
