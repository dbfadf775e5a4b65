"""Helpers shared by the text-based loaders (CSV, JSON Lines, MLflow, plain text).

The common part of every line-oriented format is handing only complete lines to the
format's parser, on top of the tailing of :mod:`advisor.sources.tail`. That lives in
:class:`LineLoader`; each format subclasses it and implements ``_parse``.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np

from advisor.model import F64
from advisor.model import HParamValue
from advisor.sources.tail import BATCH_BYTES
from advisor.sources.tail import TailLoader

# A line longer than this is skipped (and reported once) instead of being buffered.
MAX_LINE = 1 << 20
_CHUNK = 1 << 20
# Steps are int64; anything past this is not a plausible step.
_STEP_LIMIT = float(1 << 62)
# A value in a time column below this (1973-03-03) is a duration, not a wall time.
_MIN_WALL = 1e8
# ... and one above this (5138 AD in seconds) is in milliseconds.
_MS_WALL = 1e11

# ``training_iteration``: Ray Tune's count of reports, the step of its TensorBoard files.
STEP_KEYS = ("step", "global_step", "iteration", "iter", "training_iteration")
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


def flatten_hparams(value: object, name: str, out: dict[str, HParamValue], depth: int = 0) -> None:
    """Put ``value`` in ``out`` as hyper-parameter ``name``; a dict's entries under
    ``name.key`` (or ``key`` when ``name`` is empty), to a depth of 8. Lists and nulls
    are left out."""
    if isinstance(value, dict):
        if depth < 8:
            for key, item in value.items():
                flatten_hparams(item, f"{name}.{key}" if name else str(key), out, depth + 1)
        return
    found = hparam_value(value)
    if found is not None:
        out[name] = found


class LineLoader(TailLoader):
    """Base of the line-oriented loaders: hands complete lines only to ``_parse``.

    The tailing is :class:`~advisor.sources.tail.TailLoader`'s. The file is read from
    the offset in bounded chunks, and every complete line (ending in ``\\n``; ``\\r\\n``
    tolerated) goes to ``_parse``. A half-written last line is left for a later call. A
    line longer than ``max_line`` bytes is skipped and reported once, without being
    buffered.

    Args:
        path: the log file.
        batch_bytes: about the most one call reads; ``Batch.more`` says when it
            stopped there.
        max_line: the longest line parsed.
    """

    def __init__(
        self, path: Path | str, *, batch_bytes: int = BATCH_BYTES, max_line: int = MAX_LINE
    ) -> None:
        if max_line <= 0:
            raise ValueError(f"max_line must be positive: {max_line}")
        super().__init__(path, batch_bytes=batch_bytes)
        self._max_line = max_line
        self._line = 1  # the number of the line that starts at _offset
        self._skipping = False  # inside a too-long line, looking for its end

    # -- for subclasses --------------------------------------------------------------

    def _parse(self, lines: list[str], first_line: int) -> None:
        """Parse complete lines (terminators removed) into ``self._points``."""
        raise NotImplementedError

    def _forget(self) -> None:
        """Drop the format's state: the file is read again from its start."""

    # -- the lines -------------------------------------------------------------------

    def _restart(self) -> None:
        self._line, self._skipping = 1, False
        self._forget()

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
