"""``advisor status``: what a daemon's state directory says, read beside the daemon.

The state file is replaced atomically (``StateDir.save``) and the outboxes are only
listed, so reading while the daemon runs sees one whole state and changes nothing. The
state is as of its last write (``saved_at``): at most a few seconds behind a busy
daemon, and rewritten now and then by an idle one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from datetime import timezone
from pathlib import Path
from typing import Any

from advisor.errors import InputError
from advisor.model import Finding
from advisor.pipeline import parse_state
from advisor.sinks.outbox import outbox_counts
from advisor.throttle import Status

from .state import STATE_NAME
from .state import read_state


@dataclass(frozen=True, slots=True)
class OpenAlert:
    """An alert open for a run: its rule and the finding it last said."""

    rule: str
    finding: Finding


@dataclass(frozen=True, slots=True)
class RunStatus:
    """One watched run.

    Attributes:
        run: its name.
        evaluated: validation evaluations analysed.
        last_step: the step of the last one, if any.
        open: its open alerts, most severe first.
    """

    run: str
    evaluated: int
    last_step: int | None
    open: tuple[OpenAlert, ...]


@dataclass(frozen=True, slots=True)
class DaemonStatus:
    """A state directory's runs, when it was written, and what waits in the outboxes.

    Attributes:
        runs: by name.
        saved_at: seconds since the epoch, when the daemon wrote the state.
        outbox: sink name → (alerts waiting to be delivered, alerts the sink rejected).
    """

    runs: tuple[RunStatus, ...]
    saved_at: float | None
    outbox: Mapping[str, tuple[int, int]]


_RANK = {"critical": 0, "warning": 1, "info": 2}


def read_status(directory: Path) -> DaemonStatus:
    """Read a ``--state-dir`` without locking or changing it.

    Raises:
        InputError: no state there, or one this version cannot read (one line).
    """
    path = Path(directory) / STATE_NAME
    if not path.is_file():
        raise InputError(
            f"{directory}: no advisor state here (a daemon started with --state-dir "
            f"{directory} writes one once it has read the logs)"
        )
    saved = read_state(path)
    runs: list[RunStatus] = []
    if saved.pipeline is not None:
        try:
            tracks, said = parse_state(saved.pipeline)
        except ValueError as exc:
            raise InputError(f"{path}: not a state this advisor reads ({exc})") from None
        for run in sorted(tracks.keys() | said.runs.keys()):
            t = tracks.get(run)
            open_ = sorted(
                (
                    OpenAlert(rule, track.finding)
                    for rule, track in said.runs.get(run, {}).items()
                    if track.status is Status.OPEN
                ),
                key=lambda a: (_RANK[a.finding.severity.value], a.rule),
            )
            runs.append(
                RunStatus(
                    run,
                    t.evaluated if t else 0,
                    t.last_step if t else None,
                    tuple(open_),
                )
            )
    boxes = Path(directory) / "outbox"
    outbox = (
        {d.name: outbox_counts(d) for d in sorted(boxes.iterdir()) if d.is_dir()}
        if boxes.is_dir()
        else {}
    )
    return DaemonStatus(tuple(runs), saved.stats.get("saved_at"), outbox)


def status_lines(status: DaemonStatus, now: float, *, every_run: bool = False) -> list[str]:
    """The text of ``advisor status``: a row per run (only those with an open alert
    unless ``every_run``), then a line of totals and one per outbox."""
    shown = [r for r in status.runs if every_run or r.open]
    lines = []
    if shown:
        width = max(len("RUN"), *(len(r.run) for r in shown))
        lines.append(f"{'RUN':<{width}}  {'EVALS':>6}  {'LAST STEP':>10}  OPEN ALERTS")
        for r in shown:
            step = "-" if r.last_step is None else str(r.last_step)
            head = f"{r.run:<{width}}  {r.evaluated:>6}  {step:>10}  "
            if not r.open:
                lines.append(head + "-")
            for i, a in enumerate(r.open):
                f = a.finding
                said = f"{f.diagnosis.value} {f.severity.value} ({a.rule}, step {f.step}): "
                lines.append((head if i == 0 else " " * len(head)) + said + f.message)
    alerted = sum(1 for r in status.runs if r.open)
    when = "time unknown"
    if status.saved_at is not None:
        ago = max(0.0, now - status.saved_at)
        stamp = datetime.fromtimestamp(status.saved_at, timezone.utc)
        when = f"{stamp:%Y-%m-%d %H:%M:%S} UTC, {_ago(ago)} ago"
    lines.append(f"{len(status.runs)} runs, {alerted} with an open alert; state written {when}")
    for sink, (waiting, rejected) in status.outbox.items():
        lines.append(f"outbox {sink}: {waiting} waiting, {rejected} rejected")
    return lines


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def status_dicts(status: DaemonStatus) -> list[dict[str, Any]]:
    """``advisor status --json``: one object per run, then one for the whole state."""
    out: list[dict[str, Any]] = [
        {
            "type": "run",
            "run": r.run,
            "evaluated": r.evaluated,
            "last_step": r.last_step,
            "open": [
                {
                    "rule": a.rule,
                    "diagnosis": a.finding.diagnosis.value,
                    "severity": a.finding.severity.value,
                    "step": a.finding.step,
                    "message": a.finding.message,
                }
                for a in r.open
            ],
        }
        for r in status.runs
    ]
    out.append(
        {
            "type": "status",
            "runs": len(status.runs),
            "alerted_runs": sum(1 for r in status.runs if r.open),
            "saved_at": status.saved_at,
            "outbox": {k: {"waiting": w, "rejected": d} for k, (w, d) in status.outbox.items()},
        }
    )
    return out
