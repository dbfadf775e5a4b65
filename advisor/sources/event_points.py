"""Points from event records: the general (slow) path, and one batch's accumulator.

:func:`decode_slow` handles, record by record with :mod:`advisor.sources.protowire`,
whatever the vectorised decoder left: file_version and session_log events, summaries
with several values, hparams, typed tensor fields, the first metadata of each tag.
:class:`Points` merges both paths' output back into file order.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from advisor.model import Batch
from advisor.model import HParamValue
from advisor.model import Problem
from advisor.model import Restart
from advisor.model import Scalars
from advisor.sources.crc32c import masked_crc32c
from advisor.sources.protowire import SESSION_START
from advisor.sources.protowire import WireError
from advisor.sources.protowire import decode_event
from advisor.sources.protowire import decode_hparams
from advisor.sources.protowire import tensor_scalar
from advisor.sources.tagtable import OTHER
from advisor.sources.tagtable import TagTable
from advisor.sources.tfrecord import HEADER
from advisor.sources.tfrecord import Buf
from advisor.sources.tfrecord import u32_at

Idx = npt.NDArray[np.intp]
_T = TypeVar("_T", bound=np.generic)
HPARAMS_PLUGIN = "hparams"


@dataclass(slots=True)
class Slow:
    """What the slow path found in one chunk; records are indices into the chunk."""

    records: list[int] = field(default_factory=list)  # per point, its record
    tags: list[int] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    wall_times: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    restarts: list[tuple[int, int]] = field(default_factory=list)  # (record, step)
    hparams: dict[str, HParamValue] = field(default_factory=dict)
    problems: list[tuple[int, str]] = field(default_factory=list)  # (buffer offset, what)
    settled: dict[int, int] = field(default_factory=dict)  # tag -> record settling its plugin


def decode_slow(buf: Buf, offsets: Idx, lengths: Idx, which: Idx, tags: TagTable) -> Slow:
    """Decode records ``which`` (indices into ``offsets``) one by one, in order."""
    out = Slow()
    for j in which.tolist():
        start = int(offsets[j]) + HEADER
        data = bytes(buf[start : start + int(lengths[j])])
        try:
            event = decode_event(data)
            parsed = []
            for value in event.values:
                scalar = None
                if value.simple_value is None and value.tensor is not None:
                    scalar = tensor_scalar(value.tensor)[1]
                hparams = None
                if value.plugin_name == HPARAMS_PLUGIN:
                    hparams = decode_hparams(value.plugin_content)
                parsed.append((value, scalar, hparams))
        except WireError:
            # Only now is the data CRC worth its cost: it tells corruption from a writer
            # we do not understand.
            crc_ok = masked_crc32c(data) == int(u32_at(buf)[start + len(data)])
            what = "undecodable event" if crc_ok else "bad data checksum"
            out.problems.append((int(offsets[j]), f"{what}; record skipped"))
            continue
        for value, scalar, hparams in parsed:
            tag = tags.id_of(value.tag)
            if value.plugin_name is not None and tags.learn(tag, value.plugin_name):
                out.settled[tag] = j
            if hparams:
                out.hparams.update(hparams)
            number = value.simple_value
            if number is None:
                if scalar is None or tags.code(tag) == OTHER:
                    continue
                number = scalar
            out.records.append(j)
            out.tags.append(tag)
            out.steps.append(event.step)
            out.wall_times.append(event.wall_time)
            out.values.append(number)
        if event.session_status == SESSION_START:
            out.restarts.append((j, event.step))
    return out


class Points:
    """The points, restarts, problems and hparams of one ``load()``, in file order."""

    def __init__(self, tags: TagTable) -> None:
        self._tags = tags
        self._count = 0
        self._ids: list[npt.NDArray[np.int32]] = []
        self._steps: list[npt.NDArray[np.int64]] = []
        self._walls: list[npt.NDArray[np.float64]] = []
        self._values: list[npt.NDArray[np.float64]] = []
        self.restarts: list[Restart] = []
        self.problems: list[Problem] = []
        self.hparams: dict[str, HParamValue] = {}

    def add_chunk(
        self,
        records: int,
        fast: Idx,
        *,
        ids: Idx,
        step: npt.NDArray[np.int64],
        wall_time: npt.NDArray[np.float64],
        value: npt.NDArray[np.float64],
        slow: Slow,
    ) -> None:
        """Add one chunk's points: the fast path's (record indices ``fast``) and ``slow``."""
        self.hparams.update(slow.hparams)
        if not slow.records and not slow.restarts:
            self._append(ids.astype(np.int32), step, wall_time, value)
            return
        counts = np.zeros(records, np.intp)
        counts[fast] = 1
        np.add.at(counts, np.array(slow.records, np.intp), 1)
        before = np.cumsum(counts) - counts  # points of the chunk before each record
        total = fast.size + len(slow.records)
        out_ids = np.empty(total, np.int32)
        out_step = np.empty(total, np.int64)
        out_wall = np.empty(total, np.float64)
        out_value = np.empty(total, np.float64)
        at = before[fast]
        out_ids[at], out_step[at], out_wall[at], out_value[at] = ids, step, wall_time, value
        if slow.records:
            at = before[np.array(slow.records, np.intp)]
            rank = np.zeros(len(slow.records), np.intp)  # index among its record's points
            for k in range(1, len(slow.records)):
                if slow.records[k] == slow.records[k - 1]:
                    rank[k] = rank[k - 1] + 1
            at = at + rank
            out_ids[at] = slow.tags
            out_step[at] = slow.steps
            out_wall[at] = slow.wall_times
            out_value[at] = slow.values
        for record, restart_step in slow.restarts:
            self.restarts.append(Restart(self._count + int(before[record]), restart_step))
        self._append(out_ids, out_step, out_wall, out_value)

    def _append(
        self,
        ids: npt.NDArray[np.int32],
        step: npt.NDArray[np.int64],
        wall_time: npt.NDArray[np.float64],
        value: npt.NDArray[np.float64],
    ) -> None:
        if ids.size:
            self._ids.append(ids)
            self._steps.append(step)
            self._walls.append(wall_time)
            self._values.append(value)
            self._count += int(ids.size)

    def batch(self, path: Path, prefix: str, reset: bool, more: bool = False) -> Batch:
        """The accumulated batch, with a tag table of only the tags it uses."""
        return Batch(
            scalars=self._scalars(prefix),
            restarts=tuple(self.restarts),
            problems=tuple(self.problems),
            hparams=self.hparams,
            reset=reset,
            more=more,
        )

    def _scalars(self, prefix: str) -> Scalars:
        if not self._count:
            return Scalars.empty()
        used = np.zeros(len(self._tags), np.bool_)
        for part in self._ids:
            used[part] = True
        remap = np.cumsum(used, dtype=np.int32) - 1
        for part in self._ids:
            np.take(remap, part, out=part)  # in place: no second copy of the ids
        names = self._tags.names
        # Columns are joined one at a time and their parts dropped at once, so the peak
        # is the output plus one column's parts, not two copies of everything.
        return Scalars(
            tags=tuple(prefix + names[i] for i in np.flatnonzero(used).tolist()),
            tag_index=_join(self._ids),
            step=_join(self._steps),
            wall_time=_join(self._walls),
            value=_join(self._values),
        )


def _join(parts: list[npt.NDArray[_T]]) -> npt.NDArray[_T]:
    joined = parts[0] if len(parts) == 1 else np.concatenate(parts)
    parts.clear()
    return joined
