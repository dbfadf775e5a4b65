"""Plots of replayed runs: one PNG per run and an ``index.html`` that links them.

Each plot shows what the advisor saw and said: the validation signal and the training
loss, the trend fitted to the current phase with its extrapolation over the next half of
the run and a 95% interval (``trendband``), and a marker at every alert event.
matplotlib is imported inside the functions that draw, so ``import advisor`` needs
neither it nor a display; figures are drawn on an Agg canvas without pyplot, so no
global backend state is touched.
"""

from __future__ import annotations

import hashlib
import html
import re
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import numpy as np

from advisor.errors import InputError
from advisor.model import F64
from advisor.model import Alert
from advisor.model import AlertEvent
from advisor.model import Diagnosis
from advisor.model import Direction
from advisor.model import Recommendation
from advisor.model import Role
from advisor.model import RunCurves
from advisor.model import RunSummary
from advisor.replay import RunReplay
from advisor.sinks.text import recommendation_line
from advisor.trendband import trend_band

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# A y axis spanning more than this many decades is drawn in log scale.
LOG_DECADES = 1.5
_EVENT_COLOURS = {
    AlertEvent.OPENED: "tab:red",
    AlertEvent.UPDATED: "tab:orange",
    AlertEvent.RESOLVED: "tab:green",
}
# Index order: problems first, the worst first; healthy runs last.
_RANK = {
    Diagnosis.INSTABILITY: 0,
    Diagnosis.OVERFITTING: 1,
    Diagnosis.UNDERFITTING: 2,
    Diagnosis.UNKNOWN: 3,
    Diagnosis.LR_RANGE_TEST: 4,
    Diagnosis.HEALTHY: 5,
}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def write_report(results: Iterable[RunReplay], out_dir: Path) -> Path:
    """Write one PNG per run and an ``index.html`` linking them; return the index path.

    Runs are drawn as they arrive, so only their summaries are kept.

    Raises:
        InputError: ``out_dir`` cannot be created or written.
    """
    rows: list[tuple[RunSummary, str]] = []
    taken: set[str] = set()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for result in results:
            name = slug_of(result.summary.run, taken) + ".png"
            plot_run(result, out_dir / name)
            rows.append((result.summary, name))
        index = out_dir / "index.html"
        index.write_text(index_html(rows), encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write the report to {out_dir}: {exc.strerror or exc}") from None
    return index


def slug_of(run: str, taken: set[str]) -> str:
    """A file-name stem for a run: safe characters only, unique within ``taken``.

    A lossy stem (``a/b`` → ``a_b``) gets a hash of the run name, so that ``a/b`` and
    ``a_b`` cannot collide; uniqueness is checked case-insensitively for filesystems that
    ignore case. The stem is added to ``taken``.
    """
    stem = _UNSAFE.sub("_", run).strip("._-")[:80] or "run"
    if stem != run or stem.casefold() in taken:
        stem = f"{stem}-{hashlib.sha256(run.encode()).hexdigest()[:8]}"
    unique, n = stem, 1
    while unique.casefold() in taken:
        n += 1
        unique = f"{stem}-{n}"
    taken.add(unique.casefold())
    return unique


def plot_run(result: RunReplay, path: Path) -> None:
    """Draw one run to a PNG at ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rc, summary = result.curves, result.summary
    fig = Figure(figsize=(11, 6.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, 2, height_ratios=(5, 1.2), width_ratios=(5, 3))
    ax = fig.add_subplot(grid[0, :])
    main, twins = _plot_curves(ax, rc)
    band = trend_band(rc)
    if band is not None:
        ax.plot(band.fit_step, band.fit, color="tab:purple", lw=2, label="fitted trend")
        ax.plot(band.step, band.mid, color="tab:purple", lw=2, ls="--", label="extrapolation")
        ax.fill_between(band.step, band.lo, band.hi, color="tab:purple", alpha=0.18,
                        lw=0, label="95% interval")  # fmt: skip
    _log_if_wide(ax, main)
    if band is not None:
        _keep_in_view(ax, main)
    _mark_alerts(ax, result.alerts)
    lr = rc.first(Role.LR)
    if lr is not None:
        lr_ax = _twin(ax, twins, "learning rate")
        lr_ax.plot(lr.step, lr.value, color="tab:gray", lw=1, ls=":", label=_plain(lr.tag))
        if not _log_if_wide(lr_ax, [lr.value]):
            # From zero, so that a constant LR reads as constant, not as noise.
            fin = lr.value[np.isfinite(lr.value)]
            top = float(fin.max()) if fin.size else 0.0
            lr_ax.set_ylim(0.0, top * 1.15 if top > 0 else 1.0)
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    ax.set_title(_plain(f"{summary.run}: {summary.diagnosis.value} at the end of the log "
                        f"(step {summary.last_step})"), loc="left", fontsize=12)  # fmt: skip
    _advice_box(fig.add_subplot(grid[1, 0]), summary)
    _legend(fig.add_subplot(grid[1, 1]), fig)
    fig.savefig(path)


def _plot_curves(ax: Axes, rc: RunCurves) -> tuple[list[F64], int]:
    """The validation signal and the training loss.

    The training loss shares the left axis with a validation loss; next to a validation
    metric (accuracy) it gets its own axis on the right.

    Returns:
        The values drawn on the left axis, and how many right axes were added.
    """
    val = rc.first(Role.VAL_LOSS) or rc.first(Role.VAL_METRIC)
    train = rc.first(Role.TRAIN_LOSS)
    main: list[F64] = []
    twins = 0
    if train is not None:
        beside = val is not None and val.role.direction is not Direction.MIN
        side = _twin(ax, 0, "training loss") if beside else ax
        twins += beside
        side.plot(train.step, train.value, color="tab:blue", alpha=0.5, lw=1,
                  label=_plain(f"training: {train.tag}"))  # fmt: skip
        if not beside:
            main.append(train.value)
    if val is not None:
        ax.plot(val.step, val.value, color="black", lw=1.5, marker="." if len(val) <= 80 else "",
                label=_plain(f"validation: {val.tag}"))  # fmt: skip
        main.append(val.value)
        bad = val.step[~np.isfinite(val.value)]
        if bad.size:
            ax.plot(bad, np.full(bad.size, 0.98), "x", color="tab:red",
                    transform=ax.get_xaxis_transform(), label="NaN/inf")  # fmt: skip
        ax.set_ylabel(_plain(val.tag))
    return main, twins


def _twin(ax: Axes, index: int, label: str) -> Axes:
    """A secondary y axis on the right; the second one is offset outwards."""
    twin = ax.twinx()
    if index:
        twin.spines["right"].set_position(("axes", 1.0 + 0.09 * index))
    twin.set_ylabel(label)
    return twin


def _log_if_wide(ax: Axes, values: list[F64]) -> bool:
    """Log scale when the finite values are all positive and span > ``LOG_DECADES``."""
    every = np.concatenate([v[np.isfinite(v)] for v in values] or [np.zeros(0)])
    wide = bool(every.size and every.min() > 0 and every.max() > every.min() * 10**LOG_DECADES)
    if wide:
        ax.set_yscale("log")
    return wide


def _keep_in_view(ax: Axes, values: list[F64]) -> None:
    """Clip the y range so that a wide interval cannot squash the curves themselves."""
    fin = np.concatenate([v[np.isfinite(v)] for v in values] or [np.zeros(0)])
    if not fin.size:
        return
    lo, hi = ax.get_ylim()
    span = float(fin.max() - fin.min()) or abs(float(fin.max())) or 1.0
    floor = float(fin.min()) - span if ax.get_yscale() == "linear" else float(fin.min()) / 10
    ax.set_ylim(max(lo, floor), min(hi, float(fin.max()) + span))


def _mark_alerts(ax: Axes, alerts: Iterable[Alert]) -> None:
    for alert in alerts:
        colour = _EVENT_COLOURS[alert.event]
        step = alert.finding.step
        ax.axvline(step, color=colour, lw=1.2, alpha=0.8)
        text = f"{alert.finding.diagnosis.value} {alert.event.value}"
        if alert.event is AlertEvent.UPDATED:
            text += f" ({alert.finding.severity.value})"
        ax.text(step, 0.97, text, rotation=90, ha="right", va="top", fontsize=8, color=colour,
                transform=ax.get_xaxis_transform())  # fmt: skip


def _advice_box(ax: Axes, summary: RunSummary) -> None:
    ax.axis("off")
    lines = ["What to change (at the end of the log):"]
    for i, rec in enumerate(summary.recommendations[:2], start=1):
        lines.extend(textwrap.wrap(f"{i}. {rec_text(rec)}", 76, subsequent_indent="   ",
                                   max_lines=2, placeholder=" ..."))  # fmt: skip
        lines.extend(textwrap.wrap(rec.why, 76, initial_indent="   ", subsequent_indent="   ",
                                   max_lines=2, placeholder=" ..."))  # fmt: skip
    if len(lines) == 1:
        lines.append("nothing")
    box = {"boxstyle": "round", "facecolor": "#f4f4f4", "edgecolor": "#bbbbbb"}
    ax.text(0.0, 1.0, _plain("\n".join(lines)), va="top", ha="left", fontsize=9,
            family="monospace", transform=ax.transAxes, bbox=box)  # fmt: skip


def _legend(ax: Axes, fig: Figure) -> None:
    """Every labelled line of the plot in one legend below it, with the alert colours."""
    from matplotlib.lines import Line2D

    ax.axis("off")
    handles, labels = [], []
    for other in fig.axes:
        h, lab = other.get_legend_handles_labels()
        handles += h
        labels += lab
    for event, colour in _EVENT_COLOURS.items():
        handles.append(Line2D([], [], color=colour))
        labels.append(f"alert {event.value}")
    ax.legend(handles, labels, loc="upper right", ncols=2, fontsize=8, frameon=False)


def rec_text(rec: Recommendation) -> str:
    """``raise weight_decay ×10`` when only the factor is known."""
    text = recommendation_line(rec)
    if rec.suggested is None and rec.factor is not None:
        text += f" ×{rec.factor:.3g}"
    return text


def _plain(text: str) -> str:
    # matplotlib reads $...$ as mathematics; a run or tag name is plain text.
    return text.replace("$", r"\$")


def index_html(rows: Iterable[tuple[RunSummary, str]]) -> str:
    """The index page: a table of every run, problems first, each linking its plot."""
    ordered = sorted(rows, key=lambda r: (_RANK.get(r[0].diagnosis, 3), r[0].run))
    body = []
    for s, png in ordered:
        link = html.escape(quote(png), quote=True)
        first = min(s.first_alert_step.items(), key=lambda kv: kv[1], default=None)
        alert = f"{first[0]} at step {first[1]}" if first else "none"
        top = rec_text(s.recommendations[0]) if s.recommendations else ""
        body.append(
            f'<tr class="{html.escape(s.diagnosis.value)}">'
            f'<td><a href="{link}"><img src="{link}" alt="plot" width="330"></a></td>'
            f'<td><a href="{link}">{html.escape(s.run)}</a></td>'
            f"<td>{html.escape(s.diagnosis.value)}</td><td>{html.escape(alert)}</td>"
            f"<td>{html.escape(top)}</td></tr>"
        )
    return _PAGE.format(count=len(body), rows="\n".join(body))


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>advisor replay report</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 0.4em 0.8em; text-align: left; }}
tr.instability td:nth-child(3) {{ color: #b00; font-weight: bold; }}
tr.overfitting td:nth-child(3), tr.underfitting td:nth-child(3) {{ color: #c60; }}
tr.healthy td:nth-child(3) {{ color: #080; }}
</style></head><body>
<h1>advisor replay report</h1>
<p>{count} runs, problems first. Click a plot to enlarge it.</p>
<table>
<tr><th>plot</th><th>run</th><th>diagnosis</th><th>first alert</th><th>top recommendation</th></tr>
{rows}
</table></body></html>
"""
