"""Tailing a log file that a job appends to: the part every incremental loader shares.

A loader remembers a byte offset and reads on from it when the file changes; it notices
when the file was replaced or rewritten (and reads it again from its start), keeps its
memory bounded whatever the writer does, and reports each input problem once.
:class:`TailLoader` does the tailing; a format subclasses it (line formats through
``_text.LineLoader``) and reads what lies after the offset.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np

from advisor.errors import InputError
from advisor.model import F64
from advisor.model import I32
from advisor.model import I64
from advisor.model import Batch
from advisor.model import HParamValue
from advisor.model import Problem
from advisor.model import Scalars

# What one load() call reads at most, so that one batch never holds a whole large file.
BATCH_BYTES = 8 << 20
# How many of a file's first bytes are compared on each change to notice a rewrite
# (Lightning rewrites metrics.csv in place with a new header: same inode, larger size).
_PREFIX = 4096
_MAX_PROBLEMS = 50


def stat_file(path: Path) -> os.stat_result | None:
    """``os.stat`` of a log file; None when it does not exist (yet, or any more).

    Raises:
        InputError: the path cannot be read (permission denied, or a directory).
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{path}: not a regular file")
    return st


def unreadable(path: Path, exc: OSError) -> InputError:
    """The one-line error for a file that exists but cannot be opened."""
    return InputError(f"{path}: cannot read: {exc.strerror or exc}")


class ProblemLog:
    """Problems of one file, each reported once, at most ``limit`` in all.

    Args:
        path: the file, named in every problem.
        limit: past this many, one last problem says that the rest are not reported.
    """

    def __init__(self, path: Path, limit: int = _MAX_PROBLEMS) -> None:
        self._path = str(path)
        self._limit = limit
        self._seen: set[tuple[str, str]] = set()
        self._new: list[Problem] = []

    def add(self, position: str, message: str) -> None:
        """Record a problem unless it was reported before."""
        key = (position, message)
        if key in self._seen or len(self._seen) > self._limit:
            return
        self._seen.add(key)
        if len(self._seen) > self._limit:
            message = "more problems in this file are not reported"
        self._new.append(Problem(self._path, position, message))

    def take(self) -> tuple[Problem, ...]:
        """The problems found since the previous call."""
        new, self._new = tuple(self._new), []
        return new


class PointTable:
    """Collects points block by block and builds one :class:`Scalars` per call."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}
        self._parts: list[tuple[I32, I64, F64, F64]] = []

    def tag_id(self, tag: str) -> int:
        """The index of ``tag`` in this loader's tag table."""
        found = self._ids.get(tag)
        if found is None:
            found = self._ids[tag] = len(self._ids)
        return found

    def add(self, tag_index: I32, step: I64, wall_time: F64, value: F64) -> None:
        """Append a block of points (already in file order)."""
        if step.size:
            self._parts.append((tag_index, step, wall_time, value))

    def add_lists(
        self, tag_index: list[int], step: list[int], wall_time: list[float], value: list[float]
    ) -> None:
        """Append a block of points given as parallel lists."""
        if step:
            self.add(
                np.array(tag_index, np.int32),
                np.array(step, np.int64),
                np.array(wall_time, np.float64),
                np.array(value, np.float64),
            )

    def clear(self) -> None:
        """Forget every tag and pending point (the file is read again from its start)."""
        self._ids.clear()
        self._parts.clear()

    def build(self) -> Scalars:
        """The points added since the previous call, naming only the tags they use."""
        if not self._parts:
            return Scalars.empty()
        parts, self._parts = self._parts, []
        index = np.concatenate([p[0] for p in parts])
        names = list(self._ids)
        used = np.unique(index)
        if used.size < len(names):
            lookup = np.zeros(len(names), np.int32)
            lookup[used] = np.arange(used.size, dtype=np.int32)
            index = lookup[index]
            names = [names[int(u)] for u in used]
        return Scalars(
            tags=tuple(names),
            tag_index=index,
            step=np.concatenate([p[1] for p in parts]),
            wall_time=np.concatenate([p[2] for p in parts]),
            value=np.concatenate([p[3] for p in parts]),
        )


