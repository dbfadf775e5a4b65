"""Fans each alert out to every sink, through a durable outbox, one worker per sink.

``publish`` writes the alert into each sink's outbox and offers it to that sink's
bounded queue without waiting, so analysis never waits on a sink. Each sink has its
own worker thread: a sink that fails, is rate limited or hangs holds up only itself.

Over a sink's rate limit, alerts are held, never dropped: they stay in the outbox, and
when the window reopens they go out together as one digest (``send_batch``) if the sink
can send one, else one by one as the limit allows. When a queue is full, the alert is
already in the outbox; the worker picks it up from there once it has caught up.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

from advisor.model import Alert
from advisor.sinks.base import Closable
from advisor.sinks.base import Sink
from advisor.sinks.outbox import MemoryOutbox
from advisor.sinks.outbox import Outbox
from advisor.sinks.outbox import OutboxLike
from advisor.sinks.worker import Backoff
from advisor.sinks.worker import Worker
from advisor.throttle import RateLimiter

__all__ = ["Backoff", "Dispatcher"]

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


class Dispatcher:
    """Delivers alerts to named sinks.

    Args:
        sinks: name → sink; a name is also the sink's outbox directory.
        outbox_dir: where outboxes live (one sub-directory per sink); in memory if None
            (nothing survives a restart: for ``replay`` and tests).
        limits: name → rate limiter, for the sinks that have one.
        queue_size: per-sink queue bound; beyond it alerts wait in the outbox only.
        max_held: the most alerts gathered into one digest.
        backoff: the wait after a failed send.
        clock: monotonic seconds, for the rate limiters.
    """

    def __init__(
        self,
        sinks: Mapping[str, Sink],
        *,
        outbox_dir: Path | None = None,
        limits: Mapping[str, RateLimiter] | None = None,
        queue_size: int = 1000,
        max_held: int = 500,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        limits = dict(limits or {})
        unknown = sorted(set(limits) - set(sinks))
        if unknown:
            raise ValueError(f"rate limit for an unknown sink {unknown[0]!r}")
        self._workers: list[Worker] = []
        for name, sink in sinks.items():
            if not _NAME.match(name):
                raise ValueError(f"sink name must match {_NAME.pattern} but got {name!r}")
            box: OutboxLike = MemoryOutbox() if outbox_dir is None else Outbox(outbox_dir / name)
            self._workers.append(
                Worker(
                    name,
                    sink,
                    outbox=box,
                    limiter=limits.get(name),
                    queue_size=queue_size,
                    max_held=max_held,
                    backoff=backoff or Backoff(),
                    clock=clock,
                )
            )
        self._started = False
        self._closed = False

    def start(self) -> Dispatcher:
        """Start the workers; each first delivers what its outbox kept from before."""
        if not self._started:
            self._started = True
            for w in self._workers:
                w.thread.start()
        return self

    def publish(self, alert: Alert) -> None:
        """Queue ``alert`` for every sink. Blocks only for the outbox's disk write.

        Raises:
            OSError: an outbox cannot be written (disk full): the caller decides, since
                it cannot persist its own state either.
        """
        if self._closed:
            raise RuntimeError("dispatcher is closed")
        for w in self._workers:
            w.offer(alert)

    def publish_all(self, alerts: Iterable[Alert]) -> None:
        for alert in alerts:
            self.publish(alert)

    def close(self, timeout: float = 5.0) -> bool:
        """Deliver what is queued until ``timeout``, then stop; True if all stopped.

        What is undelivered stays in the outbox for the next start. A sink still busy
        after the timeout (a hung request) is interrupted if it can be (``close``),
        and otherwise left behind on its daemon thread; False says so.
        """
        self._closed = True
        deadline = time.monotonic() + timeout
        for w in self._workers:
            w.request_stop()
        for w in self._workers:
            if w.thread.is_alive():
                w.thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [w for w in self._workers if w.thread.is_alive()]
        for w in stuck:
            w.abort.set()
            if isinstance(w.sink, Closable):
                w.sink.close()  # ends a retry wait at once ...
                w.thread.join(0.5)  # ... so a short grace lets it finish
        ok = True
        for w in self._workers:
            if w.thread.is_alive():
                ok = False
                log.warning("sink %s did not stop; its alerts stay in the outbox", w.name)
            elif isinstance(w.outbox, Outbox):
                w.outbox.close()
        return ok

    def pending(self) -> dict[str, int]:
        """Per sink, how many alerts are not yet confirmed."""
        return {w.name: len(w.outbox.pending()) for w in self._workers}

    def __enter__(self) -> Dispatcher:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
