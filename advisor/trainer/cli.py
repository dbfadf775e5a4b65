"""``advisor train`` and ``advisor lr-range --run``: the reference trainer from the shell.

Importing this module does not import torch (``train.py`` is imported inside the
commands), so ``advisor --help`` stays fast and works without the ``trainer`` extra.
Register the commands on the main group with ``cli.add_command(train_command)`` and
``cli.add_command(lr_range_run_command)``.

``advisor lr-range --run`` only runs a range test and prints where its log is; reading
the maximum and minimum LR off the curve is :mod:`advisor.core.lrrange`'s job.
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
@click.option("--momentum", type=float, help="SGD momentum (1cycle: the maximum).")
@click.option("--nesterov/--no-nesterov", default=None, help="Nesterov momentum.")
@click.option("--weight-decay", type=float, help="L2 weight decay.")
@click.option("--batch-size", type=int, help="Examples per iteration.")
@click.option("--epochs", type=int, help="Passes over the training set.")
@click.option("--schedule", type=click.Choice(SCHEDULES), help="LR schedule.")
@click.option("--dataset", type=click.Choice(DATASETS), help="Offline dataset.")
@click.option("--model", type=click.Choice(MODELS), help="Model family.")
@click.option("--width", type=int, help="Hidden units or channels per layer.")
@click.option("--depth", type=int, help="Hidden or convolution layers.")
@click.option("--n-train", type=int, help="Keep only this many training examples.")
@click.option("--seed", type=int, help="Seed of initialisation and batch order.")
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
@click.option("--run", "run_test", is_flag=True, help="Run an LR range test and log it.")
@click.option("--dataset", type=click.Choice(DATASETS), help="Offline dataset.")
@click.option("--model", type=click.Choice(MODELS), help="Model family.")
@click.option("--start-lr", "min_lr", type=float, help="LR at the first iteration.")
@click.option("--end-lr", "lr", type=float, help="LR at the last iteration.")
@click.option("--mode", "range_mode", type=click.Choice(RANGE_MODES), help="How the LR rises.")
@click.option("--epochs", type=int, help="Length of the test in epochs.")
@click.option("--weight-decay", type=float, help="L2 weight decay.")
@click.option("--seed", type=int, help="Seed of initialisation and batch order.")
@click.option("--logdir", type=click.Path(path_type=Path), help="Log directory (new).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def lr_range_run_command(
    run_test: bool, logdir: Path | None, quiet: bool, **overrides: Any
) -> None:
    """Run an LR range test with the reference trainer and print its log directory.

    The LR rises over a short run (the 'range-test' preset, options override it) while
    the validation loss is logged every few iterations. The last line printed is the
    log directory; reading the 1cycle LR bounds off it is a separate analysis.
    """
    if not run_test:
        raise click.UsageError("nothing to do: pass --run to run an LR range test")
    result = train_main(RANGE_PRESET, overrides, logdir=logdir, quiet=quiet)
    click.echo(_summary(result).rsplit("\n", 1)[0], err=True)
    click.echo(str(result.logdir))
