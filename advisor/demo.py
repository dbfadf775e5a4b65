"""``advisor demo``: a bad run caught live, the advice followed, a better run; one process.

Offline and on CPU: the reference trainer trains a bad preset (``lr-too-low`` unless
told otherwise) into a fresh log directory while the watcher of ``advisor watch``
(:mod:`advisor.daemon`, polling) watches that directory and prints each alert as it
opens. When training ends, the first alert's top recommendation is mapped onto the
trainer's settings (:mod:`advisor.trainer.apply`), the run is repeated with it, watched
the same way, and a before/after table closes the demo. About half a minute here.

Each phase has its own watched directory and watcher, so the second watcher does not
report the first run again. The watchers read an empty configuration, so a user's
``advisor.toml`` (Slack sinks, state directory) plays no part.
Importing this module imports neither torch nor the daemon.
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from typing import TextIO

import click

from advisor.trainer.presets import PRESETS
from advisor.trainer.presets import get_preset

if TYPE_CHECKING:
    from collections.abc import Callable

    from advisor.model import Alert
    from advisor.trainer.config import TrainConfig
    from advisor.trainer.records import Evaluation
    from advisor.trainer.records import TrainResult

DEFAULT_PRESET = "lr-too-low"
POLL_S = 0.2  # the watcher polls: filesystem events are not available everywhere
CATCH_UP_S = 60.0  # after training, how long the watcher may take to read the rest
PRINT_EVERY = 5  # epochs between two progress lines


@dataclass(frozen=True, slots=True)
class Phase:
    """One watched training run."""

    result: TrainResult
    alerts: tuple[Alert, ...]


def watched_training(config: TrainConfig, root: Path, run: str, out: TextIO) -> Phase:
    """Train ``config`` into ``root/run`` while a watcher of ``root`` prints alerts."""
    from advisor.daemon.app import Daemon
    from advisor.daemon.app import WatchRequest
    from advisor.daemon.app import assemble
    from advisor.sinks.base import MemorySink
    from advisor.sinks.console import ConsoleSink
    from advisor.trainer.train import train

    root.mkdir(parents=True, exist_ok=True)
    empty = root.parent / "advisor.toml"
    empty.touch()
    memory = MemorySink()
    request = WatchRequest(roots=(root,), config=empty, poll=POLL_S)
    parts = assemble(request, out, sinks={"console": ConsoleSink(out), "memory": memory})
    daemon = Daemon(parts).start()
    try:
        result = train(config, root / run, quiet=True, callback=_progress(config, out))
        pipeline = parts.worker.pipeline

        def caught_up() -> bool:
            track = pipeline.runs.get(run)
            return track is not None and track.evaluated >= len(result.history)

        if not daemon.wait_until(caught_up, CATCH_UP_S):
            out.write("  (the watcher had not read the whole log when it was stopped)\n")
    finally:
        daemon.stop()  # delivers what is queued to the sinks
    if daemon.failure is not None:
        raise daemon.failure
    return Phase(result, tuple(memory.alerts))


def _progress(config: TrainConfig, out: TextIO) -> Callable[[Evaluation], None]:
    started = time.perf_counter()

    def show(ev: Evaluation) -> None:
        whole = abs(ev.epoch - round(ev.epoch)) < 1e-9
        if whole and (round(ev.epoch) % PRINT_EVERY == 0 or round(ev.epoch) == config.epochs):
            out.write(
                f"  epoch {round(ev.epoch):>3}/{config.epochs}  val loss {ev.val_loss:.3g}  "
                f"accuracy {ev.val_accuracy:.1%}  ({time.perf_counter() - started:.0f} s)\n"
            )
            out.flush()

    return show


def describe(config: TrainConfig) -> str:
    """``MNIST-1D, cnn 3x32, SGD LR 0.001 constant, momentum 0.9, WD 0.0005, batch 32``."""
    return (
        f"{config.dataset}, {config.model} {config.depth}x{config.width}, SGD LR "
        f"{config.lr:g} {config.schedule}, momentum {config.momentum:g}, WD "
        f"{config.weight_decay:g}, batch {config.batch_size}, {config.epochs} epochs"
    )


def run_demo(preset: str, seed: int, root: Path, out: TextIO) -> tuple[Phase, Phase | None]:
    """The demo; returns the watched run and, when there was advice to follow, the rerun."""
    from advisor.e2e import first_advice
    from advisor.e2e import range_bounds
    from advisor.sinks.text import recommendation_line
    from advisor.trainer.apply import NotApplicableError
    from advisor.trainer.apply import apply_recommendation

    p = get_preset(preset)
    config = p.config.replace(seed=seed)
    out.write(f"Training preset '{preset}' ({p.summary})\n  {describe(config)}\n"
              f"while the advisor watches {root / 'before'}:\n")  # fmt: skip
    run = f"{preset}-seed{seed}"
    before = watched_training(config, root / "before", run, out)
    alert, top = first_advice(before.alerts)
    if alert is None or top is None:
        out.write("\nNo alert opened: nothing to change.\n")
        return before, None
    out.write(f"\nFollowing the first alert's top recommendation ({alert.rule}): "
              f"{recommendation_line(top)}\n")  # fmt: skip

    def range_test(cfg: TrainConfig) -> tuple[float, float]:
        out.write(f"  it needs an LR range test: running one in {root / 'range-test'}\n")
        high, low = range_bounds(cfg, root / "range-test" / run)
        out.write(f"  1cycle bounds read off it: max LR {high:.3g}, min LR {low:.3g}\n")
        return high, low

    try:
        applied = apply_recommendation(config, top, before.result.history, range_test)
    except NotApplicableError as exc:
        out.write(f"The reference trainer cannot apply it: {exc}\n")
        return before, None
    out.write(f"Retraining with {applied.change}, watched in {root / 'after'}:\n")
    after = watched_training(applied.config, root / "after", run, out)
    out.write("\n" + "\n".join(table(before, after, applied.change)) + "\n")
    return before, after


def table(before: Phase, after: Phase, change: str) -> list[str]:
    """The before/after table (Markdown)."""
    from advisor.model import AlertEvent

    def alerts(ph: Phase) -> str:
        got = [f"{a.finding.diagnosis.value} (epoch {a.epoch:.3g})" if a.epoch is not None
               else a.finding.diagnosis.value
               for a in ph.alerts if a.event is AlertEvent.OPENED]  # fmt: skip
        return ", ".join(got) or "none"

    b, a = before.result, after.result
    rows = [
        ("", "before", "after"),
        ("change applied", "-", change),
        ("epochs", f"{b.epochs_run:g}", f"{a.epochs_run:g}"),
        ("final val loss", f"{b.final_val_loss:.3g}", f"{a.final_val_loss:.3g}"),
        ("final val accuracy", f"{b.final_val_accuracy:.1%}", f"{a.final_val_accuracy:.1%}"),
        ("alerts opened", alerts(before), alerts(after)),
    ]
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, width, strict=True)) + " |"
             for r in rows]  # fmt: skip
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in width) + "|")
    return lines


@click.command("demo")
@click.option("--preset", type=click.Choice(sorted(set(PRESETS) - {"range-test"})),
              default=DEFAULT_PRESET, show_default=True, help="The run to watch.")  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of both runs.")
@click.option("--logdir", type=click.Path(file_okay=False, path_type=Path),
              help="Keep the logs here (default: a temporary directory).")  # fmt: skip
def demo_command(preset: str, seed: int, logdir: Path | None) -> None:
    """Watch a bad run live, follow the advice, retrain, compare (offline, CPU).

    Trains a preset (default lr-too-low) while the advisor watches its log directory
    and prints alerts as they open; then applies the first alert's top recommendation,
    retrains, and prints a before/after table of the final validation loss and
    accuracy. Needs the 'trainer' extra; about half a minute on one CPU core.
    """
    started = time.perf_counter()
    if logdir is not None and logdir.exists() and any(logdir.iterdir()):
        raise click.UsageError(f"{logdir} is not empty; give a new directory")
    try:
        if logdir is not None:
            run_demo(preset, seed, logdir, sys.stdout)
        else:
            with tempfile.TemporaryDirectory(prefix="advisor-demo-") as tmp:
                run_demo(preset, seed, Path(tmp), sys.stdout)
    except ImportError as exc:  # torch, scikit-learn or mnist1d is missing
        from advisor.errors import InputError

        raise InputError(
            f"the demo needs the 'trainer' extra ({exc}); pip install 'advisor[trainer]'"
        ) from exc
    click.echo(f"demo done in {time.perf_counter() - started:.0f} s")
