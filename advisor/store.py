"""Per-(run, tag) curves, with TensorBoard-style purging of orphaned steps.

When a training job crashes at step T+k and restarts from a checkpoint at step T, its
logs contain steps T..T+k twice. The points logged before the restart are orphaned: the
store purges every kept point of a tag whose step is >= a newly arrived step that is
lower than the tag's last kept step, and every tag's points at or after the step of a
SessionLog START marker. A consequence: a tag's kept steps never decrease, so a purge
is a truncation. Points logged twice at the same step are both kept.

Points are kept in columnar chunks (8-byte step, wall time and value: 24 bytes each),
consolidated now and then so that the per-chunk overhead stays small.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field

import numpy as np

from advisor.model import F64
from advisor.model import I64
from advisor.model import Batch
from advisor.model import Curve
from advisor.model import HParamValue
from advisor.model import RunCurves
from advisor.model import Scalars
from advisor.roles import RoleTable

# Consolidate a tag's chunks past this many, so that many small appends (a live run
# logging one point a second) don't leave one numpy object per point.
_MAX_CHUNKS = 16
# Past this many restarts in one appended block, handle the block point by point:
# the vectorised search below is quadratic in the number of restarts.
_MAX_VECTOR_RESTARTS = 32


@dataclass
class TagSeries:
    """One tag's kept points: non-decreasing steps, in chunks."""

    steps: list[I64] = field(default_factory=list)
    walls: list[F64] = field(default_factory=list)
    values: list[F64] = field(default_factory=list)

    @property
    def top(self) -> int | None:
        """The last (largest) kept step."""
        for chunk in reversed(self.steps):
            if chunk.size:
                return int(chunk[-1])
        return None

    def __len__(self) -> int:
        return sum(int(c.size) for c in self.steps)

    def append(self, step: I64, wall: F64, value: F64) -> None:
        """Append points in logged order, purging orphaned steps on restarts."""
        restarts = 0
        start = 0
        n = int(step.size)
        while start < n:
            top = self.top
            seg = step[start:]
            # A point is a restart when its step is below the largest kept step so far.
            running = np.maximum.accumulate(seg)
            before = np.empty_like(running)
            before[0] = top if top is not None else np.iinfo(np.int64).min
            if seg.size > 1:
                np.maximum(running[:-1], before[0], out=before[1:])
            back = np.flatnonzero(seg < before)
            if back.size == 0:
                self._push(seg, wall[start:], value[start:])
                break
            cut = start + int(back[0])
            self._push(step[start:cut], wall[start:cut], value[start:cut])
            self.truncate(int(step[cut]))
            restarts += 1
            if restarts > _MAX_VECTOR_RESTARTS:
                self._append_pointwise(step[cut:], wall[cut:], value[cut:])
                break
            start = cut
        if len(self.steps) > _MAX_CHUNKS:
            self.consolidate()

    def _append_pointwise(self, step: I64, wall: F64, value: F64) -> None:
        # A monotonic stack: O(n) whatever the order of the steps.
        self.consolidate()
        kept_s = self.steps[0].tolist() if self.steps else []
        kept_w = self.walls[0].tolist() if self.walls else []
        kept_v = self.values[0].tolist() if self.values else []
        for s, w, v in zip(step.tolist(), wall.tolist(), value.tolist(), strict=True):
            if kept_s and s < kept_s[-1]:
                cut = int(np.searchsorted(np.asarray(kept_s, np.int64), s, side="left"))
                del kept_s[cut:], kept_w[cut:], kept_v[cut:]
            kept_s.append(s)
            kept_w.append(w)
            kept_v.append(v)
        self.steps = [np.asarray(kept_s, np.int64)]
        self.walls = [np.asarray(kept_w, np.float64)]
        self.values = [np.asarray(kept_v, np.float64)]

    def _push(self, step: I64, wall: F64, value: F64) -> None:
        if step.size:
            self.steps.append(np.array(step, np.int64))
            self.walls.append(np.array(wall, np.float64))
            self.values.append(np.array(value, np.float64))

    def truncate(self, step: int) -> None:
        """Drop every kept point with a step >= ``step``."""
        while self.steps and self.steps[-1].size and self.steps[-1][0] >= step:
            self.steps.pop()
            self.walls.pop()
            self.values.pop()
        if self.steps:
            cut = int(np.searchsorted(self.steps[-1], step, side="left"))
            self.steps[-1] = self.steps[-1][:cut]
            self.walls[-1] = self.walls[-1][:cut]
            self.values[-1] = self.values[-1][:cut]

    def consolidate(self) -> None:
        """Join the chunks into one."""
        if len(self.steps) > 1:
            self.steps = [np.concatenate(self.steps)]
            self.walls = [np.concatenate(self.walls)]
            self.values = [np.concatenate(self.values)]

    def take_column(self, name: str) -> list[np.ndarray]:
        """Hand over one column's chunks (``step``, ``wall_time`` or ``value``), emptying it.

        Lets a reader free the store column by column while building its result.
        """
        attr = {"step": "steps", "wall_time": "walls", "value": "values"}[name]
        chunks: list[np.ndarray] = getattr(self, attr)
        setattr(self, attr, [])
        return chunks

    def arrays(self) -> tuple[I64, F64, F64]:
        """The kept points as three arrays (consolidating first)."""
        self.consolidate()
        if not self.steps:
            return np.zeros(0, np.int64), np.zeros(0, np.float64), np.zeros(0, np.float64)
        return self.steps[0], self.walls[0], self.values[0]


