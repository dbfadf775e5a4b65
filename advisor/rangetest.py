"""``advisor lr-range PATH``: read the 1cycle bounds off a range-test log, and plot them.

The reading is :func:`advisor.core.lrrange.analyze_range` (paper-notes §4): the maximum
LR is where the validation loss stops falling or turns ragged, the minimum a tenth of
it. fastai's and Lightning's suggestions on the same curve are printed for comparison:
they answer another question (one constant LR, read off the training loss of an
exponential sweep) and sit below the paper's maximum.

matplotlib is imported inside :func:`plot_range`, on an Agg canvas without pyplot.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from advisor.api import load_store
from advisor.config import Settings
from advisor.config import load_settings
from advisor.core.lrrange import LRRange
from advisor.core.lrrange import analyze_range
from advisor.errors import InputError
from advisor.model import F64
from advisor.model import Problem
from advisor.model import Role
from advisor.model import RunCurves

PLOT_NAME = "lr-range.png"


@dataclass(frozen=True, slots=True)
class RangeReading:
    """One range-test run and what it says.

    Attributes:
        path: the log path given.
        curves: the run's curves.
        result: the bounds and the other tools' suggestions.
    """

    path: Path
    curves: RunCurves
    result: LRRange

    @property
    def run(self) -> str:
        return self.curves.run


def read_range_log(
    path: Path,
    settings: Settings | None = None,
    on_problem: Callable[[Problem], None] | None = None,
) -> RangeReading:
    """Read the one LR range test under ``path`` (``on_problem`` hears of each input
    problem, such as a corrupt or unfinished record).

    Raises:
        InputError: ``path`` is unreadable, holds no log, no range test (the reason is
            named), or several.
    """
    settings = settings or load_settings(None)
    store = load_store([path], settings, on_problem)
    runs = list(store.runs())
    if not runs:
        raise InputError(f"{path}: no training log found")
    found: list[RangeReading] = []
    why: list[str] = []
    for run in runs:
        rc = store.curves(run, settings.roles)
        got = analyze_range(rc)
        if got is not None:
            found.append(RangeReading(path, rc, got))
        else:
            why.append(f"{run}: {_not_a_range_test(rc)}")
    if not found:
        raise InputError(f"{path}: not an LR range test ({'; '.join(why[:3])})")
    if len(found) > 1:
        names = ", ".join(r.run for r in found[:4])
        raise InputError(f"{path}: {len(found)} range tests ({names}); give one run's directory")
    return found[0]


def _not_a_range_test(rc: RunCurves) -> str:
    lr = rc.first(Role.LR)
    if lr is None:
        return "no learning-rate scalar is logged"
    if rc.first(Role.VAL_LOSS) is None and rc.first(Role.TRAIN_LOSS) is None:
        return "no loss is logged"
    return "the LR does not rise at least 10x over 8 or more logged points"


def describe(reading: RangeReading) -> list[str]:
    """The lines ``advisor lr-range`` prints."""
    r = reading.result
    steps = _lr_steps(reading.curves)
    return [
        f"LR range test: {reading.run} ({r.schedule} LR, {steps} steps; loss read: {r.loss_tag})",
        f"1cycle bounds (Smith 2018, sec. 4.1): max LR {r.max_lr:.3g}  "
        f"min LR {r.min_lr:.3g} (max/10)",
        "for comparison, one constant LR: "
        f"fastai valley {_g(r.fastai_valley)}, steep {_g(r.fastai_steep)}, "
        f"minimum/10 {_g(r.fastai_minimum)}; Lightning {_g(r.lightning)}",
        "with the reference trainer: advisor train --schedule 1cycle "
        f"--lr {r.max_lr:.3g} --min-lr {r.min_lr:.3g} --momentum 0.95",
    ]


def _g(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.3g}"


def _lr_steps(rc: RunCurves) -> int:
    lr = rc.first(Role.LR)
    return int(lr.step[-1]) if lr is not None and len(lr) else 0


def default_plot_path(log: Path) -> Path:
    """``lr-range.png`` next to the log (in it, for a directory), else in the cwd."""
    folder = log if log.is_dir() else log.parent
    if os.access(folder, os.W_OK):
        return folder / PLOT_NAME
    return Path.cwd() / PLOT_NAME


def loss_against_lr(reading: RangeReading) -> tuple[F64, F64]:
    """The loss the analysis read, and the LR at each of its points (log-interpolated)."""
    rc = reading.curves
    loss = next(c for c in rc.curves.values() if c.tag == reading.result.loss_tag)
    lr = rc.first(Role.LR)
    assert lr is not None  # a range test has one
    ok = np.isfinite(lr.value) & (lr.value > 0)
    log_lr = np.interp(loss.step.astype(np.float64), lr.step[ok].astype(np.float64),
                       np.log(lr.value[ok]))  # fmt: skip
    return np.exp(log_lr), loss.value.astype(np.float64)


def plot_range(reading: RangeReading, out: Path) -> Path:
    """Draw the loss against the LR with the bounds marked; return ``out``.

    Raises:
        InputError: ``out`` cannot be written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    r = reading.result
    lrs, loss = loss_against_lr(reading)
    fig = Figure(figsize=(8, 5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(lrs, loss, color="tab:blue", marker=".", ms=3, lw=1, label=r.loss_tag)
    marks = (
        (r.max_lr, "tab:red", "-", f"max LR {r.max_lr:.3g}"),
        (r.min_lr, "tab:green", "-", f"min LR {r.min_lr:.3g}"),
        (r.fastai_valley, "tab:gray", ":", f"fastai valley {_g(r.fastai_valley)}"),
        (r.lightning, "tab:gray", "-.", f"Lightning {_g(r.lightning)}"),
    )
    for x, colour, style, label in marks:
        if math.isfinite(x):
            ax.axvline(x, color=colour, ls=style, lw=1.5, label=label)
    if r.schedule == "exponential":
        ax.set_xscale("log")
    fin = loss[np.isfinite(loss)]
    if fin.size:
        best = float(fin.min())
        top = min(float(fin.max()), 4.0 * best if best > 0 else float(fin.max()))
        ax.set_ylim(best - 0.05 * (top - best), top + 0.05 * (top - best) + 1e-12)
    ax.set_xlabel(f"learning rate ({r.schedule} sweep)")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=9)
    ax.set_title(f"LR range test {reading.run}: 1cycle between {r.min_lr:.3g} and "
                 f"{r.max_lr:.3g}", loc="left", fontsize=11)  # fmt: skip
    try:
        fig.savefig(out)
    except OSError as exc:
        raise InputError(f"cannot write the plot {out}: {exc.strerror or exc}") from None
    return out
