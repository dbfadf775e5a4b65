"""MLflow's file store: ``mlruns/<experiment>/<run_id>/metrics/<key>``.

Each metric file holds one tag, one point per line: ``<timestamp_ms> <value> <step>``
(MLflow's ``FileStore`` appends ``f"{timestamp} {value} {step}\\n"``; files written
before MLflow 1.0 have no step, which MLflow reads as step 0). A key with ``/`` lives in
nested directories. Parameters are files under ``params/``, the run's name is in
``meta.yaml`` (``run_name:``) or, for older runs, in ``tags/mlflow.runName``.

MLflow's SQLite store (``mlflow.db``, its default since 3.7) is read by
:class:`MlflowDbLoader`, one run per loader.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from advisor.errors import InputError
from advisor.model import Batch
from advisor.model import HParamValue
from advisor.sources._text import LineLoader
from advisor.sources._text import as_step
from advisor.sources._text import parse_float
from advisor.sources.tail import PointTable
from advisor.sources.tail import stat_file
from advisor.sources.tail import unreadable

__all__ = [
    "MlflowDbLoader", "MlflowMetricLoader", "mlflow_db_runs", "read_mlflow_params", "run_name",
    "runs_logged_after",
]  # fmt: skip

_MAX_PARAM = 64 << 10
# Seconds a reader waits for a writer's lock on an MLflow database (see ``_read_only``).
DB_WAIT = 1.0
# MLflow's SQL store writes an infinity as the largest double (``sanitize_metric_value``).
_MAX_DOUBLE = sys.float_info.max
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


class MlflowDbLoader:
    """Reads one run of MLflow's SQLite tracking store (``mlflow.db``) incrementally.

    MLflow's ``SqlAlchemyStore`` inserts a row per logged value into ``metrics`` (key,
    value, timestamp in ms, step, is_nan, run_uuid); rows of a run are read in insertion
    order (``rowid``), from after the last one read. MLflow stores a NaN as 0 with
    ``is_nan`` set and an infinity as the largest double: both are given back. The run's
    ``params`` are its hyper-parameters (numbers as floats, ``true``/``false`` as
    booleans), read again whenever they change.

    Each call opens the database read-only (waiting up to a second for a writer's lock)
    and closes it. A database replaced by another file (a new inode) is read again from
    its start, with ``Batch.reset`` set.

    Args:
        path: the database file.
        run_id: the run's ``run_uuid``.
        batch_rows: the most rows one call returns (``Batch.more`` says when it stopped).
    """

    def __init__(self, path: Path | str, run_id: str, *, batch_rows: int = 1 << 20) -> None:
        if batch_rows <= 0:
            raise ValueError(f"batch_rows must be positive: {batch_rows}")
        self.path = Path(path)
        self.run_id = run_id
        self._batch_rows = batch_rows
        self._last = 0  # the rowid of the last row read
        self._inode = -1
        self._params: dict[str, HParamValue] = {}
        self._points = PointTable()

    def load(self, *, final: bool = False) -> Batch:
        """Return the rows logged since the previous call (``final`` changes nothing:
        SQLite's commits are whole).

        Raises:
            InputError: the database cannot be read (not SQLite, corrupt, or locked
                for longer than a second).
        """
        st = stat_file(self.path)
        if st is None:
            return Batch()
        reset = self._inode >= 0 and st.st_ino != self._inode
        if reset or self._inode < 0:
            self._inode, self._last, self._params = st.st_ino, 0, {}
            self._points.clear()
        try:
            with _read_only(self.path) as con:
                rows = con.execute(
                    "SELECT rowid, key, value, timestamp, step, is_nan FROM metrics "
                    "WHERE run_uuid = ? AND rowid > ? ORDER BY rowid LIMIT ?",
                    (self.run_id, self._last, self._batch_rows),
                ).fetchall()
                params = con.execute(
                    "SELECT key, value FROM params WHERE run_uuid = ? ORDER BY key",
                    (self.run_id,),
                ).fetchall()
        except sqlite3.Error as exc:
            raise InputError(f"{self.path}: cannot read the MLflow database: {exc}") from None
        self._add(rows)
        found = {str(key): _param_value(str(value)) for key, value in params}
        hparams = {k: v for k, v in found.items() if self._params.get(k) != v}
        self._params.update(hparams)
        return Batch(
            scalars=self._points.build(),
            hparams=hparams,
            reset=reset,
            more=len(rows) == self._batch_rows,
        )

    def _add(self, rows: list[tuple[int, str, float, int, int, int]]) -> None:
        if not rows:
            return
        self._last = int(rows[-1][0])
        tag_id = self._points.tag_id
        tags = [tag_id(str(r[1])) for r in rows]
        values = np.array([r[2] for r in rows], np.float64)
        values[np.array([bool(r[5]) for r in rows])] = np.nan
        values[values == _MAX_DOUBLE] = np.inf
        values[values == -_MAX_DOUBLE] = -np.inf
        self._points.add(
            np.array(tags, np.int32),
            np.array([r[4] for r in rows], np.int64),
            np.array([r[3] for r in rows], np.float64) / 1000.0,
            values,
        )


def mlflow_db_runs(path: Path) -> list[tuple[str, str]] | None:
    """(experiment id, run id) of each run of an MLflow SQLite store, in run start order;
    None when ``path`` is not one (MLflow 3.7 and later keep runs in ``mlflow.db`` by
    default, not in ``mlruns/``)."""
    try:
        with path.open("rb") as fh:
            if fh.read(16) != b"SQLite format 3\x00":
                return None
        with _read_only(path) as con:
            tables = {
                name
                for (name,) in con.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name IN ('experiments', 'runs', 'metrics')"
                )
            }
            if len(tables) < 3:
                return None
            rows = con.execute(
                "SELECT CAST(r.experiment_id AS TEXT), r.run_uuid FROM runs r "
                "LEFT JOIN experiments e ON e.experiment_id = r.experiment_id "
                "WHERE coalesce(r.lifecycle_stage, 'active') != 'deleted' "
                "AND coalesce(e.lifecycle_stage, 'active') != 'deleted' "
                "ORDER BY r.start_time, r.run_uuid"
            ).fetchall()
    except (OSError, sqlite3.Error):
        return None
    return [(str(exp), str(uuid)) for exp, uuid in rows if uuid]


def runs_logged_after(path: Path, rowid: int) -> tuple[frozenset[str], int] | None:
    """The runs of an MLflow database with metric rows after ``rowid``, and the last
    rowid; None when it cannot be read. One range scan of the table's rowids: what tells
    a watcher which of many runs a commit touched, without a query per run.

    Rowids only grow while MLflow writes (it never runs VACUUM, which may renumber them);
    a replaced database must be asked from rowid 0.
    """
    try:
        with _read_only(path) as con:
            runs = con.execute(
                "SELECT DISTINCT run_uuid FROM metrics WHERE rowid > ?", (rowid,)
            ).fetchall()
            (last,) = con.execute("SELECT coalesce(max(rowid), 0) FROM metrics").fetchone()
    except (OSError, sqlite3.Error):
        return None
    return frozenset(str(r) for (r,) in runs), int(last)


@contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to an SQLite database, closed after use.

    Race: MLflow commits under an exclusive lock; a reader that gave up at once would
    miss a read, or drop the database's runs from a scan (forgotten, then read anew at
    the next). Commits take milliseconds: wait up to ``DB_WAIT`` for one.
    """
    con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=DB_WAIT)
    try:
        yield con
    finally:
        con.close()


def _param_value(text: str) -> HParamValue:
    """An MLflow parameter (always stored as text) as a hyper-parameter value."""
    text = text.strip()
    number = parse_float(text)
    if number is not None and "_" not in text:
        return number
    return _BOOLS.get(text.lower(), text)


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
            found[key] = _param_value(text)
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
