"""Helpers shared by the line-based loaders' tests: points as comparable tuples, a drain."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck
from hypothesis import settings

from advisor.model import Batch

# (tag, step, repr(wall_time), repr(value)): repr keeps NaN comparable and exact.
Point = tuple[str, int, str, str]
FAST = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def points(batch: Batch) -> list[Point]:
    """A batch's points in order."""
    s = batch.scalars
    return [
        (s.tags[int(t)], int(st_), repr(float(w)), repr(float(v)))
        for t, st_, w, v in zip(s.tag_index, s.step, s.wall_time, s.value, strict=True)
    ]


def drain(
    loader: Any,
    seen: list[Any] | None = None,
    as_points: Callable[[Batch], list[Any]] = points,
) -> list[Any]:
    """Call load() until it has nothing more; a reset drops what was collected."""
    seen = [] if seen is None else seen
    while True:
        batch = loader.load()
        if batch.reset:
            seen.clear()
        seen.extend(as_points(batch))
        for problem in batch.problems:
            assert problem.path == str(loader.path)
        if not batch.more:
            return seen


def append_in_chunks(
    make: Callable[[Path], Any],
    path: Path,
    text: bytes,
    cuts: Sequence[int],
    as_points: Callable[[Batch], list[Any]] = points,
) -> list[Any]:
    """What a loader made by ``make(path)`` on an empty file reads while ``text`` is
    appended to it in pieces cut at ``cuts``, draining after every piece (each batch's
    points as ``as_points`` gives them)."""
    path.write_bytes(b"")
    loader = make(path)
    seen: list[Any] = []
    at = 0
    for cut in [*sorted(cuts), len(text)]:
        with open(path, "ab") as fh:
            fh.write(text[at:cut])
        at = max(at, cut)
        drain(loader, seen, as_points)
    return seen


def replay_diagnoses(*paths: Path) -> dict[str, str]:
    """``advisor replay PATH... --json`` run as a user runs it: each run's diagnosis."""
    import json
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", "from advisor.cli import main; main()", "replay",
         *map(str, paths), "--json"],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    objs = map(json.loads, out.stdout.splitlines())
    return {o["run"]: o["diagnosis"] for o in objs if o["type"] == "summary"}
