"""The sink interface, its error, and an in-memory sink for tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from collections.abc import Sequence
from typing import Protocol
from typing import runtime_checkable

from advisor.model import Alert


@runtime_checkable
class Sink(Protocol):
    """Delivers one alert (DESIGN.md section 3).

    ``send`` returns once the alert is delivered, and raises ``SinkError`` when it is
    not; the dispatcher acknowledges an alert in the outbox only after ``send`` returns.
    It is called from one worker thread per sink, never concurrently.
    """

    def send(self, alert: Alert) -> None:
        """Deliver ``alert`` or raise ``SinkError``."""
        ...


@runtime_checkable
class BatchSink(Protocol):
    """A sink that can deliver several held alerts as one digest message."""

    def send_batch(self, alerts: Sequence[Alert]) -> None:
        """Deliver all of ``alerts`` as one message or raise ``SinkError``."""
        ...


@runtime_checkable
class Closable(Protocol):
    """A sink with waits (retry back-off) that ``close`` interrupts."""

    def close(self) -> None: ...


class SinkError(Exception):
    """A delivery failed.

    Messages never contain a secret (webhook URLs are redacted before raising).

    Attributes:
        retryable: worth trying again later (timeouts, 5xx, 429); False for errors
            that will not go away by themselves (400 invalid payload, 404 no such hook).
        retry_after: seconds the receiver asked us to wait, if it said.
    """

    def __init__(
        self, message: str, *, retryable: bool = True, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


def redact(text: str, secret: str) -> str:
    """``text`` with ``secret`` and its path (where webhook tokens live) blanked out."""
    if not secret:
        return text
    text = text.replace(secret, "<redacted>")
    _, sep, rest = secret.partition("://")
    path = rest[rest.find("/") :] if sep and "/" in rest else ""
    if len(path) > 1:
        text = text.replace(path, "/<redacted>")
    return text


class MemorySink:
    """Keeps what it is sent; a test double and a building block for tests.

    Attributes:
        alerts: every alert delivered, in order (digests flattened).
        batches: the size of each ``send_batch`` call.
    """

    def __init__(self) -> None:
        self.alerts: list[Alert] = []
        self.batches: list[int] = []
        self._cond = threading.Condition()

    def send(self, alert: Alert) -> None:
        with self._cond:
            self.alerts.append(alert)
            self._cond.notify_all()

    def send_batch(self, alerts: Sequence[Alert]) -> None:
        with self._cond:
            self.alerts.extend(alerts)
            self.batches.append(len(alerts))
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """Block until at least ``count`` alerts arrived; False on timeout."""
        return self.wait_until(lambda alerts: len(alerts) >= count, timeout)

    def wait_until(self, pred: Callable[[list[Alert]], bool], timeout: float = 5.0) -> bool:
        """Block until ``pred`` holds for the alerts so far; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: pred(self.alerts), timeout)
