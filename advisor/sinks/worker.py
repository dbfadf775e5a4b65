"""One sink's worker: its bounded queue, its thread, its rate state and its retries.

Used by ``advisor.sinks.dispatcher``; see there for the delivery guarantees.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from advisor.model import Alert
from advisor.sinks.base import BatchSink
from advisor.sinks.base import Sink
from advisor.sinks.base import SinkError
from advisor.sinks.outbox import OutboxLike
from advisor.throttle import RateLimiter
from advisor.throttle import RateState

log = logging.getLogger("advisor.sinks.dispatcher")

Item = tuple[str, Alert]


@dataclass(frozen=True, slots=True)
class Backoff:
    """The dispatcher's wait after a failed ``send`` (which did its own quick retries).

    Attributes:
        first: seconds after the first failure; doubles per failure ...
        cap: ... up to this, so a sink that comes back is found within five minutes.
    """

    first: float = 2.0
    cap: float = 300.0

    def delay(self, failures: int) -> float:
        return min(self.cap, self.first * 2.0 ** min(failures, 30))


class Worker:
    """One sink's queue, thread, rate state and retry loop."""

    def __init__(
        self,
        name: str,
        sink: Sink,
        *,
        outbox: OutboxLike,
        limiter: RateLimiter | None,
        queue_size: int,
        max_held: int,
        backoff: Backoff,
        clock: Callable[[], float],
    ) -> None:
        self.name = name
        self.sink = sink
        self.outbox = outbox
        self.limiter = limiter
        self.rate = RateState()
        self.queue: queue.Queue[Item | None] = queue.Queue(queue_size)
        self.max_held = max_held
        self.backoff = backoff
        self.clock = clock
        self.backlog: deque[Item] = deque()  # worker thread only
        self.overflow = threading.Event()
        self.closing = threading.Event()
        self.abort = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"advisor-sink-{name}", daemon=True)

    def offer(self, alert: Alert) -> None:
        """Publisher side: durable first, then a non-blocking hand-over."""
        key = self.outbox.put(alert)
        if key is None:
            return  # pending already, or acknowledged: never twice
        try:
            self.queue.put_nowait((key, alert))
        except queue.Full:
            # It is in the outbox; the worker rescans it once its queue is empty.
            self.overflow.set()

    def request_stop(self) -> None:
        self.closing.set()
        # Wakes a worker blocked on an empty queue. A full queue means the worker is
        # not blocked, and it sees `closing` once it has drained the queue.
        with contextlib.suppress(queue.Full):
            self.queue.put_nowait(None)

    def _take(self, block: bool) -> Item | None:
        """Leftovers first, then the queue, then (after an overflow) the outbox."""
        while True:
            if self.backlog:
                return self.backlog.popleft()
            # Race: `overflow` is set only while the queue is full, so a worker that
            # misses it here finds the queue non-empty and does not block in get().
            if self.overflow.is_set() and self.queue.empty():
                self.overflow.clear()
                self.backlog.extend(self.outbox.pending())
                if self.backlog:
                    continue
            if self.closing.is_set() and self.queue.empty():
                return None
            try:
                return self.queue.get(block=block)
            except queue.Empty:
                return None

    def _run(self) -> None:
        self.backlog.extend(self.outbox.pending())  # undelivered before a restart
        while not self.abort.is_set():
            item = self._take(block=True)
            if item is None:
                return
            batch = [item]
            if self.limiter is not None and not self._wait_for_slot(batch):
                return
            if not self._deliver(batch):
                return

    def _wait_for_slot(self, batch: list[Item]) -> bool:
        """Hold ``batch`` until the limiter allows one message; gather what arrives."""
        assert self.limiter is not None
        while True:
            now = self.clock()
            self.rate, ok = self.limiter.allow(self.rate, now)
            if ok:
                return True
            # Closing ends the wait: what is held stays in the outbox for the next start.
            if self.closing.wait(max(0.0, self.limiter.next_allowed(self.rate, now) - now)):
                return False
            if isinstance(self.sink, BatchSink):
                while len(batch) < self.max_held:
                    nxt = self._take(block=False)
                    if nxt is None:
                        break
                    batch.append(nxt)

    def _deliver(self, batch: list[Item]) -> bool:
        """Send until confirmed, rejected or stopping; False means stop the worker."""
        batch = [(k, a) for k, a in batch if self.outbox.is_pending(k)]
        if not batch:
            return True
        if len(batch) > 1 and not isinstance(self.sink, BatchSink):
            self.backlog.extendleft(reversed(batch[1:]))
            batch = batch[:1]
        failures = 0
        while True:
            try:
                if len(batch) > 1 and isinstance(self.sink, BatchSink):
                    self.sink.send_batch([a for _, a in batch])
                else:
                    self.sink.send(batch[0][1])
            except SinkError as exc:
                retryable, after, why = exc.retryable, exc.retry_after, str(exc)
            except Exception as exc:  # a buggy sink must not kill its worker
                retryable, after, why = True, None, f"{type(exc).__name__}: {exc}"
            else:
                self._settle(batch, None)
                if failures:
                    log.info("sink %s: delivering again", self.name)
                return True
            if not retryable:
                log.error("sink %s: %s; the alert is kept in the outbox's dead/", self.name, why)
                self._settle(batch, why)
                return True
            wait = after if after is not None else self.backoff.delay(failures)
            failures += 1
            log.warning(
                "sink %s: %s; next try in %.0f s (the alert waits in the outbox)",
                self.name,
                why,
                wait,
            )
            if self.closing.wait(wait):  # no retries once closing: it stays in the outbox
                return False

    def _settle(self, batch: list[Item], rejected: str | None) -> None:
        """Acknowledge (or dead-letter) a batch; a disk error costs a duplicate, not a stop."""
        for key, _ in batch:
            try:
                if rejected is None:
                    self.outbox.ack(key)
                else:
                    self.outbox.reject(key, rejected)
            except OSError as exc:
                # Still pending on disk: after a restart it is sent again, and the
                # receiver drops it by its id. In this run it is not retried.
                log.error("sink %s: cannot record delivery of %s: %s", self.name, key, exc)
