"""Writes a run's log: a TensorBoard event file and ``metrics.csv``, side by side.

The event file holds the scalars under :data:`TAGS` at ``step`` = iterations done, and
the hyper-parameters as TensorBoard hparams in the same file (written through the
writer's own ``file_writer``, so no timestamped sub-directory appears, unlike
``SummaryWriter.add_hparams``). Both files are flushed at every evaluation, so a
watcher sees each point as soon as it is logged.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import IO
from typing import Any

from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summaries

from advisor.trainer.records import Evaluation

CSV_NAME = "metrics.csv"
CSV_COLUMNS = (
    "step",
    "epoch",
    "train_loss",
    "val_loss",
    "val_accuracy",
    "lr",
    "momentum",
    "weight_decay",
    "batch_size",
)
# Event-file tag → Evaluation attribute.
TAGS = {
    "train/loss": "train_loss",
    "train/accuracy": "train_accuracy",
    "val/loss": "val_loss",
    "val/accuracy": "val_accuracy",
    "lr": "lr",
    "momentum": "momentum",
    "weight_decay": "weight_decay",
    "batch_size": "batch_size",
    "epoch": "epoch",
}
# The training loss of single batches, with ``TrainConfig.log_every`` (the event file only:
# ``metrics.csv`` has one row per evaluation).
BATCH_TAG = "train/loss_step"
# The metrics the hparams plugin shows next to the hyper-parameters.
HPARAM_METRICS = ("val/loss", "val/accuracy")
# torch's builder of the experiment, session-start and session-end summaries (untyped).
_hparams: Callable[[dict[str, Any], dict[str, float]], tuple[Any, Any, Any]]
_hparams = hparams_summaries


class RunLog:
    """The open log of one run; use as a context manager.

    Args:
        logdir: the directory to write to; created if missing. It must not already hold
            an event file or ``metrics.csv``: two runs in one directory would read as
            one run that restarted.
        hparams: the run's hyper-parameters (numbers, strings and booleans).

    Raises:
        FileExistsError: ``logdir`` already holds a run's log.
    """

    def __init__(self, logdir: Path, hparams: dict[str, float | int | str | bool]) -> None:
        if logdir.is_dir() and (
            (logdir / CSV_NAME).exists() or any(logdir.glob("events.out.tfevents.*"))
        ):
            raise FileExistsError(f"{logdir} already holds a run's log; choose another --logdir")
        logdir.mkdir(parents=True, exist_ok=True)
        self.logdir = logdir
        self._writer = SummaryWriter(log_dir=str(logdir))
        # The metric values are not written (the plugin reads the logged scalars with
        # these tags); writing the summaries now gives a watcher the context at once.
        metrics = dict.fromkeys(HPARAM_METRICS, math.nan)
        file_writer = self._writer.file_writer
        assert file_writer is not None  # SummaryWriter opens it in its constructor
        for summary in _hparams(hparams, metrics):
            file_writer.add_summary(summary)
        self._csv_file: IO[str] = open(logdir / CSV_NAME, "w", newline="", encoding="utf-8")  # noqa: SIM115
        self._csv_file.write(",".join(CSV_COLUMNS) + "\n")
        self._csv_file.flush()
        self._writer.flush()

    def write(self, ev: Evaluation) -> None:
        """Log one evaluation to both files and flush them."""
        for tag, attr in TAGS.items():
            self._writer.add_scalar(tag, float(getattr(ev, attr)), global_step=ev.step)
        # Every cell is a number, so no quoting is ever needed.
        self._csv_file.write(",".join(_cell(getattr(ev, c)) for c in CSV_COLUMNS) + "\n")
        self._csv_file.flush()
        self._writer.flush()

    def write_batch(self, step: int, loss: float) -> None:
        """Log one batch's training loss to the event file (flushed with the next
        evaluation, as SummaryWriter's own buffering would)."""
        self._writer.add_scalar(BATCH_TAG, loss, global_step=step)

    def close(self) -> None:
        """Flush and close both files."""
        self._writer.close()
        self._csv_file.close()

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _cell(value: float | int) -> str:
    if isinstance(value, int):
        return str(value)
    return repr(float(value))
