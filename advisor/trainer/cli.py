"""``advisor train`` and ``advisor lr-range``: the reference trainer from the shell.

Importing this module does not import torch (``train.py`` is imported inside the
commands), so ``advisor --help`` stays fast and works without the ``trainer`` extra;
``advisor.cli`` registers both commands on the main group.

``advisor lr-range PATH`` reads a user's range-test log (:mod:`advisor.rangetest`, no
torch); ``--run`` first runs one with the reference trainer.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import click

from advisor.errors import InputError
from advisor.trainer.config import DATASETS
from advisor.trainer.config import MODELS
from advisor.trainer.config import OPTIMIZERS
from advisor.trainer.config import RANGE_MODES
from advisor.trainer.config import SCHEDULES
from advisor.trainer.config import TrainConfig
from advisor.trainer.presets import PRESETS
from advisor.trainer.presets import get_preset

if TYPE_CHECKING:
    from advisor.trainer.records import EvalCallback
    from advisor.trainer.records import TrainResult

DEFAULT_PRESET = "good"
RANGE_PRESET = "range-test"


def build_config(preset: str | None, overrides: dict[str, Any]) -> TrainConfig:
    """The preset's config (``good`` when None) with the non-None ``overrides`` applied.

    Raises:
        InputError: an unknown preset or an invalid value (the message names it).
    """
    base = get_preset(preset or DEFAULT_PRESET).config
    changes = {k: v for k, v in overrides.items() if v is not None}
    try:
        return base.replace(**changes)
    except ValueError as exc:
        raise InputError(str(exc)) from exc


def default_logdir(name: str, seed: int) -> Path:
    """``runs/<name>-seed<seed>-<YYYYmmdd-HHMMSS>`` under the working directory."""
    return Path("runs") / f"{name}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}"


def train_main(
    preset: str | None = None,
    overrides: dict[str, Any] | None = None,
    *,
    logdir: Path | None = None,
    quiet: bool = False,
    callback: EvalCallback | None = None,
) -> TrainResult:
    """Train a preset (``good`` when None) with ``overrides`` applied; log under ``logdir``.

    Args:
        preset: a name from :data:`advisor.trainer.presets.PRESETS`.
        overrides: :class:`TrainConfig` fields to change; None values are ignored.
        logdir: where to log (default :func:`default_logdir`); must not hold a run.
        quiet: no progress bar.
        callback: called with each evaluation after it is logged.

    Raises:
        InputError: a bad preset, value or log directory, or torch is not installed.
    """
    config = build_config(preset, overrides or {})
    target = logdir or default_logdir(preset or DEFAULT_PRESET, config.seed)
    try:
        from advisor.trainer.train import train

        return train(config, target, quiet=quiet, callback=callback)
    except ImportError as exc:  # torch, scikit-learn or mnist1d is missing
        raise InputError(
            f"the trainer needs the 'trainer' extra ({exc}); pip install 'advisor[trainer]'"
        ) from exc
    except (FileExistsError, ValueError) as exc:
        raise InputError(str(exc)) from exc


def _summary(result: TrainResult) -> str:
    state = "diverged (NaN)" if result.diverged else "done"
    return (
        f"{state}: {result.epochs_run:g} epochs, {result.steps} steps in {result.seconds:.1f} s;"
        f" final val loss {result.final_val_loss:.4g}, accuracy {result.final_val_accuracy:.1%};"
        f" best val loss {result.best_val_loss:.4g}\nlog: {result.logdir}"
    )


@click.command("train")
@click.option(
    "--preset", type=click.Choice(sorted(PRESETS)), help=f"Start from a preset ({DEFAULT_PRESET})."
)
@click.option("--lr", type=float, help="LR (1cycle: the maximum; range: the end LR).")
@click.option("--min-lr", type=float, help="1cycle: the lowest LR; range: the start LR.")
@click.option("--optimizer", type=click.Choice(OPTIMIZERS), help="SGD or AdamW.")
@click.option("--momentum", type=float, help="SGD momentum, AdamW beta1 (1cycle: the maximum).")
@click.option("--nesterov/--no-nesterov", default=None, help="Nesterov momentum.")
@click.option("--weight-decay", type=float, help="Weight decay (SGD: L2; AdamW: decoupled).")
@click.option("--batch-size", type=int, help="Examples per iteration.")
@click.option("--epochs", type=int, help="Passes over the training set.")
@click.option("--schedule", type=click.Choice(SCHEDULES), help="LR schedule.")
@click.option("--warmup-frac", type=float, help="Part of the run with a linear LR warm-up.")
@click.option("--dataset", type=click.Choice(DATASETS), help="Offline dataset.")
@click.option("--model", type=click.Choice(MODELS), help="Model family.")
@click.option("--width", type=int, help="Hidden units or channels per layer.")
@click.option("--depth", type=int, help="Hidden or convolution layers.")
@click.option("--n-train", type=int, help="Keep only this many training examples.")
@click.option("--seed", type=int, help="Seed of initialisation and batch order.")
@click.option("--eval-every", type=int, help="Also evaluate every N iterations.")
@click.option("--log-every", type=int, help="Also log every N-th batch's training loss.")
@click.option("--logdir", type=click.Path(path_type=Path), help="Log directory (new).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train_command(preset: str | None, logdir: Path | None, quiet: bool, **overrides: Any) -> None:
    """Train a small model offline, logging TensorBoard events and metrics.csv.

    Explicit options override the preset's values; without --preset the run starts
    from the 'good' preset. Presets: lr-too-low, good, overfit, lr-too-high, nan,
    range-test, one-cycle.
    """
    result = train_main(preset, overrides, logdir=logdir, quiet=quiet)
    click.echo(_summary(result))


@click.command("lr-range")
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
@click.option("--run", "run_test", is_flag=True, help="Run an LR range test first, then read it.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the plot (default: lr-range.png next to the log).")  # fmt: skip
@click.option("--dataset", type=click.Choice(DATASETS), help="--run: offline dataset.")
@click.option("--model", type=click.Choice(MODELS), help="--run: model family.")
@click.option("--start-lr", "min_lr", type=float, help="--run: LR at the first iteration.")
@click.option("--end-lr", "lr", type=float, help="--run: LR at the last iteration.")
@click.option("--mode", "range_mode", type=click.Choice(RANGE_MODES), help="--run: LR rise.")
@click.option("--epochs", type=int, help="--run: length of the test in epochs.")
@click.option("--weight-decay", type=float, help="--run: L2 weight decay.")
@click.option("--seed", type=int, help="--run: seed of initialisation and batch order.")
@click.option("--logdir", type=click.Path(path_type=Path), help="--run: log directory (new).")
@click.option("--quiet", is_flag=True, help="--run: no progress bar.")
def lr_range_command(
    path: Path | None,
    run_test: bool,
    plot: Path | None,
    logdir: Path | None,
    quiet: bool,
    **overrides: Any,
) -> None:
    """Read the 1cycle LR bounds off an LR range test: PATH, or a test run with --run.

    PATH is a range test's log (a run directory or a log file in any format advisor
    reads) in which the LR rises over the run. Prints the maximum LR (where the loss
    stops falling or turns ragged; Smith 2018, sec. 4.1) and the minimum (max/10),
    fastai's and Lightning's suggestions for comparison, and writes a plot of the loss
    against the LR with the bounds marked.

    With --run, first runs a range test with the reference trainer (the 'range-test'
    preset; the options override it); its log directory is printed last.
    """
    from advisor.rangetest import default_plot_path
    from advisor.rangetest import describe
    from advisor.rangetest import plot_range
    from advisor.rangetest import read_range_log

    if run_test == (path is not None):
        raise click.UsageError("give a range test's log PATH, or --run to run one (not both)")
    given = sorted(k for k, v in overrides.items() if v is not None)
    if path is not None and (given or logdir is not None):
        raise click.UsageError("the options of a test run (--epochs, --seed, ...) need --run")
    if path is None:
        result = train_main(RANGE_PRESET, overrides, logdir=logdir, quiet=quiet)
        click.echo(_summary(result).rsplit("\n", 1)[0], err=True)
        path = result.logdir
    reading = read_range_log(
        path, on_problem=lambda p: click.echo(f"advisor: warning: {p}", err=True)
    )
    for line in describe(reading):
        click.echo(line)
    click.echo(f"plot: {plot_range(reading, plot or default_plot_path(path))}")
    if run_test:
        click.echo(str(path))