class TailLoader:
    """Base of the incremental loaders: one file, read on from a remembered offset.

    Each ``load()`` does one ``os.stat``; an unchanged file (same size, inode and
    mtime) is not opened. Otherwise the subclass's ``_read`` goes on from
    ``self._offset``, adding points to ``self._points`` and problems to
    ``self._problems``. A file that shrank below the offset, whose inode changed or
    whose first bytes changed is read again from its start (``_restart``), and the
    batch says ``reset``.

    Args:
        path: the log file.
        batch_bytes: about the most one call reads; ``Batch.more`` says when it
            stopped there.
    """

    def __init__(self, path: Path | str, *, batch_bytes: int = BATCH_BYTES) -> None:
        if batch_bytes <= 0:
            raise ValueError(f"batch_bytes must be positive: {batch_bytes}")
        self.path = Path(path)
        self._batch_bytes = batch_bytes
        self._points = PointTable()
        self._problems = ProblemLog(self.path)
        self._signature: tuple[int, int, int] | None = None
        self._file_id: tuple[int, int] | None = None
        self._offset = 0
        self._prefix = b""

    # -- for subclasses --------------------------------------------------------------

    def _read(self, fd: int, final: bool) -> bool:
        """Read on from ``self._offset``, moving it past what was read; True if stopped
        by the byte budget (``final``: nothing more will be written)."""
        raise NotImplementedError

    def _restart(self) -> None:
        """Drop the format's state: the file is read again from its start."""

    def _hparams(self) -> dict[str, HParamValue]:
        """Hyper-parameters found since the previous call."""
        return {}

    # -- the tailing -----------------------------------------------------------------

    def load(self, *, final: bool = False) -> Batch:
        """Return what was appended since the previous call; with ``final`` a record or
        line cut short at the end is reported (the writer stopped in the middle of it)."""
        st = stat_file(self.path)
        if st is None:
            return Batch()
        if (st.st_size, st.st_ino, st.st_mtime_ns) == self._signature:
            return Batch()
        try:
            with open(self.path, "rb") as fh:
                st = os.fstat(fh.fileno())  # the file opened, if replaced since the stat
                signature = (st.st_size, st.st_ino, st.st_mtime_ns)
                reset = self._check_same_file(fh.fileno(), st)
                more = self._read(fh.fileno(), final)
                if len(self._prefix) < _PREFIX and self._offset > len(self._prefix):
                    self._prefix = os.pread(fh.fileno(), min(self._offset, _PREFIX), 0)
        except (PermissionError, IsADirectoryError) as exc:
            raise unreadable(self.path, exc) from None
        except FileNotFoundError:  # removed since the stat
            return Batch()
        except OSError as exc:  # e.g. EIO on a network filesystem: try again next call
            self._problems.add("file", f"read failed: {exc.strerror or exc}")
            more, reset = False, False
            self._signature = None
        else:
            self._signature = None if more else signature
        return Batch(
            scalars=self._points.build(),
            problems=self._problems.take(),
            hparams=self._hparams(),
            reset=reset,
            more=more,
        )

    def _check_same_file(self, fd: int, st: os.stat_result) -> bool:
        """Start over if the file was replaced or rewritten; True if that drops a read."""
        file_id = (st.st_dev, st.st_ino)
        replaced = file_id != self._file_id or st.st_size < self._offset
        if not replaced and self._prefix:
            replaced = os.pread(fd, len(self._prefix), 0) != self._prefix
        self._file_id = file_id
        if not replaced:
            return False
        dropped = self._offset > 0
        self._offset, self._prefix = 0, b""
        self._points.clear()
        self._restart()
        return dropped
