"""What the daemon persists in ``--state-dir``, and how.

Layout::

    state.json    {"version": 1, "pipeline": <Pipeline.state_to_json()>,
                   "files": [{"path", "run", "inode", "size", "mtime_ns", "offset"}],
                   "stats": {...}}   (stats: informational, never read back)
    outbox/<sink>/  the dispatcher's durable outboxes (advisor.sinks.outbox)
    lock          held (flock) while a daemon uses the directory

``state.json`` is replaced atomically: written to a temporary file, fsynced, renamed over
the old one, and the directory fsynced, so a crash leaves the old state or the new one,
never a mix. The pipeline state and the file signatures are written together, so they
always describe the same moment: the signatures tell which files changed since the
pipeline last analysed them.

Why signatures and not offsets to resume reading from: the analysis needs each run's
whole curve (minimum so far, trend fits), so on start every log is read again from its
start; reading runs at more than a million scalars a second, which makes this cheap next
to keeping curves on disk. The signature is what makes a restart cheap: a run whose
files all have the signature saved with the pipeline state was fully analysed, and is
not analysed again; the rest are analysed from where the saved state left off, so what
was written while the daemon was down alerts once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from advisor.errors import InputError

_VERSION = 1
STATE_NAME = "state.json"


@dataclass(frozen=True, slots=True)
class FileSig:
    """A log file as last read.

    Attributes:
        run: the run it belonged to.
        inode: its inode (a replaced file gets a new one).
        size: its size, stat'ed *before* the read that consumed it (see ``offset``).
        mtime_ns: its modification time (catches a rewrite to the same size).
        offset: bytes known to have been read: the same number as ``size``. The stat
            comes before the read, so the file can only have grown between the two:
            the loader read at least this far, never less. A restart that finds the
            file larger than this analyses its run again, which is harmless (the
            pipeline state says what it has already analysed).
    """

    run: str
    inode: int
    size: int
    mtime_ns: int

    @property
    def offset(self) -> int:
        return self.size

    def same_file(self, other: FileSig | None) -> bool:
        """Unchanged: same inode, size and modification time."""
        return other is not None and (self.inode, self.size, self.mtime_ns) == (
            other.inode, other.size, other.mtime_ns,
        )  # fmt: skip


def stat_sig(path: str, run: str) -> FileSig:
    """``path``'s signature now.

    Raises:
        OSError: it cannot be stat'ed (FileNotFoundError when it is gone).
    """
    st = os.stat(path)
    return FileSig(run, st.st_ino, st.st_size, st.st_mtime_ns)


def stat_db_sig(path: str, run: str) -> FileSig:
    """An SQLite database's signature now, its write-ahead log included: in WAL mode a
    commit changes only ``<path>-wal`` until a checkpoint copies it into the database.

    Raises:
        OSError: the database cannot be stat'ed (FileNotFoundError when it is gone).
    """
    sig = stat_sig(path, run)
    try:
        wal = os.stat(path + "-wal")
    except OSError:
        return sig
    return FileSig(run, sig.inode, sig.size + wal.st_size, max(sig.mtime_ns, wal.st_mtime_ns))


@dataclass(frozen=True, slots=True)
class Saved:
    """A loaded state: the pipeline's JSON (None when there was none), signatures, and
    the worker's stats when it was written (``saved_at``: seconds since the epoch)."""

    pipeline: str | None
    files: Mapping[str, FileSig]
    stats: Mapping[str, float] = field(default_factory=dict)


def read_state(path: Path) -> Saved:
    """The state saved at ``path``, or an empty one if none was saved.

    Raises:
        InputError: the file is unreadable or not a state this version wrote.
    """
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return Saved(None, {})
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable state ({exc}); move it away") from None
    try:
        if data["version"] != _VERSION:
            raise ValueError(f"version {data['version']!r}")
        files = {
            str(f["path"]): FileSig(
                str(f["run"]), int(f["inode"]), int(f["size"]), int(f["mtime_ns"])
            )
            for f in data["files"]
        }
        pipeline = json.dumps(data["pipeline"]) if data["pipeline"] is not None else None
        stats = {
            str(k): float(v)
            for k, v in data.get("stats", {}).items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"{path}: not an advisor state ({exc}); move it away") from None
    return Saved(pipeline, files, stats)


def check_state_dir(directory: Path) -> Saved:
    """What ``StateDir(directory)`` would find, without creating or locking anything.

    Returns:
        The saved state (its ``pipeline`` None when none was saved yet).

    Raises:
        InputError: the daemon could not use the directory, or its state is unreadable.
    """
    directory = Path(directory)
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent  # the daemon would create the rest
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        why = "not a directory" if not existing.is_dir() else "permission denied"
        raise InputError(f"{directory}: cannot use as state dir: {why}")
    return read_state(directory / STATE_NAME)


class StateDir:
    """One daemon's ``--state-dir``: locked while in use, state written atomically.

    Raises:
        InputError: the directory cannot be created, or another daemon holds it.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / STATE_NAME
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise InputError(f"{directory}: cannot use as state dir: {exc.strerror}") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock)
            raise InputError(f"{directory}: state dir in use by another advisor") from None

    @property
    def outbox(self) -> Path:
        return self.directory / "outbox"

    def load(self) -> Saved:
        """The saved state, or an empty one if none was saved.

        Raises:
            InputError: the file is unreadable or not a state this version wrote.
        """
        return read_state(self.path)

    def save(self, pipeline: str, files: Mapping[str, FileSig], stats: Mapping[str, Any]) -> None:
        """Replace the state atomically (temporary file, fsync, rename, directory fsync).

        Raises:
            OSError: the disk refused (full, read-only): the caller decides.
        """
        body = {
            "version": _VERSION,
            "pipeline": json.loads(pipeline),
            "files": [
                {"path": p, "run": s.run, "inode": s.inode, "size": s.size,
                 "mtime_ns": s.mtime_ns, "offset": s.offset}
                for p, s in sorted(files.items())
            ],
            "stats": dict(stats),
        }  # fmt: skip
        data = json.dumps(body, allow_nan=False, separators=(",", ":")).encode("utf-8")
        tmp = self.directory / f".{STATE_NAME}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        # The rename is durable only once the directory entry is: fsync the directory.
        dfd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def close(self) -> None:
        """Release the lock."""
        if self._lock >= 0:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock, fcntl.LOCK_UN)
            os.close(self._lock)
            self._lock = -1
