"""JSON Lines metrics logs: one JSON object of metrics per line.

The step is the first of ``step``, ``global_step``, ``iteration``, ``iter``, ``epoch``
that holds a number, else the line's index among the metric lines (lines with at least
one metric). Once the first metric line has logged a step, a metric line without one is
reported and skipped: an index there would land on the logged steps. The wall time is
``wall_time``, ``timestamp`` or ``time`` when it holds seconds (or milliseconds) since
the epoch. Every other number is a tag; nested objects are flattened with ``/``
(``{"val": {"loss": 1}}`` → ``val/loss``); booleans, lists and nulls are not metrics.
A string that Python's ``float()`` reads is a number too, for steps, times and
metrics alike, and so is a one-element tensor's text (``_text.json_number``): strict
JSON has no NaN or infinity, so writers that keep them spell them ``"NaN"``,
``"Infinity"`` (the evidence of a diverged run), and ``json.dumps(..., default=str)``,
the usual way past numpy's float32 and int64, writes ``"0.51"``. Any other string is not
a metric; it is reported (the point is lost) in a key that held a number on an earlier
line, as CSV does for text in a column of numbers, and once per key under a metric's
name that never held one (``"tensor([0.5, 0.6])"``: why such a log yields no metrics).
A ``phase``, ``split``, ``mode``, ``stage`` or ``subset`` key holding a name
(``{"epoch": 3, "split": "val", "loss": 0.4}``, a long-format log) prefixes the line's
tags but ``epoch`` (``val/loss``). A null is skipped in silence: pandas' ``to_json``
writes it for a value not logged in that row (orjson and JavaScript for NaN, but the
two cannot be told apart). ``epoch`` stays a tag even when it is the step. An invalid
line is reported once, with its number, and skipped.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from advisor.sources._text import PHASE_KEYS
from advisor.sources._text import STEP_KEYS
from advisor.sources._text import WALL_KEYS
from advisor.sources._text import LineLoader
from advisor.sources._text import as_step
from advisor.sources._text import head_lines
from advisor.sources._text import json_number
from advisor.sources._text import looks_like_metric
from advisor.sources._text import phase_of
from advisor.sources._text import shown
from advisor.sources._text import wall_seconds

__all__ = ["JsonlLoader", "sniff"]

_STEP_PRIORITY = (*STEP_KEYS, "epoch")
_NOT_TAGS = frozenset((*STEP_KEYS, *WALL_KEYS))
_MAX_DEPTH = 8
# Metric-like keys reported for holding text (the file's problem log stops at 50 anyway).
_MAX_TOLD = 64


def _flatten(
    obj: dict[str, Any],
    prefix: str,
    out: list[tuple[str, float]],
    depth: int,
    texts: list[tuple[str, str]] | None = None,
) -> None:
    """Collect the numbers of a (nested) object as (tag, value), in key order, and the
    other strings as (tag, text) in ``texts`` when given. At the top level, the step and
    time keys are not tags, and a phase key (``"split": "val"``) prefixes the others
    (``val/loss``) but ``epoch``."""
    phase = ""
    if depth == 0:
        found = next((phase_of(obj[k]) for k in obj if k in PHASE_KEYS), None)
        phase = f"{found}/" if found else ""
    for key, value in obj.items():
        if type(value) is dict:
            if depth < _MAX_DEPTH:
                _flatten(value, f"{prefix}{phase}{key}/", out, depth + 1, texts)
            continue
        if depth == 0 and (key in _NOT_TAGS or (phase and key in PHASE_KEYS)):
            continue
        tag = prefix + key if key == "epoch" and depth == 0 else prefix + phase + key
        number = json_number(value)
        if number is not None:
            out.append((tag, number))
        elif texts is not None and type(value) is str:
            texts.append((tag, value))


def _first_number(obj: dict[str, Any], keys: tuple[str, ...]) -> float | None:
    """The number under the first of ``keys`` that holds one (the step, the wall time)."""
    for key in keys:
        value = json_number(obj.get(key))
        if value is not None:
            return value
    return None


def sniff(head: bytes) -> bool:
    """Whether a file's first bytes look like JSON Lines of metrics.

    True when the first non-blank line is a JSON object with at least one number.
    """
    lines = head_lines(head, limit=1)
    if not lines or not lines[0].lstrip().startswith("{"):
        return False
    try:
        obj = json.loads(lines[0])
    except (ValueError, RecursionError):
        return False
    if not isinstance(obj, dict):
        return False
    found: list[tuple[str, float]] = []
    _flatten(obj, "", found, 0)
    return bool(found) or _first_number(obj, _STEP_PRIORITY) is not None


class JsonlLoader(LineLoader):
    """Reads a JSON Lines metrics log incrementally (see the module docstring).

    Args:
        path: the file.
        batch_bytes: about the most one ``load()`` reads.
        max_line: the longest line parsed; longer ones are skipped and reported.
    """

    def __init__(self, path: Path | str, **kwargs: int) -> None:
        super().__init__(path, **kwargs)
        self._metric_lines = 0
        self._stepped = False  # the first metric line logged a step
        self._numeric: set[str] = set()  # the tags that held a number
        self._told: set[str] = set()  # metric-like tags reported for text, never numbers

    def _forget(self) -> None:
        self._metric_lines = 0
        self._stepped = False
        self._numeric.clear()
        self._told.clear()

    def _tell(self, tag: str) -> bool:
        """True the first time a metric-like key without numbers is seen (bounded)."""
        if tag in self._told or len(self._told) >= _MAX_TOLD:
            return False
        self._told.add(tag)
        return True

    def _parse(self, lines: list[str], first_line: int) -> None:
        tag_ids: list[int] = []
        steps: list[int] = []
        walls: list[float] = []
        values: list[float] = []
        tag_id = self._points.tag_id
        found: list[tuple[str, float]] = []
        texts: list[tuple[str, str]] = []
        numeric = self._numeric
        for i, line in enumerate(lines):
            if not line or line.isspace():
                continue
            try:
                obj = json.loads(line)
            except (ValueError, RecursionError):
                self._problems.add(f"line {first_line + i}", "not valid JSON; skipped")
                continue
            if type(obj) is not dict:
                self._problems.add(f"line {first_line + i}", "not a JSON object; skipped")
                continue
            found.clear()
            texts.clear()
            _flatten(obj, "", found, 0, texts)
            for tag, text in texts:
                # Text where a number was logged before loses a point; text under a
                # metric's name that never held one (a whole tensor's text, from
                # ``default=str``) is why a log yields no metrics: said once per key.
                if tag in numeric or (looks_like_metric(tag) and self._tell(tag)):
                    self._problems.add(
                        f"line {first_line + i}", f"{tag} {shown(text)!r} is not a number; skipped"
                    )
            if not found:
                continue
            logged = _first_number(obj, _STEP_PRIORITY)
            has_step = logged is not None
            if not self._metric_lines:
                self._stepped = has_step
            self._metric_lines += 1
            if self._stepped and not has_step:
                self._problems.add(f"line {first_line + i}", "no numeric step; skipped")
                continue
            step = as_step(logged) if logged is not None else self._metric_lines - 1
            if step is None:
                self._problems.add(f"line {first_line + i}", "the step is not a number; skipped")
                continue
            stamp = _first_number(obj, WALL_KEYS)
            wall = wall_seconds(stamp) if stamp is not None else math.nan
            for tag, value in found:
                numeric.add(tag)
                tag_ids.append(tag_id(tag))
                steps.append(step)
                walls.append(wall)
                values.append(value)
        self._points.add_lists(tag_ids, steps, walls, values)
