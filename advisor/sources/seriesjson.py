"""JSON files holding one series per metric: Sacred's ``metrics.json``, Keras histories.

Two shapes, both one JSON object keyed by metric name:

- Sacred's ``FileStorageObserver`` writes ``<run>/metrics.json``, ``{"validation.loss":
  {"steps": [...], "timestamps": [...], "values": [...]}, ...}``, rewritten at each
  heartbeat; timestamps are ISO times in UTC (``datetime.utcnow()``). The run's
  ``config.json`` beside it holds the hyper-parameters (see :class:`JsonConfigLoader`).
- A Keras ``History`` saved with ``json.dump(history.history, f)``: ``{"loss": [...],
  "val_loss": [...], ...}``, one value per epoch (the step is the epoch, from 0).

The file is rewritten whole (see :mod:`advisor.sources.rewritten`); each call emits the
points after those emitted from each series, and a series that lost or changed points
already emitted (a run restarted into the same file) resets the batch. A value that is
not a number (``null``) is skipped; NaN and infinity (``NaN``, ``Infinity``: Python's
json writes them) are kept.
"""

from __future__ import annotations

import hashlib
import math
import re
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

from advisor.model import HParamValue
from advisor.sources._text import as_step
from advisor.sources._text import flatten_hparams
from advisor.sources._text import json_number
from advisor.sources._text import looks_like_metric
from advisor.sources.rewritten import RewrittenJson

__all__ = ["JsonConfigLoader", "SeriesJsonLoader", "sniff"]

# A Keras history's start: an object whose first value is a list of numbers.
_KERAS_HEAD = re.compile(
    rb'\A\s*\{\s*"(?P<key>[^"\\]{1,200})"\s*:\s*\[\s*(?:-?[0-9]|-?Infinity|NaN|null|\])'
)


def sniff(head: bytes) -> bool:
    """Whether a ``.json`` file's first bytes look like a saved Keras history."""
    match = _KERAS_HEAD.match(head)
    if match is None:
        return False
    keys = re.findall(rb'"([^"\\]{1,200})"\s*:\s*\[', head)
    return any(looks_like_metric(k.decode("utf-8", "replace")) for k in keys)


class SeriesJsonLoader(RewrittenJson):
    """Reads a Sacred ``metrics.json`` or a saved Keras history (see the module docstring).

    Args:
        path: the file.
        max_bytes: a larger file is reported and not read.
    """

    def __init__(self, path: Path | str, **kwargs: int) -> None:
        super().__init__(path, **kwargs)
        self._emitted: dict[str, tuple[int, bytes]] = {}  # name → (points, their digest)

    def _invalid(self, data: Any) -> str | None:
        if not isinstance(data, dict) or not data:
            return "not a JSON object of metric series"
        for name, series in data.items():
            if not isinstance(series, list) and not (
                isinstance(series, dict) and isinstance(series.get("values"), list)
            ):
                return f"{name!r} is not a series (a list, or an object with 'values')"
        return None

    def _take(self, data: Any) -> tuple[bool, dict[str, HParamValue]]:
        table = [(name, *_series(value)) for name, value in data.items()]
        reset = False
        for name, steps, _, values in table:
            count, digest = self._emitted.get(name, (0, b""))
            if count and (len(values) < count or _digest(steps, values, count) != digest):
                reset = True
        if reset:
            self._emitted.clear()
            self._points.clear()
        tag_ids: list[int] = []
        all_steps: list[int] = []
        walls: list[float] = []
        numbers: list[float] = []
        for name, steps, stamps, values in table:
            start = self._emitted.get(name, (0, b""))[0]
            for i in range(start, len(values)):
                number = json_number(values[i])
                step = steps[i]
                if number is None or step is None:
                    continue
                tag_ids.append(self._points.tag_id(name))
                all_steps.append(step)
                walls.append(_wall(stamps[i]) if stamps else math.nan)
                numbers.append(number)
            self._emitted[name] = (len(values), _digest(steps, values, len(values)))
        self._points.add_lists(tag_ids, all_steps, walls, numbers)
        return reset, {}


def _series(value: Any) -> tuple[list[int | None], list[Any], list[Any]]:
    """(steps, timestamps, values) of one series: steps and values as long as each
    other, timestamps too or empty (converted only for the points emitted)."""
    if isinstance(value, list):
        return list(range(len(value))), [], value
    values = value["values"]
    steps = value.get("steps")
    stamps = value.get("timestamps")
    n = len(values)
    if not isinstance(steps, list) or len(steps) != n:
        steps = list(range(n))
    if not isinstance(stamps, list) or len(stamps) != n:
        stamps = []
    return [_step(s) for s in steps], stamps, values


def _step(value: Any) -> int | None:
    number = json_number(value)
    return None if number is None else as_step(number)


def _wall(stamp: Any) -> float:
    """Seconds since the epoch of Sacred's ISO time (naive: UTC), NaN if unreadable."""
    if not isinstance(stamp, str):
        return math.nan
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        return math.nan
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _digest(steps: list[int | None], values: list[Any], count: int) -> bytes:
    return hashlib.blake2b(repr((steps[:count], values[:count])).encode(), digest_size=16).digest()


class JsonConfigLoader(RewrittenJson):
    """The hyper-parameters in a JSON config (Sacred's ``config.json``, Ray Tune's
    ``params.json``), nested objects flattened with dots (``optimizer.lr``); lists and
    nulls are left out. Read again whenever it changes; a version that is not a JSON
    object is reported, as any rewritten JSON file (:mod:`advisor.sources.rewritten`).

    Args:
        path: the file.
        max_bytes: a larger file is reported and not read.
    """

    def __init__(self, path: Path | str, **kwargs: int) -> None:
        super().__init__(path, **kwargs)
        self._config: dict[str, HParamValue] = {}

    def _invalid(self, data: Any) -> str | None:
        return None if isinstance(data, dict) else "not a JSON object"

    def _take(self, data: Any) -> tuple[bool, dict[str, HParamValue]]:
        found: dict[str, HParamValue] = {}
        flatten_hparams(data, "", found)
        if found == self._config:
            return False, {}
        self._config = found
        return False, found
