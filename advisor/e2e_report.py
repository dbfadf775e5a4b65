"""``advisor e2e`` from the shell: the tables of what was measured and the targets' verdicts.

The tables are Markdown, so that the README's copy is the command's output. See
:mod:`advisor.e2e` for what is run and for what counts as a pass. Importing this module
imports neither torch nor the analysis (``advisor --help`` stays fast); the command
imports them when it runs.
"""

from __future__ import annotations

import math
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from advisor.e2e import Case
    from advisor.e2e import Report


CASE_COLUMNS = (
    "preset",
    "seed",
    "alerts opened (epoch)",
    "diagnosis",
    "top recommendation",
    "applied",
    "val loss before → after",
    "accuracy before → after",
    "loss improved",
)
HEALTHY_COLUMNS = (
    "seed",
    "good: alerts opened",
    "good: end of log",
    "good: acc (epochs)",
    "range test: max / min LR",
    "1cycle: acc (epochs)",
    "val loss good / 1cycle",
)


@dataclass(frozen=True, slots=True)
class Target:
    """One target of issue 6 and whether the measurements meet it."""

    name: str
    passed: bool
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.name}: {self.detail}"


def _loss(x: float) -> str:
    return "NaN" if math.isnan(x) else f"{x:.3g}"


def _acc(x: float) -> str:
    return f"{100 * x:.1f}%"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def case_table(cases: tuple[Case, ...]) -> list[str]:
    """One row per (bad preset, seed)."""
    from advisor.sinks.text import recommendation_line

    out = [_row(list(CASE_COLUMNS)), "|" + "---|" * len(CASE_COLUMNS)]
    for c in cases:
        b = c.before.result
        a = c.after.result if c.after is not None else None
        verdict = f"✓ {c.expected.value}" if c.diagnosed else f"✗ (expected {c.expected.value})"
        out.append(_row([
            c.preset, str(c.seed), c.before.timeline(), verdict,
            recommendation_line(c.top) if c.top is not None else "-", c.change,
            f"{_loss(b.final_val_loss)} → {_loss(a.final_val_loss) if a else '-'}",
            f"{_acc(b.final_val_accuracy)} → {_acc(a.final_val_accuracy) if a else '-'}",
            "yes" if c.loss_improved else "no",
        ]))  # fmt: skip
    return out


def healthy_table(report: Report) -> list[str]:
    """One row per seed of ``good``, and one per seed of the 1cycle headline."""
    out = [_row(list(HEALTHY_COLUMNS)), "|" + "---|" * len(HEALTHY_COLUMNS)]
    for h, c in zip(report.healthy, report.cycles, strict=True):
        g = h.run.result
        out.append(_row([
            str(h.seed), h.run.timeline(), h.run.summary.diagnosis.value,
            f"{_acc(g.final_val_accuracy)} ({g.epochs_run:g})",
            f"{c.max_lr:.3g} / {c.min_lr:.3g}",
            f"{_acc(c.result.final_val_accuracy)} ({c.epochs})",
            f"{_loss(g.final_val_loss)} / {_loss(c.result.final_val_loss)}",
        ]))  # fmt: skip
    return out


