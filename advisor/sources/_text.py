"""Helpers shared by the text-based loaders (CSV, JSON Lines, MLflow, plain text).

The common part of every line-oriented format is the tailing itself: remember a byte
offset, hand only complete lines to the format's parser, notice when the file was
replaced or rewritten, and keep memory bounded whatever the writer does. That lives in
:class:`LineLoader`; each format subclasses it and implements ``_parse``.
"""

from __future__ import annotations

import math
import os
import re
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

# A line longer than this is skipped (and reported once) instead of being buffered.
MAX_LINE = 1 << 20
# What one load() call reads at most, so that one batch never holds a whole large file.
BATCH_BYTES = 8 << 20
_CHUNK = 1 << 20
# How many of a file's first bytes are compared on each change to notice a rewrite
# (Lightning rewrites metrics.csv in place with a new header: same inode, larger size).
_PREFIX = 4096
_MAX_PROBLEMS = 50
# Steps are int64; anything past this is not a plausible step.
_STEP_LIMIT = float(1 << 62)
# A value in a time column below this (1973-03-03) is a duration, not a wall time.
_MIN_WALL = 1e8
# ... and one above this (5138 AD in seconds) is in milliseconds.
_MS_WALL = 1e11

STEP_KEYS = ("step", "global_step", "iteration", "iter")
# A key or column naming the phase a row was logged in: long-format logs write one row
# per phase (``epoch,phase,loss``: a "train" row and a "val" row), so each phase's
# metrics are tags of their own, named after it (``val/loss``).
PHASE_KEYS = frozenset({"phase", "split", "mode", "stage", "subset"})
_PHASE_VALUE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
WALL_KEYS = ("wall_time", "timestamp", "time", "walltime")
# Name fragments that make a column or key look like a training metric.
METRIC_WORDS = frozenset(
    {"loss", "acc", "accuracy", "error", "err", "mae", "mse", "rmse", "f1", "auc", "ppl",
     "perplexity", "top1", "top5", "bleu", "iou", "miou", "dice", "precision", "recall"}
)  # fmt: skip
_WORD = re.compile(r"[a-z0-9]+")
# A one-element torch tensor as str() writes it: tensor(0.5100), tensor([0.51]),
# tensor(0.5100, device='cuda:0'), tensor(0.51, grad_fn=<NllLossBackward0>).
_TENSOR = re.compile(
    r"tensor\((\[)?\s*([^,\[\]()\s]+)\s*(?(1)\])(?:,[^()]*(?:\([^()]*\)[^()]*)?)?\)"
)


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


def looks_like_metric(name: str) -> bool:
    """Whether a column or key name looks like a loss or a common metric."""
    low = name.lower()
    return "loss" in low or any(w in METRIC_WORDS for w in _WORD.findall(low))


def parse_float(text: str) -> float | None:
    """The number in ``text`` (Python syntax, so also nan/inf), or None."""
    try:
        return float(text)
    except (ValueError, OverflowError):
        return None


def json_number(value: object) -> float | None:
    """A parsed JSON value as a metric: a number (not a boolean, not past float range),
    or a string that Python's ``float()`` reads (``"0.51"``, ``"NaN"``, ``"-Infinity"``);
    a one-element torch tensor's text (``"tensor(0.5100, device='cuda:0')"``); None for
    anything else.

    Strings count because writers produce them for numbers JSON cannot hold: strict JSON
    has no NaN or infinity, so writers that keep them quote them (the evidence of a
    diverged run), and ``json.dumps(..., default=str)``, the usual way past numpy's
    float32 and int64, writes ``"0.51"`` (and a tensor's text for a tensor). CSV cells
    are read with the same number syntax.
    """
    if isinstance(value, str):
        number = parse_float(value)
        if number is None and (tensor := _TENSOR.fullmatch(value.strip())) is not None:
            number = parse_float(tensor[2])
        return number
    if type(value) is float or type(value) is int:  # a bool is no metric
        try:
            return float(value)
        except OverflowError:  # an integer past float range
            return None
    return None


