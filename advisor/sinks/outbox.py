"""A durable outbox: an alert is on disk before a sink sees it, and leaves only once the
sink confirmed it.

Layout of one sink's outbox directory::

    pending/<seq>-<id>.json   one alert per file, written to a temporary name, fsynced,
                              then renamed into place (so a file there is whole)
    acked                     the ids confirmed, one per line, appended and fsynced
    dead/<seq>-<id>.json      alerts the sink rejected for good (+ ``.reason``)

Crash cases, and what a reopen makes of them:

* before the rename: only a ``.tmp-`` file; removed, the alert was never queued (the
  daemon has not persisted having sent it either, so it derives it again);
* after the rename, before delivery or before the ack line: redelivered, once (a
  receiver that saw it deduplicates by the alert's stable id);
* after the ack line, before the unlink: the id is in ``acked``, the file is removed
  unsent. ``put`` refuses an id in ``acked``, so an acknowledged alert is never sent
  again, up to the last ``keep_acked`` ids remembered.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Protocol

from advisor.alertjson import alert_from_dict
from advisor.alertjson import alert_id
from advisor.alertjson import alert_to_dict
from advisor.alertjson import dumps
from advisor.model import Alert

log = logging.getLogger(__name__)


class OutboxLike(Protocol):
    """What the dispatcher needs of an outbox (on disk, or in memory for replay)."""

    def put(self, alert: Alert) -> str | None: ...
    def pending(self) -> list[tuple[str, Alert]]: ...
    def is_pending(self, key: str) -> bool: ...
    def ack(self, key: str) -> None: ...
    def reject(self, key: str, reason: str) -> None: ...


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def outbox_counts(directory: Path) -> tuple[int, int]:
    """(waiting, rejected): the alerts of one sink's outbox still to deliver and those
    the sink refused for good, counted without changing anything (the daemon that owns
    the outbox may be running)."""
    try:
        acked = set((directory / "acked").read_text("utf-8", "replace").split())
    except FileNotFoundError:
        acked = set()
    waiting = rejected = 0
    with contextlib.suppress(FileNotFoundError):
        for path in (directory / "pending").iterdir():
            seq, _, rest = path.name.partition("-")
            if seq.isdigit() and rest.endswith(".json") and rest[:-5] not in acked:
                waiting += 1
    with contextlib.suppress(FileNotFoundError):
        rejected = sum(1 for path in (directory / "dead").glob("*.json"))
    return waiting, rejected


class Outbox:
    """One sink's durable queue. Thread-safe (the publisher puts, the worker acks).

    Args:
        directory: created if missing; one directory per sink.
        keep_acked: how many acknowledged ids are remembered to refuse duplicates.
    """

    def __init__(self, directory: Path, *, keep_acked: int = 10_000) -> None:
        if keep_acked < 1:
            raise ValueError(f"keep_acked must be >= 1 but got {keep_acked}")
        self.directory = Path(directory)
        self._keep = keep_acked
        self._lock = threading.Lock()
        self._dir = self.directory / "pending"
        self._dead = self.directory / "dead"
        self._acked_path = self.directory / "acked"
        self._dir.mkdir(parents=True, exist_ok=True)
        self._dead.mkdir(exist_ok=True)
        self._acked: dict[str, None] = {}  # insertion-ordered set, oldest first
        self._lines = 0
        self._load_acked()
        self._pending: dict[str, Path] = {}
        self._seq = 0
        self._scan()
        self._fd = -1  # the acked log, opened on the first ack

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)

    def _load_acked(self) -> None:
        try:
            raw = self._acked_path.read_bytes()
        except FileNotFoundError:
            return
        if raw and not raw.endswith(b"\n"):
            # A crash cut the last line: finish it, so the next id starts a line.
            with open(self._acked_path, "ab") as fh:
                fh.write(b"\n")
                os.fsync(fh.fileno())
        ids = raw.decode("utf-8", "replace").split()
        self._lines = len(ids)
        for key in ids[-self._keep :]:
            self._acked[key] = None

    def _scan(self) -> None:
        for path in sorted(self._dir.iterdir()):
            if path.name.startswith(".tmp-"):
                path.unlink()  # never renamed into place: never queued
                continue
            seq, _, rest = path.name.partition("-")
            key = rest.removesuffix(".json")
            if not seq.isdigit() or not key:
                continue
            self._seq = max(self._seq, int(seq) + 1)
            if key in self._acked:
                path.unlink()  # acknowledged before the crash, not yet removed
            else:
                self._pending[key] = path

    def put(self, alert: Alert) -> str | None:
        """Store ``alert`` durably; its id, or None if it is pending or acknowledged."""
        key = alert_id(alert)
        data = dumps(alert_to_dict(alert)).encode("utf-8")
        with self._lock:
            if key in self._acked or key in self._pending:
                return None
            name = f"{self._seq:012d}-{key}.json"
            self._seq += 1
            tmp = self._dir / f".tmp-{name}"
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            final = self._dir / name
            os.replace(tmp, final)
            _fsync_dir(self._dir)  # the rename itself must survive a power cut
            self._pending[key] = final
        return key

    def pending(self) -> list[tuple[str, Alert]]:
        """Every unacknowledged alert, oldest first."""
        with self._lock:
            items = sorted(self._pending.items(), key=lambda kv: kv[1].name)
        out: list[tuple[str, Alert]] = []
        for key, path in items:
            try:
                out.append((key, alert_from_dict(json.loads(path.read_text("utf-8")))))
            except FileNotFoundError:
                continue  # acknowledged meanwhile
            except (ValueError, KeyError, TypeError) as exc:
                self.reject(key, f"unreadable outbox entry: {exc}")
        return out

    def is_pending(self, key: str) -> bool:
        with self._lock:
            return key in self._pending

    def ack(self, key: str) -> None:
        """The sink confirmed ``key``: never send it again."""
        with self._lock:
            path = self._pending.pop(key, None)
            if path is None:
                return
            self._remember(key)
            path.unlink(missing_ok=True)

    def reject(self, key: str, reason: str) -> None:
        """The sink refused ``key`` for good: keep it in ``dead/`` for a person to see."""
        with self._lock:
            path = self._pending.pop(key, None)
            if path is None:
                return
            self._remember(key)
            target = self._dead / path.name
            try:
                os.replace(path, target)
                target.with_suffix(".reason").write_text(reason + "\n", "utf-8")
            except OSError as exc:
                log.error("outbox %s: cannot move %s to dead/: %s", self.directory, key, exc)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def _remember(self, key: str) -> None:
        # Caller holds the lock. The ack line is durable before the pending file goes.
        if self._fd < 0:
            self._fd = os.open(self._acked_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(self._fd, f"{key}\n".encode())
        os.fsync(self._fd)
        self._lines += 1
        self._acked[key] = None
        if len(self._acked) > self._keep:
            del self._acked[next(iter(self._acked))]
        if self._lines > 2 * self._keep:
            self._compact()

    def _compact(self) -> None:
        tmp = self.directory / ".acked.tmp"
        tmp.write_text("".join(f"{k}\n" for k in self._acked), "utf-8")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self._acked_path)
        _fsync_dir(self.directory)
        os.close(self._fd)
        self._fd = os.open(self._acked_path, os.O_WRONLY | os.O_APPEND, 0o644)
        self._lines = len(self._acked)


class MemoryOutbox:
    """The same contract without a disk, for ``replay`` and tests: nothing survives."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, Alert] = {}
        self._acked: set[str] = set()
        self.rejected: dict[str, str] = {}

    def put(self, alert: Alert) -> str | None:
        key = alert_id(alert)
        with self._lock:
            if key in self._acked or key in self._pending:
                return None
            self._pending[key] = alert
        return key

    def pending(self) -> list[tuple[str, Alert]]:
        with self._lock:
            return list(self._pending.items())

    def is_pending(self, key: str) -> bool:
        with self._lock:
            return key in self._pending

    def ack(self, key: str) -> None:
        with self._lock:
            if self._pending.pop(key, None) is not None:
                self._acked.add(key)

    def reject(self, key: str, reason: str) -> None:
        with self._lock:
            if self._pending.pop(key, None) is not None:
                self._acked.add(key)
                self.rejected[key] = reason
