"""MLflow's file store: ``mlruns/<experiment>/<run_id>/metrics/<key>``.

Each metric file holds one tag, one point per line: ``<timestamp_ms> <value> <step>``
(MLflow's ``FileStore`` appends ``f"{timestamp} {value} {step}\\n"``; files written
before MLflow 1.0 have no step, which MLflow reads as step 0). A key with ``/`` lives in
nested directories. Parameters are files under ``params/``, the run's name is in
``meta.yaml`` (``run_name:``) or, for older runs, in ``tags/mlflow.runName``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from advisor.model import Batch
from advisor.model import HParamValue
from advisor.model import Problem
from advisor.sources._text import LineLoader
from advisor.sources._text import as_step
from advisor.sources._text import parse_float
from advisor.sources.tail import unreadable

__all__ = ["MlflowDbNotice", "MlflowMetricLoader", "read_mlflow_params", "run_name"]

_MAX_PARAM = 64 << 10
_BOOLS = {"true": True, "false": False}


class MlflowMetricLoader(LineLoader):
    """Reads one MLflow metric file incrementally.

    Args:
        path: ``.../metrics/<key>``.
        tag: the metric's key; by default the path below ``metrics/``.
        batch_bytes: about the most one ``load()`` reads.
        max_line: the longest line parsed; longer ones are skipped and reported.
    """

    def __init__(self, path: Path | str, tag: str | None = None, **kwargs: int) -> None:
        super().__init__(path, **kwargs)
        self.tag = tag or _key_of(self.path)

    def _parse(self, lines: list[str], first_line: int) -> None:
        rows = [line.split() for line in lines]
        if rows and all(len(r) == 3 for r in rows):
            try:
                table = np.array(rows, np.float64)
            except (ValueError, OverflowError):
                pass
            else:
                steps = table[:, 2]
                if np.all(np.abs(steps) < 4e18):  # also false for NaN
                    tag = np.full(len(rows), self._points.tag_id(self.tag), np.int32)
                    self._points.add(
                        tag, steps.astype(np.int64), table[:, 0] / 1000.0, table[:, 1]
                    )
                    return
        self._parse_slowly(rows, first_line)

    def _parse_slowly(self, rows: list[list[str]], first_line: int) -> None:
        """One line at a time, reporting the malformed ones."""
        steps: list[int] = []
        walls: list[float] = []
        values: list[float] = []
        for i, fields in enumerate(rows):
            if not fields:
                continue
            stamp = parse_float(fields[0])
            value = parse_float(fields[1]) if len(fields) > 1 else None
            step_value = parse_float(fields[2]) if len(fields) == 3 else 0.0
            step = as_step(step_value) if step_value is not None else None
            if len(fields) > 3 or stamp is None or value is None or step is None:
                self._problems.add(f"line {first_line + i}", "not 'timestamp value step'; skipped")
                continue
            steps.append(step)
            walls.append(stamp / 1000.0)
            values.append(value)
        tag = self._points.tag_id(self.tag) if steps else 0
        self._points.add_lists([tag] * len(steps), steps, walls, values)


class MlflowDbNotice:
    """MLflow's SQLite tracking store (``mlflow.db``), which is not read: says so once.

    Since MLflow 3.7 runs go to ``sqlite:///mlflow.db`` unless ``MLFLOW_TRACKING_URI``
    names a file store; without this notice such runs would be missing in silence.

    Args:
        path: the database file.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._told = False

    def load(self, *, final: bool = False) -> Batch:
        """The notice on the first call, then nothing."""
        if self._told:
            return Batch()
        self._told = True
        return Batch(
            problems=(
                Problem(
                    str(self.path),
                    "file",
                    "an MLflow SQLite tracking store, which is not read: to watch these runs, "
                    "log them to a file store (MLFLOW_TRACKING_URI=./mlruns)",
                ),
            )
        )


def _key_of(path: Path) -> str:
    parts = path.parts
    if "metrics" in parts:
        at = len(parts) - 1 - parts[::-1].index("metrics")
        if at < len(parts) - 1:
            return "/".join(parts[at + 1 :])
    return path.name


def _read_small(path: Path) -> str | None:
    try:
        with open(path, "rb") as fh:
            return fh.read(_MAX_PARAM).decode("utf-8", "replace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise unreadable(path, exc) from None


def read_mlflow_params(run_dir: Path | str) -> dict[str, HParamValue]:
    """A run's parameters: ``<run_dir>/params/<key>`` files (keys may hold ``/``).

    Numbers become floats, ``true``/``false`` (any case) booleans, the rest strings.

    Raises:
        InputError: a parameter file exists but cannot be read.
    """
    root = Path(run_dir) / "params"
    found: dict[str, HParamValue] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath, name)
            text = _read_small(path)
            if text is None:
                continue
            key = path.relative_to(root).as_posix()
            text = text.strip()
            number = parse_float(text)
            if number is not None and "_" not in text:
                found[key] = number
            else:
                found[key] = _BOOLS.get(text.lower(), text)
    return found


def run_name(run_dir: Path | str) -> str | None:
    """A run's name: ``run_name:`` in ``meta.yaml``, else ``tags/mlflow.runName``."""
    run_dir = Path(run_dir)
    meta = _read_small(run_dir / "meta.yaml")
    for line in (meta or "").splitlines():
        if line.startswith("run_name:"):
            name = line.partition(":")[2].strip()
            if len(name) >= 2 and name[0] == name[-1] and name[0] in "'\"":
                name = name[1:-1]
            if name:
                return name
    tag = _read_small(run_dir / "tags" / "mlflow.runName")
    return tag.strip() or None if tag is not None else None
