"""The watched log files: a loader and a signature per file, their runs, and the Store.

Owned by the worker thread (no locks). ``scan`` is discovery over every root, the truth
about which files exist; ``load`` reads what a file gained since the last call.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

from advisor.config import Settings
from advisor.errors import InputError
from advisor.sources.base import Loader
from advisor.sources.discovery import DB_SUFFIXES
from advisor.sources.discovery import SNIFF_BYTES
from advisor.sources.discovery import LogFile
from advisor.sources.discovery import discover
from advisor.sources.discovery import in_wandb_side_dir
from advisor.sources.discovery import root_labels
from advisor.sources.mlflow import mlflow_db_runs
from advisor.sources.mlflow import runs_logged_after
from advisor.sources.registry import make_loader
from advisor.store import Store

from .state import FileSig
from .state import stat_db_sig
from .state import stat_sig

log = logging.getLogger("advisor.daemon")

# Files beside an SQLite database that its writers change (a commit in WAL mode changes
# only the -wal file): an event on one is an event on the database.
_DB_SIDE_FILES = ("-wal", "-journal")
# discover() sniffs the first SNIFF_BYTES of a text file; an unknown file that had at
# least that much when a rescan passed it over stays unknown, however it grows.
# Bound on remembered non-log paths (checkpoints, images): past it, forget them all.
_MAX_PASSED_OVER = 100_000


def _database_of(path: str) -> str:
    """The database whose ``-wal`` or ``-journal`` file ``path`` is, else ""."""
    for suffix in _DB_SIDE_FILES:
        if path.endswith(suffix):
            return path[: -len(suffix)]
    return ""


def key_of(lf: LogFile) -> str:
    """How a watched log is known: its path, and for one run of a database holding many
    (``LogFile.part``) the path and that run's id."""
    path = os.path.normpath(lf.path)
    return f"{path}#{lf.part}" if lf.part else path


@dataclass
class Tracked:
    """One watched file: how to read it, and its signature as last read."""

    logfile: LogFile
    loader: Loader
    sig: FileSig | None = None


@dataclass(frozen=True, slots=True)
class ScanResult:
    """What a scan changed.

    Attributes:
        added: paths found for the first time.
        gone_runs: runs with no file left (to forget).
        rebuilt: runs that lost a file but not all: their curves were read again.
    """

    added: frozenset[str] = frozenset()
    gone_runs: frozenset[str] = frozenset()
    rebuilt: frozenset[str] = frozenset()


