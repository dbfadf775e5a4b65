"""Plain-text training logs (stdout): ``key=value`` and ``key: value`` pairs on a line.

Examples of lines read::

    Epoch [3/30] TrainLoss=1.52 | ValLoss=1.18 | LR=1e-4
    step 100: loss=0.52, val_loss=0.61
    epoch: 3 loss: 0.41 val_loss: 0.55
    1875/1875 [====] - 5s 3ms/step - loss: 0.2973 - accuracy: 0.9134

The default pattern follows Kubeflow Katib's stdout metrics collector
(``([\\w|-]+)\\s*=\\s*(number)``), widened to ``key: number``, to a quoted key (a printed
Python dict: ``{'eval_loss': 0.43, 'epoch': 1.0}``, what the Hugging Face Trainer
prints) and to a printed torch tensor (``loss: tensor(0.5100, grad_fn=...)``); keys start
with a letter (so clock times such as ``12:30:05`` are not pairs), a key opened by a
quote must close it (``device='cuda:0'`` is no pair) and a number followed by ``:digit``
is not a value. A user pattern with the named groups ``name`` and ``value`` replaces
it.

The step is a ``step``/``iter``/``iteration``/``global_step`` pair or word on the line
(``step 100``, ``Iter [100/5000]``), else the epoch (``Epoch [k/N]``, ``epoch k`` or an
``epoch`` pair; it is also emitted as tag ``epoch``), else the epoch of the latest
``Epoch k/N`` line (Keras prints it on a line of its own), else the number of metric
lines before. A table of metrics is read too (fastai prints one: a header line such as
``epoch  train_loss  valid_loss  accuracy  time``, then a row of values per epoch; cells
that are not numbers, such as the time, are skipped). The ``N`` of ``Epoch k/N``
(Keras prints it, as do many scripts) is the planned number of epochs,
hyper-parameter ``epochs`` (N + 1 where the count starts at 0: Lightning's rich progress
bar ends at ``Epoch 9/9``), and so is a pair named for it (``Num Epochs = 3``, which the
Hugging Face Trainer prints before training; ``num_epochs=30``). An epoch that is not a
whole number (the Trainer prints progress, ``'epoch': 0.25``) cannot be the step: when
the first epoch a metric line would take its step from is fractional, every line of the
file is stepped by the count of metric lines before it, and the epoch stays a tag (the
elapsed part of a planned run). Lines without metrics are ignored. Progress bars that
redraw a line with ``\\r`` count by their last drawing.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from pathlib import Path

from advisor.core.planned import unit_of
from advisor.errors import ConfigError
from advisor.model import HParamValue
from advisor.sources._text import STEP_KEYS
from advisor.sources._text import LineLoader
from advisor.sources._text import as_step
from advisor.sources._text import head_lines
from advisor.sources._text import looks_like_metric
from advisor.sources._text import parse_float

__all__ = ["DEFAULT_PATTERN", "TextLogLoader", "sniff"]

_NUMBER = (
    r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|nan|NaN|NAN|inf|Inf|INF|infinity|Infinity)"
)
DEFAULT_PATTERN = (
    r"(?:(?<![\w./-])(?P<quote>['\"])|(?<![\w./'\"-]))"
    r"(?P<name>[A-Za-z_][\w./-]*)(?(quote)(?P=quote))\s*[=:]\s*"
    rf"(?:tensor\((?:\[(?=[^],]*\]))?)?(?P<value>{_NUMBER})(?![\w.]\d|\w|:\d)"
)
_DEFAULT = re.compile(DEFAULT_PATTERN)
_STEP_WORD = re.compile(
    r"\b(?:global[_ ]step|step|iteration|iter)\s*[\[(:=]?\s*(\d+)(?:\s*/\s*\d+)?", re.IGNORECASE
)
_EPOCH_WORD = re.compile(r"\bepoch\s*[\[(:=]?\s*(\d+)(?:\s*/\s*(\d+))?", re.IGNORECASE)
_STEP_NAMES = frozenset(STEP_KEYS)
# Lines of a file's head searched for metric lines: all of them, in practice.
_SNIFF_LINES = 4096
# A table of metrics: its header's first column, and what a column name may be.
_TABLE_FIRST = frozenset({"epoch", "step", "iter", "iteration"})
_NAME = re.compile(r"[A-Za-z_][\w./-]*")
# A count that fits a step: ASCII digits (str.isdigit() takes "²"), at most 18 of them.
_COUNT = re.compile(r"[0-9]{1,18}")


def compile_pattern(pattern: str | None) -> re.Pattern[str]:
    """The metric pattern: the default, or a user's with groups ``name`` and ``value``.

    Raises:
        ConfigError: the pattern does not compile or lacks one of the groups.
    """
    if pattern is None:
        return _DEFAULT
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(
            f"text log pattern {pattern!r} is not a regular expression: {exc}"
        ) from None
    missing = {"name", "value"} - set(compiled.groupindex)
    if missing:
        raise ConfigError(
            f"text log pattern {pattern!r} lacks the named group(s) {', '.join(sorted(missing))}"
        )
    return compiled


def _last_drawing(line: str) -> str:
    """The text a terminal would show for a line redrawn with carriage returns."""
    if "\r" not in line:
        return line
    parts = [p for p in line.split("\r") if p.strip()]
    return parts[-1] if parts else ""


@lru_cache(maxsize=1024)
def _names_epochs(name: str) -> bool:
    """Whether a pair's name states the planned number of epochs (``Num Epochs``,
    ``num_epochs``); cached: it is asked of every pair of every line."""
    return unit_of(name) == "epochs"


def _table_header(cells: list[str]) -> tuple[str, ...] | None:
    """The column names when a line is the header of a table of metrics (fastai prints
    ``epoch  train_loss  valid_loss  accuracy  time``): names only, the first one a step
    or epoch, at least one metric among the others."""
    if len(cells) < 2 or cells[0].lower() not in _TABLE_FIRST:
        return None
    if not all(_NAME.fullmatch(c) for c in cells):
        return None
    return tuple(cells) if any(looks_like_metric(c) for c in cells[1:]) else None


def _table_row(cells: list[str], header: tuple[str, ...] | None) -> bool:
    """Whether a line is a row of the table under ``header``: as many cells, the first a
    whole number (one that fits a step)."""
    if header is None or len(cells) != len(header):
        return False
    return _COUNT.fullmatch(cells[0]) is not None


def sniff(head: bytes) -> bool:
    """Whether a file's first bytes look like a text log: two lines or more with a
    loss-like (or metric-like) ``key=number`` or ``key: number`` pair, or a table of
    metrics (a header, then a row)."""
    hits = 0
    header: tuple[str, ...] | None = None
    for raw in head_lines(head, limit=_SNIFF_LINES):
        line = _last_drawing(raw)
        cells = line.split()
        if _table_row(cells, header):
            return True
        header = _table_header(cells) or header
        if any(looks_like_metric(m["name"]) for m in _DEFAULT.finditer(line)):
            hits += 1
            if hits >= 2:
                return True
    return False


class TextLogLoader(LineLoader):
    """Reads a plain-text training log incrementally (see the module docstring).

    Args:
        path: the log file.
        pattern: a regular expression with the named groups ``name`` and ``value``
            finding each metric on a line; by default :data:`DEFAULT_PATTERN`.
        batch_bytes: about the most one ``load()`` reads.
        max_line: the longest line parsed; longer ones are skipped and reported.

    Raises:
        ConfigError: ``pattern`` is not a valid pattern with both groups.
    """

    def __init__(self, path: Path | str, pattern: str | None = None, **kwargs: int) -> None:
        super().__init__(path, **kwargs)
        self._pattern = compile_pattern(pattern)
        self._epoch: float | None = None  # the latest epoch seen on a line
        self._metric_lines = 0
        # Whether epochs can be steps: None until a metric line needs one.
        self._whole_epochs: bool | None = None
        self._epochs: int | None = None  # the N of the latest "Epoch k/N"
        self._epochs_new = False
        self._zero_based = False  # an "Epoch 0/N" was seen
        self._table: tuple[str, ...] | None = None  # the latest table header

    def _forget(self) -> None:
        self._epoch = None
        self._metric_lines = 0
        self._whole_epochs = None
        self._epochs = None
        self._epochs_new = False
        self._zero_based = False
        self._table = None

    def _row(self, cells: list[str]) -> tuple[list[tuple[str, float]], int | None, float | None]:
        """The metrics, step and epoch of a row of the current table (cells that are not
        numbers, such as fastai's ``00:05`` time or ``#na#``, are no metric)."""
        assert self._table is not None
        first = int(cells[0])
        pairs = [
            (name, value)
            for name, cell in zip(self._table[1:], cells[1:], strict=True)
            if (value := parse_float(cell)) is not None
        ]
        if self._table[0].lower() == "epoch":
            return pairs, None, float(first)
        return pairs, first, None

    def _plan(self, epoch: int, total: int) -> None:
        """Note the planned number of epochs that an ``Epoch k/N`` line states.

        Keras counts from 1 to N. A count that starts at 0 may end at N (Lightning's rich
        progress bar prints ``Epoch 0/9`` to ``Epoch 9/9`` for 10 epochs) or at N - 1 (a
        script's ``Epoch [0/10]``): taken as N + 1 epochs, which understates the elapsed
        part of the second kind by one epoch rather than overstate the first's.
        """
        if epoch == 0:
            self._zero_based = True
        if epoch <= total:
            self._stated(total + 1 if self._zero_based else total)

    def _stated(self, epochs: int) -> None:
        """Note a planned number of epochs (a new value is given with the next batch)."""
        if 0 < epochs != self._epochs:
            self._epochs, self._epochs_new = epochs, True

    def _hparams(self) -> dict[str, HParamValue]:
        if not self._epochs_new or self._epochs is None:
            return {}
        self._epochs_new = False
        return {"epochs": float(self._epochs)}

    def _parse(self, lines: list[str], first_line: int) -> None:
        tag_ids: list[int] = []
        steps: list[int] = []
        values: list[float] = []
        tag_id = self._points.tag_id
        for raw in lines:
            line = _last_drawing(raw)
            pairs: list[tuple[str, float]] = []
            step: int | None = None
            epoch: float | None = None
            cells = line.split()
            row = _table_row(cells, self._table)
            if row:
                pairs, step, epoch = self._row(cells)
            elif (header := _table_header(cells)) is not None:
                self._table = header
                continue
            for match in () if row else self._pattern.finditer(line):
                name, value = match["name"], parse_float(match["value"] or "")
                if not name or value is None:
                    continue
                low = name.lower()
                if low in _STEP_NAMES and step is None and math.isfinite(value):
                    step = as_step(value)
                elif low == "epoch" and epoch is None and math.isfinite(value):
                    epoch = value
                elif _names_epochs(name) and value == round(value) and 0 < value < 1e9:
                    # The planned number of epochs, not a metric: the HF Trainer prints
                    # "Num Epochs = 3" before training (as a tag, its name would make it
                    # a second epoch curve). Steps are left alone: their axis may be the
                    # count of lines here.
                    self._stated(int(value))
                else:
                    pairs.append((name, value))
            if step is None and (found := _STEP_WORD.search(line)) is not None:
                step = as_step(float(found[1]))
            if (found := _EPOCH_WORD.search(line)) is not None:
                if epoch is None:
                    epoch = float(found[1])
                # k and N together at most 18 digits: each fits int() and a step.
                if found[2] is not None and _COUNT.fullmatch(found[1] + found[2]):
                    self._plan(int(found[1]), int(found[2]))
            if epoch is not None:
                self._epoch = epoch
            if not pairs:
                continue
            epoch = self._epoch
            if step is None and epoch is not None and math.isfinite(epoch):
                if self._whole_epochs is None:
                    self._whole_epochs = epoch == math.floor(epoch)
                step = as_step(epoch) if self._whole_epochs else None
            if step is None:
                step = self._metric_lines
            self._metric_lines += 1
            if epoch is not None:
                pairs.insert(0, ("epoch", epoch))
            for name, value in pairs:
                tag_ids.append(tag_id(name))
                steps.append(step)
                values.append(value)
        self._points.add_lists(tag_ids, steps, [math.nan] * len(steps), values)