def targets(report: Report) -> list[Target]:
    """The verdict on each target of issue 6."""
    from advisor.e2e import IMPROVED_SHARE
    from advisor.e2e import LR_PRESETS
    from advisor.e2e import MIN_ACC_GAIN

    out = []
    per: dict[str, list[bool]] = {}
    for c in report.cases:
        per.setdefault(c.preset, []).append(c.diagnosed)
    if report.healthy:
        per["good"] = [h.diagnosed for h in report.healthy]
    out.append(Target(
        "every preset diagnosed correctly in every seed",
        all(all(v) for v in per.values()),
        ", ".join(f"{p} {sum(v)}/{len(v)}" for p, v in per.items()),
    ))  # fmt: skip
    improved = [c.loss_improved for c in report.cases]
    share = sum(improved) / len(improved) if improved else 0.0
    out.append(Target(
        f"top recommendation improves the final val loss in >= {IMPROVED_SHARE:.0%} of pairs",
        share >= IMPROVED_SHARE,
        f"{sum(improved)}/{len(improved)} ({share:.0%}); not improved: "
        + (", ".join(f"{c.preset} s{c.seed}" for c in report.cases if not c.loss_improved)
           or "none"),
    ))  # fmt: skip
    lr_cases = [c for c in report.cases if c.preset in LR_PRESETS]
    if lr_cases:
        gains = {p: [c.acc_gain for c in lr_cases if c.preset == p] for p in LR_PRESETS}
        out.append(Target(
            f"LR presets: accuracy up >= {100 * MIN_ACC_GAIN:.0f} points in every seed",
            all(c.acc_gain >= MIN_ACC_GAIN for c in lr_cases),
            "; ".join(f"{p} " + ", ".join(f"{100 * g:+.1f}" for g in v)
                      for p, v in gains.items() if v),
        ))  # fmt: skip
    if report.cycles:
        good = statistics.mean(h.run.result.final_val_accuracy for h in report.healthy)
        cyc = statistics.mean(c.result.final_val_accuracy for c in report.cycles)
        ge = report.healthy[0].run.result.epochs_run
        ce = report.cycles[0].epochs
        out.append(Target(
            "1cycle with lr-range bounds reaches good's final accuracy in <= half the epochs",
            cyc >= good and 2 * ce <= ge,
            f"mean over {len(report.cycles)} seeds: 1cycle {_acc(cyc)} in {ce} epochs, "
            f"constant LR {_acc(good)} in {ge:g}",
        ))  # fmt: skip
    return out


@click.command("e2e")
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True,
              help="Seeds per preset (0, 1, ...).")  # fmt: skip
@click.option("--quick", is_flag=True,
              help="One seed, shortened lr-too-low, overfit and nan only (seconds).")  # fmt: skip
@click.option("--logdir", type=click.Path(file_okay=False, path_type=Path),
              help="Keep the logs here (default: a temporary directory).")  # fmt: skip
def e2e_command(seeds: int, quick: bool, logdir: Path | None) -> None:
    """Run every bad preset, follow the advisor's top recommendation, rerun, compare.

    Also checks that 'good' raises no alert, and that 1cycle between the bounds of an
    LR range test reaches good's final accuracy in half the epochs. Prints the tables
    and one PASS/FAIL line per target; exits 1 when a target fails. The full run (3
    seeds) takes about 4 minutes on one CPU core.
    """
    from advisor.e2e import BAD_PRESETS
    from advisor.e2e import run_e2e

    started = time.perf_counter()
    chosen = [0] if quick else list(range(seeds))

    def echo(line: str) -> None:
        click.echo(f"  {line}", err=True)

    if logdir is not None:
        report = run_e2e(chosen, logdir, quick=quick, echo=echo)
    else:
        with tempfile.TemporaryDirectory(prefix="advisor-e2e-") as tmp:
            report = run_e2e(chosen, Path(tmp), quick=quick, echo=echo)
    lines = case_table(report.cases)
    if report.healthy:
        lines += ["", *healthy_table(report)]
    verdicts = targets(report)
    lines += ["", *(t.line() for t in verdicts)]
    if quick:
        lines.append("(quick: shortened presets, one seed, no good or 1cycle runs; the targets "
                     "are judged on the full run, advisor e2e)")  # fmt: skip
    for line in lines:
        click.echo(line)
    names = ", ".join(BAD_PRESETS) if not quick else "shortened lr-too-low, overfit, nan"
    click.echo(f"({names}; seeds {', '.join(map(str, chosen))}; "
               f"{time.perf_counter() - started:.0f} s)", err=True)  # fmt: skip
    if not all(t.passed for t in verdicts):
        sys.exit(1)