@dataclass
class LogSet:
    """Every watched file under ``roots``, with the Store of their points.

    Args:
        roots: as given to ``discover`` (absolute paths, so that they match events).
        settings: for the loaders.
        store: where points go.
    """

    roots: Sequence[Path]
    settings: Settings
    store: Store = field(default_factory=Store)
    files: dict[str, Tracked] = field(default_factory=dict)  # by key (see ``key_of``)
    by_run: dict[str, set[str]] = field(default_factory=dict)
    by_path: dict[str, set[str]] = field(default_factory=dict)  # a file's keys
    # Per MLflow database: (inode, last metrics rowid) when its changed runs were asked.
    _db_seen: dict[str, tuple[int, int]] = field(default_factory=dict)
    _missing_roots: set[Path] = field(default_factory=set)
    _passed_over: dict[str, int] = field(default_factory=dict)  # non-log path -> its size
    _unknown: set[str] = field(default_factory=set)  # asked for a rescan since the last

    def worth_rescan(self, path: str) -> bool:
        """An event for a path that is no known log: could a rescan find something?

        Yes for a new file, or one a rescan passed over while it was too short to be
        recognised and that changed since (a CSV log's first lines); yes for a deleted
        directory that held logs. No for the rest (checkpoints, images, the temporary
        file of an atomic rewrite, renamed away), so that they cost no rescans.
        """
        try:
            size = os.stat(path).st_size
        except OSError:
            prefix = path.rstrip(os.sep) + os.sep
            return any(p.startswith(prefix) for p in self.files)
        if any(in_wandb_side_dir(Path(path), root) for root in self.roots):
            return False  # W&B's own files: its stdout copy grows with every print
        db = _database_of(path) or path
        if Path(db).suffix.lower() in DB_SUFFIXES:
            # Larger than any sniff, yet a database with no run at the last scan may
            # have one now (MLflow creates the file, then the run).
            return bool(mlflow_db_runs(Path(db)))
        was = self._passed_over.get(path)
        if was is None or (was < SNIFF_BYTES and size != was):
            self._unknown.add(path)
            return True
        return False

    def run_of(self, key: str) -> str | None:
        t = self.files.get(key)
        return t.logfile.run if t is not None else None

    def _watched(self, path: str) -> tuple[str, dict[str, str]]:
        """The watched file an event on ``path`` is about (a database, for its ``-wal``
        or ``-journal`` file) and its keys by run id (``""`` for a file of one run)."""
        db = path if path in self.by_path else _database_of(path)
        return db, {self.files[k].logfile.part: k for k in self.by_path.get(db, ())}

    def keys_of(self, path: str) -> list[str]:
        """The keys to read after an event on the file ``path``: its own; for an MLflow
        database (or its ``-wal`` or ``-journal`` file), the runs with new metric rows
        (one query, instead of one per run: a database can hold thousands)."""
        db, keys = self._watched(path)
        if not keys or "" in keys:
            return sorted(keys.values())
        try:
            inode = os.stat(db).st_ino
        except OSError:
            return sorted(keys.values())  # gone: the reads find out
        seen = self._db_seen.get(db)
        fresh = seen is None or seen[0] != inode  # a replaced database: ask from the start
        got = runs_logged_after(Path(db), 0 if fresh or seen is None else seen[1])
        if got is None:
            return sorted(keys.values())
        runs, last = got
        self._db_seen[db] = (inode, last)
        return sorted(k for part, k in keys.items() if fresh or part in runs)

    def runs_changed(self, path: str) -> bool:
        """For an event on an MLflow database: whether its runs are other than those
        watched (a run started or deleted), which only a rescan adds or drops."""
        db, keys = self._watched(path)
        if not keys or "" in keys:
            return False
        runs = mlflow_db_runs(Path(db))
        return runs is not None and {uuid for _, uuid in runs} != keys.keys()

    def scan(self) -> ScanResult:
        """Discover every root again; add new files, drop vanished ones."""
        found: dict[str, LogFile] = {}
        for root, label in zip(self.roots, root_labels(self.roots), strict=True):
            try:
                listed = discover(root, label)
            except InputError as exc:
                # A root that vanished (unmounted, deleted) counts as empty: its runs go.
                if root not in self._missing_roots:
                    log.warning("%s", exc)
                    self._missing_roots.add(root)
                continue
            self._missing_roots.discard(root)
            for lf in listed:
                found[key_of(lf)] = lf
        gone = [p for p, t in self.files.items() if found.get(p) != t.logfile]
        touched = {self.files[p].logfile.run for p in gone}
        for path in gone:
            self._remove(path)
        added = [p for p in found if p not in self.files]
        for path in added:
            self._add(path, found[path])
        self._pass_over()
        gone_runs = frozenset(r for r in touched if r not in self.by_run)
        rebuilt = frozenset(r for r in touched if r in self.by_run)
        for run in rebuilt:
            self.rebuild(run)
        return ScanResult(frozenset(added), gone_runs, rebuilt)

    def _pass_over(self) -> None:
        """Remember the unknown paths that asked for this scan and are still no log."""
        if len(self._passed_over) > _MAX_PASSED_OVER:
            self._passed_over.clear()
        for path in self._unknown - self.files.keys():
            try:
                self._passed_over[path] = os.stat(path).st_size
            except OSError:
                self._passed_over.pop(path, None)
        self._unknown.clear()

    def _add(self, key: str, lf: LogFile) -> None:
        path = os.path.normpath(lf.path)
        if lf.part and path not in self.by_path:
            # Before any of its runs is read: rows after this are news to some reader.
            self._mark_database(path)
        self.files[key] = Tracked(lf, make_loader(lf, self.settings))
        self.by_run.setdefault(lf.run, set()).add(key)
        self.by_path.setdefault(path, set()).add(key)

    def _mark_database(self, path: str) -> None:
        """Remember where an MLflow database's metrics end now (see ``keys_of``)."""
        self._db_seen.pop(path, None)
        try:
            inode = os.stat(path).st_ino
        except OSError:
            return
        got = runs_logged_after(Path(path), 1 << 62)
        if got is not None:
            self._db_seen[path] = (inode, got[1])

    def _remove(self, key: str) -> None:
        t = self.files.pop(key)
        path = os.path.normpath(t.logfile.path)
        self.by_path[path].discard(key)
        if not self.by_path[path]:
            del self.by_path[path]
            self._db_seen.pop(path, None)
        keys = self.by_run.get(t.logfile.run)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self.by_run[t.logfile.run]
                self.store.drop(t.logfile.run)

    def rebuild(self, run: str) -> None:
        """Read a run's remaining files again from their start (one of them went away:
        the Store cannot take back one file's points)."""
        self.store.drop(run)
        for path in sorted(self.by_run.get(run, ())):
            t = self.files[path]
            self.files[path] = Tracked(t.logfile, make_loader(t.logfile, self.settings))

    def drop_file(self, path: str) -> str | None:
        """Forget a file (by key) found deleted; the run to forget if it was its last."""
        t = self.files.get(path)
        if t is None:
            return None
        run = t.logfile.run
        self._remove(path)
        if run not in self.by_run:
            return run
        self.rebuild(run)
        return None

    def load(self, path: str, *, final: bool = False) -> bool | None:
        """Read what ``path`` gained into the Store.

        Args:
            path: the file's key (``key_of``: its path, but for a run of a database).
            final: the writer is not expected to write more (``watch --once``): a last
                line or record cut off is reported, as ``replay`` does, rather than
                waited for. It is not read either way.

        Returns:
            True if it gave points (or hyper-parameters, or was read again from its
            start), False if it is unchanged, None if it is gone (call ``drop_file``).
        """
        t = self.files[path]
        run = t.logfile.run
        file = os.path.normpath(t.logfile.path)
        try:
            # Race: the stat comes before the read. A write in between is read but not
            # in the signature, so the signature can only understate what was read; the
            # next event (or a restart) then reads nothing new, which is harmless. The
            # other order could record bytes that were never read as read.
            sig = (stat_db_sig if t.logfile.part else stat_sig)(file, run)
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("%s: cannot stat: %s", file, exc.strerror)
            return False
        if sig.same_file(t.sig):
            return False  # the one stat an unchanged file costs
        gave = False
        try:
            while True:
                batch = t.loader.load(final=final)
                self.store.add(run, batch)
                gave = gave or bool(len(batch.scalars) or batch.hparams or batch.reset)
                for problem in batch.problems:
                    log.warning("warning: %s", problem)
                if not batch.more:
                    break
        except InputError as exc:
            # Deleted or made unreadable between the stat and the read.
            if not os.path.exists(file):
                return None
            log.warning("%s", exc)
            return gave
        t.sig = sig
        return gave

    def signatures(self) -> dict[str, FileSig]:
        """Each file's signature as last read (files never read completely are left out)."""
        return {p: t.sig for p, t in self.files.items() if t.sig is not None}

    def runs(self) -> list[str]:
        return sorted(self.by_run)

    def paths(self, run: str) -> Iterable[str]:
        return sorted(self.by_run.get(run, ()))