def phase_of(value: object) -> str | None:
    """The value of a phase key or cell as a tag prefix (``"val"``), or None when it is
    not a short name (a phase, not free text)."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value if _PHASE_VALUE.fullmatch(value) else None


def shown(text: str, most: int = 20) -> str:
    """A cell or value quoted in a problem report, cut to ``most`` characters."""
    text = text.strip()
    return text if len(text) <= most else text[: most - 3] + "..."


def as_step(value: float) -> int | None:
    """A logged step (or epoch) as an int, or None when it cannot be one."""
    if not -_STEP_LIMIT < value < _STEP_LIMIT:  # also rejects NaN
        return None
    return int(value)


def wall_seconds(value: float) -> float:
    """A logged time as seconds since the epoch, or NaN when it is not one.

    Durations (small numbers, e.g. an epoch's run time) are not wall times; times in
    milliseconds are converted.
    """
    if not value >= _MIN_WALL or math.isinf(value):
        return math.nan
    return value / 1000.0 if value > _MS_WALL else value


def wall_seconds_array(values: F64) -> F64:
    """:func:`wall_seconds` over an array."""
    out = np.where(values > _MS_WALL, values / 1000.0, values)
    out[~(values >= _MIN_WALL) | np.isinf(values)] = np.nan
    return out


def head_lines(head: bytes, limit: int = 20) -> list[str]:
    """The first lines of a file's head, for sniffing (BOM and CR stripped).

    Only complete lines count, unless the head holds no newline at all.
    """
    text = head.decode("utf-8", "replace").removeprefix("\ufeff")
    lines = text.split("\n")
    if len(lines) > 1:
        lines.pop()  # cut short by the head's size, or empty
    return [line.rstrip("\r") for line in lines if line.strip()][:limit]


def hparam_value(value: object) -> HParamValue | None:
    """A JSON-like value as a hyper-parameter (numbers as float), or None."""
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:
            return None
    return None


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


class LineLoader:
    """Base of the line-oriented loaders: tails a file, parsing complete lines only.

    Each ``load()`` does one ``os.stat``; an unchanged file (same size, inode and
    mtime) is not opened. Otherwise the file is read from the remembered byte offset in
    bounded chunks, and every complete line (ending in ``\\n``; ``\\r\\n`` tolerated)
    goes to ``_parse``. A half-written last line is left for a later call. A line
    longer than ``max_line`` bytes is skipped and reported once, without being buffered.
    A file that shrank, whose inode changed or whose first bytes changed is read
    again from its start, and the batch says ``reset``.

    Args:
        path: the log file.
        batch_bytes: about the most one call reads; ``Batch.more`` says when it
            stopped there.
        max_line: the longest line parsed.
    """

    def __init__(
        self, path: Path | str, *, batch_bytes: int = BATCH_BYTES, max_line: int = MAX_LINE
    ) -> None:
        if batch_bytes <= 0 or max_line <= 0:
            raise ValueError(
                f"batch_bytes and max_line must be positive: {batch_bytes}, {max_line}"
            )
        self.path = Path(path)
        self._batch_bytes = batch_bytes
        self._max_line = max_line
        self._points = PointTable()
        self._problems = ProblemLog(self.path)
        self._signature: tuple[int, int, int] | None = None
        self._file_id: tuple[int, int] | None = None
        self._offset = 0
        self._line = 1  # the number of the line that starts at _offset
        self._prefix = b""
        self._skipping = False  # inside a too-long line, looking for its end

    # -- for subclasses --------------------------------------------------------------

    def _parse(self, lines: list[str], first_line: int) -> None:
        """Parse complete lines (terminators removed) into ``self._points``."""
        raise NotImplementedError

    def _forget(self) -> None:
        """Drop the format's state: the file is read again from its start."""

    def _hparams(self) -> dict[str, HParamValue]:
        """Hyper-parameters found since the previous call."""
        return {}

    # -- the tailing -----------------------------------------------------------------

    def load(self, *, final: bool = False) -> Batch:
        """Return what was appended since the previous call; with ``final`` a last line
        without its line end is reported (the writer stopped in the middle of it)."""
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
        self._offset, self._line, self._prefix, self._skipping = 0, 1, b"", False
        self._points.clear()
        self._forget()
        return dropped

    def _read(self, fd: int, final: bool) -> bool:
        """Parse the complete lines after the offset; True if stopped by the budget."""
        offset = self._offset
        pending = b""  # the start of a line not yet complete, at most max_line bytes
        while self._offset - offset < self._batch_bytes:
            data = os.pread(fd, _CHUNK, self._offset + len(pending))
            if not data:
                if final and pending.strip():
                    # Left unread: a number cut short would parse as another number.
                    self._problems.add(
                        f"line {self._line}",
                        "last line has no line end (cut off mid-write?); skipped",
                    )
                return False
            if self._skipping:
                end = data.find(b"\n")
                if end < 0:
                    self._offset += len(data)
                    continue
                self._offset += end + 1
                self._line += 1
                self._skipping = False
                data = data[end + 1 :]
            buf = pending + data if pending else data
            cut = buf.rfind(b"\n") + 1
            if cut:
                self._take(buf[:cut])
            pending = buf[cut:]
            if len(pending) > self._max_line:
                self._too_long(self._line)
                self._offset += len(pending)
                self._skipping = True
                pending = b""
        return True

    def _take(self, block: bytes) -> None:
        """Parse a block of complete lines and move the offset past it."""
        first, size = self._line, len(block)
        if size > self._max_line:
            raw = block.split(b"\n")
            for i, line in enumerate(raw):
                if len(line) > self._max_line:
                    self._too_long(first + i)
                    raw[i] = b""
            block = b"\n".join(raw)
        text = block.decode("utf-8", "replace")
        if self._offset == 0:
            text = text.removeprefix("\ufeff")
        lines = text.replace("\r\n", "\n").split("\n")
        lines.pop()  # the empty string after the last newline
        self._parse(lines, first)
        self._offset += size
        self._line += len(lines)

    def _too_long(self, line: int) -> None:
        self._problems.add(f"line {line}", f"longer than {self._max_line} bytes; skipped")
