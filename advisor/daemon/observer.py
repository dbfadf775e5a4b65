"""Filesystem events and rescans, as paths and tokens in a queue. Nothing more.

The observer's threads (watchdog's emitter and dispatcher) and the rescan timer only
ever put into the worker's queue: a path that changed, or ``RESCAN``. They read no file
and touch no state, so they never wait on the worker and the worker needs no locks.

Events are hints. inotify can overflow, network filesystems send none (``--poll``), a
directory moved into the tree reports no files. The periodic rescan (discovery over
every root, then one stat per known file) is the truth that repairs all of these.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from collections.abc import Sequence
from pathlib import Path

from watchdog.events import DirCreatedEvent
from watchdog.events import DirDeletedEvent
from watchdog.events import DirMovedEvent
from watchdog.events import FileCreatedEvent
from watchdog.events import FileDeletedEvent
from watchdog.events import FileModifiedEvent
from watchdog.events import FileMovedEvent
from watchdog.events import FileSystemEvent
from watchdog.events import FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver


class Token:
    """A queue item that is not a path."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


RESCAN = Token("rescan")
STOP = Token("stop")
Item = str | Token

# Only what can change what a log holds. Opening and closing are left out: every read
# the worker does would otherwise come back to it as an event. Directory modifications
# are left out too (a file created in one reports itself). With inotify the filter also
# narrows the kernel's mask, so the unwanted events are never read.
_EVENTS: list[type[FileSystemEvent]] = [
    FileModifiedEvent, FileCreatedEvent, FileDeletedEvent, FileMovedEvent,
    DirCreatedEvent, DirDeletedEvent, DirMovedEvent,
]  # fmt: skip


class _Enqueue(FileSystemEventHandler):
    """Puts the paths an event names into the queue; runs on watchdog's thread."""

    def __init__(self, put: Callable[[Item], None]) -> None:
        self._put = put

    def on_any_event(self, event: FileSystemEvent) -> None:
        self._put(os.fsdecode(event.src_path))
        # A rename onto a log (an atomic rewrite of trainer_state.json) names the log in
        # dest_path; the temporary source is enqueued too and found to be no log.
        if event.dest_path:
            self._put(os.fsdecode(event.dest_path))


class Watcher:
    """Watches roots and enqueues what changed, plus ``RESCAN`` every ``rescan`` seconds.

    Args:
        roots: directories (watched recursively) or files (their directory is watched).
        put: the queue's put; called from other threads.
        poll: seconds between polls with watchdog's PollingObserver (network
            filesystems, where no events arrive); None for the OS's events.
        rescan: seconds between rescan tokens.
    """

    def __init__(
        self,
        roots: Sequence[Path],
        put: Callable[[Item], None],
        *,
        poll: float | None = None,
        rescan: float = 30.0,
    ) -> None:
        self._roots = list(roots)
        self._put = put
        self._rescan = rescan
        self._observer: BaseObserver = (
            PollingObserver(timeout=poll) if poll is not None else Observer()
        )
        self._stopped = threading.Event()
        self._timer = threading.Thread(target=self._tick, name="advisor-rescan", daemon=True)

    def start(self) -> Watcher:
        """Schedule every root and start the threads.

        Raises:
            OSError: a root cannot be watched (e.g. out of inotify watches).
        """
        handler = _Enqueue(self._put)
        for root in self._roots:
            recursive = root.is_dir()
            where = root if recursive else root.parent
            self._observer.schedule(
                handler, os.fspath(where), recursive=recursive, event_filter=_EVENTS
            )
        self._observer.start()
        self._timer.start()
        return self

    def _tick(self) -> None:
        while not self._stopped.wait(self._rescan):
            self._put(RESCAN)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop and join the observer and the timer."""
        self._stopped.set()
        if self._observer.is_alive():
            self._observer.stop()
            self._observer.join(timeout)
        if self._timer.is_alive():
            self._timer.join(timeout)
