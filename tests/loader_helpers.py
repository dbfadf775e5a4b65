"""Helpers shared by the line-based loaders' tests: points as comparable tuples, a drain."""

from __future__ import annotations

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


def drain(loader: Any, seen: list[Point] | None = None) -> list[Point]:
    """Call load() until it has nothing more; a reset drops what was collected."""
    seen = [] if seen is None else seen
    while True:
        batch = loader.load()
        if batch.reset:
            seen.clear()
        seen.extend(points(batch))
        for problem in batch.problems:
            assert problem.path == str(loader.path)
        if not batch.more:
            return seen
