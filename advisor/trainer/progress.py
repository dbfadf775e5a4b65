"""A progress bar on stderr for a training run (rich), or nothing when disabled."""

from __future__ import annotations

import rich.progress
from rich.console import Console


class Progress:
    """Epochs done, with the latest validation loss and accuracy; a context manager.

    Args:
        epochs: epochs in the run (the bar's total).
        enabled: draw the bar; when False every method does nothing.
    """

    def __init__(self, epochs: int, *, enabled: bool = True) -> None:
        self._bar: rich.progress.Progress | None = None
        self._task: rich.progress.TaskID | None = None
        if enabled:
            self._bar = rich.progress.Progress(
                rich.progress.TextColumn("epoch"),
                rich.progress.BarColumn(),
                rich.progress.TaskProgressColumn(),
                rich.progress.TimeElapsedColumn(),
                rich.progress.TextColumn("{task.fields[status]}"),
                console=Console(stderr=True),
            )
            self._task = self._bar.add_task("train", total=epochs, status="")

    def update(self, epoch: float, val_loss: float, val_accuracy: float) -> None:
        """Move the bar to ``epoch`` and show the latest validation numbers."""
        if self._bar is not None and self._task is not None:
            status = f"val loss {val_loss:.4g}  acc {val_accuracy:.1%}"
            self._bar.update(self._task, completed=epoch, status=status)

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