@dataclass
class RunState:
    """One run's tags and hyper-parameters."""

    tags: dict[str, TagSeries] = field(default_factory=dict)
    hparams: dict[str, HParamValue] = field(default_factory=dict)


class Store:
    """Every run's curves. Owned by one thread: it has no locks."""

    def __init__(self) -> None:
        self._runs: dict[str, RunState] = {}

    def add(self, run: str, batch: Batch) -> None:
        """Add what a loader returned for a file of ``run``."""
        state = self._runs.setdefault(run, RunState())
        state.hparams.update(batch.hparams)
        scalars = batch.scalars
        if batch.reset:
            # The file is read again from its start: what it gave before is replaced,
            # including a point at exactly the first step read again (not a restart).
            for tag_id in np.unique(scalars.tag_index):
                series = state.tags.get(scalars.tags[tag_id])
                if series is not None:
                    series.truncate(int(scalars.step[scalars.tag_index == tag_id].min()))
        start = 0
        for restart in batch.restarts:
            self._add_scalars(state, _slice(scalars, start, restart.position))
            tags = state.tags if restart.tags is None else restart.tags
            for tag in tags:
                series = state.tags.get(tag)
                if series is not None:
                    series.truncate(restart.step)
            start = restart.position
        self._add_scalars(state, _slice(scalars, start, len(scalars)))

    @staticmethod
    def _add_scalars(state: RunState, scalars: Scalars) -> None:
        if not len(scalars):
            return
        if len(scalars.tags) == 1:
            groups: Iterator[tuple[int, np.ndarray]] = iter([(0, np.arange(len(scalars)))])
        else:
            order = np.argsort(scalars.tag_index, kind="stable")
            sorted_idx = scalars.tag_index[order]
            bounds = np.flatnonzero(np.diff(sorted_idx)) + 1
            groups = (
                (int(sorted_idx[chunk[0]]), order[chunk[0] : chunk[-1] + 1])
                for chunk in np.split(np.arange(order.size), bounds)
            )
        for tag_id, idx in groups:
            series = state.tags.setdefault(scalars.tags[tag_id], TagSeries())
            series.append(scalars.step[idx], scalars.wall_time[idx], scalars.value[idx])

    def runs(self) -> list[str]:
        """Run names, sorted."""
        return sorted(self._runs)

    def tags(self, run: str) -> list[str]:
        """A run's tags with at least one kept point, sorted."""
        state = self._runs.get(run)
        return sorted(t for t, s in state.tags.items() if len(s)) if state else []

    def hparams(self, run: str) -> dict[str, HParamValue]:
        """A run's known hyper-parameters."""
        state = self._runs.get(run)
        return dict(state.hparams) if state else {}

    def series(self, run: str, tag: str) -> TagSeries:
        """One tag's kept points."""
        return self._runs[run].tags[tag]

    def curves(self, run: str, roles: RoleTable) -> RunCurves:
        """A run's curves as the core sees them."""
        out: dict[str, Curve] = {}
        for tag in self.tags(run):
            step, wall, value = self.series(run, tag).arrays()
            out[tag] = Curve(tag, roles.role(tag), step, wall, value)
        return RunCurves(run, out, self.hparams(run))

    def drop(self, run: str) -> None:
        """Forget a run (its logs were deleted)."""
        self._runs.pop(run, None)


def _slice(s: Scalars, start: int, stop: int) -> Scalars:
    if start == 0 and stop == len(s):
        return s
    return Scalars(
        s.tags, s.tag_index[start:stop], s.step[start:stop], s.wall_time[start:stop],
        s.value[start:stop],
    )  # fmt: skip
