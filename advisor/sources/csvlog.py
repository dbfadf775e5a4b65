"""CSV training logs: Keras CSVLogger, Lightning ``metrics.csv``, fastai ``history.csv``.

What the writers do, and what this loader makes of it:

- Keras ``CSVLogger`` writes ``epoch`` and the metrics sorted by name, with any
  ``separator``, ``\\r\\n`` line ends and ``NA`` where a metric is missing. With
  ``append=True`` several runs follow one another in one file, the epoch starting
  again, usually without a second header.
- Lightning's ``CSVLogger`` writes ``epoch``, ``step`` and sparse rows (empty cells).
  When a new metric appears it rewrites the whole file in place with a new header;
  the loader notices the changed first bytes and reads the file again (``reset``).
- fastai's ``CSVLogger`` writes ``epoch,train_loss,valid_loss,<metrics>,time`` with
  ``#na#`` for missing values and ``time`` as ``mm:ss``.
- ``pandas.DataFrame(history.history).to_csv(...)`` writes an unnamed index column.

Cells: any cell that parses as a number (Python syntax, so also ``nan``, ``inf`` and
``-inf``) is a point; anything else (``NA``, empty, ``#na#``, ``mm:ss``, a list) is no
point. Text other than those missing-value marks, in a column that has held a number, is
a corrupt cell and reported with its line; a column of text alone is not. The step comes
from the first column named ``step``, ``global_step``, ``iteration``, ``iter``,
``epoch`` (case-insensitive), else the unnamed index column, else the row's number; an
``epoch`` column is also a tag. A ``time``, ``timestamp`` or ``wall_time`` column
holding seconds since the epoch gives the wall time; it is never a tag. A ``phase``,
``split``, ``mode``, ``stage`` or ``subset`` column (a long-format log: one row per
phase and epoch) names each row's tags after its phase: ``val/loss`` and ``train/loss``,
not one ``loss`` alternating between the two; ``epoch`` stays itself. Points are emitted
in file order: training restarts (the step going back) are purged downstream.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np

from advisor.model import F64
from advisor.model import HParamValue
from advisor.sources._text import PHASE_KEYS
from advisor.sources._text import STEP_KEYS
from advisor.sources._text import WALL_KEYS
from advisor.sources._text import LineLoader
from advisor.sources._text import head_lines
from advisor.sources._text import looks_like_metric
from advisor.sources._text import parse_float
from advisor.sources._text import phase_of
from advisor.sources._text import shown
from advisor.sources._text import wall_seconds_array
from advisor.sources.tail import unreadable

__all__ = ["CsvLoader", "read_lightning_hparams", "sniff"]

_SEPARATORS = (",", ";", "\t", "|")
_STEP_PRIORITY = (*STEP_KEYS, "epoch")
_INDEX_NAMES = frozenset({"", "unnamed: 0", "index"})
# Cells that are known to mean "no value": skipping them before float parsing keeps
# sparse files (Lightning) on the vectorised path.
_MISSING = frozenset({"", "NA", "#na#", "N/A", "None", "null"})
# Distinct values of a phase column that name tags of their own (train, val, test...).
_MAX_PHASES = 16


def sniff_separator(header: str) -> str:
    """The separator of a header line: the most frequent of ``, ; TAB |``."""
    counts = [header.count(sep) for sep in _SEPARATORS]
    best = max(range(len(counts)), key=lambda i: (counts[i], -i))
    return _SEPARATORS[best] if counts[best] else ","


def split_fields(line: str, sep: str) -> list[str]:
    """The fields of one line (quotes as in the csv module's excel dialect)."""
    if '"' not in line:
        return line.split(sep)
    try:
        return next(csv.reader([line], delimiter=sep), [])
    except csv.Error:  # e.g. a field past csv.field_size_limit()
        return line.split(sep)


def _is_name(field: str) -> bool:
    name = field.strip()
    return bool(name) and parse_float(name) is None and not any(c in name for c in "=:{}")


def _is_header(fields: list[str]) -> bool:
    """Whether fields are a header of a training log: names, one of them a metric or a
    step (the first may be empty: pandas' index column)."""
    if len(fields) < 2 or not all(_is_name(f) for f in fields[1:]):
        return False
    if not (_is_name(fields[0]) or fields[0].strip().lower() in _INDEX_NAMES):
        return False
    lowered = [n.strip().lower() for n in fields]
    return any(looks_like_metric(n) or n in _STEP_PRIORITY for n in lowered)


def sniff(head: bytes) -> bool:
    """Whether a file's first bytes look like a CSV training log.

    True when the first line is a delimited header of names (no ``=``, ``:`` or
    numbers) with at least one loss-like column, or a step/epoch column beside at least
    one other; and, if there is a second line, it has as many fields.
    """
    lines = head_lines(head, limit=2)
    if not lines or lines[0].lstrip().startswith(("{", "[", "#")):
        return False
    sep = sniff_separator(lines[0])
    names = split_fields(lines[0], sep)
    if len(lines) > 1 and len(split_fields(lines[1], sep)) != len(names):
        return False
    return _is_header(names)


class _Layout:
    """How to read the rows under one header."""

    def __init__(self, header: list[str], sep: str, tag_id: Callable[[str], int]) -> None:
        self.header = header
        self.sep = sep
        self.width = len(header)
        names = [h.strip() for h in header]
        lowered = [n.lower() for n in names]
        self.step_col = next((lowered.index(k) for k in _STEP_PRIORITY if k in lowered), -1)
        if self.step_col < 0 and lowered and lowered[0] in _INDEX_NAMES:
            self.step_col = 0
        self.wall_col = next((lowered.index(k) for k in WALL_KEYS if k in lowered), -1)
        self.phase_col = next((c for c, n in enumerate(lowered) if n in PHASE_KEYS), -1)
        self.tag_cols: list[int] = []
        self.tag_ids: list[int] = []
        self.tag_names: list[str] = []
        for col, name in enumerate(names):
            if col in (self.wall_col, self.phase_col) or not name:
                continue
            if col == self.step_col and lowered[col] != "epoch":
                continue
            self.tag_cols.append(col)
            self.tag_ids.append(tag_id(name))
            self.tag_names.append(name)
        self._tag_id = tag_id
        self._phase_ids: dict[str | None, list[int]] = {None: self.tag_ids}
        # Columns that held a number: text after it is a corrupt cell (reported); a
        # column of text only (a model name, a list) is no metric and says nothing.
        self.numeric = [False] * len(self.tag_cols)

    def row_tag_ids(self, phases: tuple[str, ...]) -> np.ndarray:
        """The tag of each cell of rows logged in ``phases`` (the phase column's cells):
        ``val/loss`` for the ``loss`` column of a ``val`` row; ``epoch`` stays itself."""
        rows = []
        for cell in phases:
            phase = phase_of(cell)
            # A column of ever new values is no phase: bound the tags (the dict also
            # holds None, the rows without a phase).
            if phase not in self._phase_ids and len(self._phase_ids) > _MAX_PHASES:
                phase = None
            ids = self._phase_ids.get(phase)
            if ids is None:
                ids = self._phase_ids[phase] = [
                    self._tag_id(name if name.lower() == "epoch" else f"{phase}/{name}")
                    for name in self.tag_names
                ]
            rows.append(ids)
        return np.array(rows, np.int32).ravel()


class CsvLoader(LineLoader):
    """Reads a CSV training log incrementally (see the module docstring).

    Args:
        path: the CSV file.
        batch_bytes: about the most one ``load()`` reads.
        max_line: the longest line parsed; longer ones are skipped and reported.

    Example:
        >>> loader = CsvLoader("logs/training.log")  # doctest: +SKIP
        >>> batch = loader.load()  # every row so far; later calls: only new rows
    """

    def __init__(self, path: Path | str, **kwargs: int) -> None:
        super().__init__(path, **kwargs)
        self._layout: _Layout | None = None
        self._rows_seen = 0  # the step when the file has no step column

    def _forget(self) -> None:
        self._layout = None
        self._rows_seen = 0

    def _set_header(self, line: str, sep: str | None = None) -> None:
        sep = sep or sniff_separator(line)
        header = split_fields(line, sep)
        self._layout = _Layout(header, sep, self._points.tag_id)
        self._rows_seen = 0

    def _parse(self, lines: list[str], first_line: int) -> None:
        rows: list[list[str]] = []
        steps: list[float] = []
        where: list[int] = []  # the line number of each row
        for i, line in enumerate(lines):
            if not line or line.isspace():
                continue
            layout = self._layout
            if layout is None:
                self._set_header(line)
                continue
            fields = split_fields(line, layout.sep)
            if len(fields) != layout.width or fields == layout.header:
                if fields == layout.header:
                    continue  # a repeated header (runs appended to one file)
                if _is_header(fields):
                    self._flush(rows, steps, where)
                    rows, steps, where = [], [], []
                    self._set_header(line, layout.sep)
                    continue
                self._problems.add(
                    f"line {first_line + i}",
                    f"{len(fields)} fields where the header has {layout.width}; skipped",
                )
                continue
            if layout.step_col >= 0:
                step = parse_float(fields[layout.step_col])
                if step is None or not -4e18 < step < 4e18:
                    if _is_header(fields):  # a new header, as wide
                        self._flush(rows, steps, where)
                        rows, steps, where = [], [], []
                        self._set_header(line, layout.sep)
                    elif any(f.strip() for f in fields):
                        self._problems.add(f"line {first_line + i}", "no step; skipped")
                    continue
            else:
                step = float(self._rows_seen)
                self._rows_seen += 1
            rows.append(fields)
            steps.append(step)
            where.append(first_line + i)
        self._flush(rows, steps, where)

    def _flush(self, rows: list[list[str]], steps: list[float], where: list[int]) -> None:
        """Turn rows of one layout into points, in file order (row by row, then column);
        ``where`` holds their line numbers."""
        layout = self._layout
        if not rows or layout is None or not layout.tag_cols:
            return
        columns = list(zip(*rows, strict=True))
        width = len(layout.tag_cols)
        values = np.empty((len(rows), width), np.float64)
        present = np.ones((len(rows), width), bool)
        for j, col in enumerate(layout.tag_cols):
            values[:, j], present[:, j], text = _numbers(columns[col])
            if text and not layout.numeric[j]:
                # Only text after the column's first number, however the file is chunked.
                first = int(np.argmax(present[:, j])) if present[:, j].any() else len(rows)
                text = [k for k in text if k > first]
            layout.numeric[j] = layout.numeric[j] or bool(present[:, j].any())
            if text:
                self._text_cells(columns[col], text, where, layout.header[col].strip())
        if layout.wall_col >= 0:
            wall, _, _ = _numbers(columns[layout.wall_col])
            wall = wall_seconds_array(wall)
        else:
            wall = np.full(len(rows), np.nan)
        keep = present.ravel()
        if layout.phase_col >= 0:
            tags = layout.row_tag_ids(columns[layout.phase_col])
        else:
            tags = np.tile(np.array(layout.tag_ids, np.int32), len(rows))
        self._points.add(
            tags[keep],
            np.repeat(np.array(steps, np.float64).astype(np.int64), width)[keep],
            np.repeat(wall, width)[keep],
            values.ravel()[keep],
        )

    def _text_cells(
        self, cells: tuple[str, ...], text: list[int], where: list[int], name: str
    ) -> None:
        """Report the text cells ``text`` (indices) in a column of numbers, each once;
        they are skipped."""
        for k in text:
            self._problems.add(
                f"line {where[k]}", f"{name} {shown(cells[k])!r} is not a number; skipped"
            )


def _numbers(cells: tuple[str, ...]) -> tuple[F64, np.ndarray, list[int]]:
    """The cells as numbers, which of them are numbers at all, and the indices of those
    that are text (neither a number nor a missing-value mark)."""
    try:
        return np.array(cells, np.float64), np.ones(len(cells), bool), []
    except (ValueError, OverflowError):
        pass
    present = np.array([c not in _MISSING for c in cells], bool)
    found = [c for c in cells if c not in _MISSING]
    out = np.full(len(cells), np.nan)
    try:
        out[present] = np.array(found, np.float64)
        return out, present, []
    except (ValueError, OverflowError):
        pass
    text: list[int] = []
    for k, cell in enumerate(cells):  # some cells are text: one by one
        number = parse_float(cell) if present[k] else None
        if number is None:
            if present[k] and cell.strip() not in _MISSING:
                text.append(k)
            present[k] = False
        else:
            out[k] = number
    return out, present, text


def read_lightning_hparams(path: Path | str) -> dict[str, HParamValue]:
    """The hyper-parameters in a Lightning ``hparams.yaml``, flattened with dots.

    A small reader for what ``yaml.dump`` writes for a dict of plain values (PyYAML is
    not a dependency): ``key: value`` lines, nested mappings by indentation
    (``optimizer.lr``), ``true``/``false``, numbers (also ``.inf``, ``.nan``), quoted
    and plain strings. Lists, ``null``, multi-line strings and tagged Python objects
    (``!!python/...``) are left out. A missing file gives an empty dict.

    Raises:
        InputError: the file exists but cannot be read.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            text = fh.read(_MAX_YAML).decode("utf-8", "replace")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise unreadable(path, exc) from None
    found: dict[str, HParamValue] = {}
    parents: list[tuple[int, str]] = []  # (indent, key) of the open mappings
    for line in text.splitlines():
        match = _YAML_KEY.match(line)
        if match is None:
            continue  # comments, list items, continuation lines, "---"
        indent = len(match["indent"])
        while parents and parents[-1][0] >= indent:
            parents.pop()
        key = _unquote(match["key"])
        rest = (match["rest"] or "").strip()
        if not rest or rest.startswith("!"):  # a mapping (maybe a tagged object) follows
            parents.append((indent, key))
            continue
        value = _yaml_scalar(rest)
        if value is not None:
            found[".".join([*(k for _, k in parents), key])] = value
    return found


_MAX_YAML = 1 << 20
_YAML_KEY = re.compile(
    r"""^(?P<indent>[ ]*)(?P<key>'[^']*'|"[^"]*"|[^\s#'"\-][^:#]*?)[ ]*:(?:[ ]+(?P<rest>.*))?$"""
)
_YAML_BOOL = {"true": True, "false": False, "yes": True, "no": False, "on": True, "off": False}
_YAML_NUMBER = re.compile(r"^[-+]?(\d[\d_]*)?\.?\d*([eE][-+]?\d+)?$")


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].replace('\\"', '"')
    return text.strip()


def _yaml_scalar(text: str) -> HParamValue | None:
    """One YAML scalar as PyYAML would resolve it, or None to leave it out."""
    if text[0] in "'\"":
        return _unquote(text)
    text = text.split(" #", 1)[0].strip()
    low = text.lower()
    if not text or text[0] in "!&*|>[{" or low in ("null", "~"):
        return None
    if low in _YAML_BOOL:
        return _YAML_BOOL[low]
    if low in (".inf", "+.inf", "-.inf", ".nan"):
        return float(low.replace(".", ""))
    if any(c.isdigit() for c in text) and _YAML_NUMBER.match(text):
        number = parse_float(text.replace("_", ""))
        if number is not None:
            return number
    return text
