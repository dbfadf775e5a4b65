"""One retry policy for every HTTP sink (Slack and the generic webhook).

Within one ``send``: a timeout, a connection error, a 5xx or a 408 is retried after an
exponential back-off with jitter; a 429 waits what its ``Retry-After`` says; any other
4xx fails at once (it will not fix itself). After ``attempts`` tries the send fails with
a retryable ``SinkError`` and the alert waits in the outbox for the dispatcher's own,
slower back-off, so a long outage costs a few requests a minute, not a storm.
"""

from __future__ import annotations

import email.utils
import http.client
import math
import time
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass

from advisor.sinks.base import SinkError

# Returns True when the wait was interrupted (the sink is closing), like Event.wait.
Sleeper = Callable[[float], bool]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard one ``send`` tries.

    Attributes:
        attempts: requests at most, the first included.
        timeout: seconds per request (connect, and each read).
        backoff: the first back-off in seconds; it doubles per retry ...
        backoff_cap: ... up to this. Each wait is drawn from [cap/2, cap] of its step
            ("equal jitter"), so that many advisors restarted together spread out.
        max_retry_after: a 429 asking to wait longer than this ends the send (the
            dispatcher waits instead, without holding a request open).
    """

    attempts: int = 5
    timeout: float = 10.0
    backoff: float = 1.0
    backoff_cap: float = 30.0
    max_retry_after: float = 120.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1 but got {self.attempts}")
        for name in ("timeout", "backoff", "backoff_cap", "max_retry_after"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0 but got {value}")

    def delay(self, retry: int, rand: float) -> float:
        """The wait before retry number ``retry`` (0-based), ``rand`` uniform in [0, 1)."""
        ceiling = min(self.backoff_cap, self.backoff * 2.0**retry)
        return ceiling / 2.0 + rand * ceiling / 2.0


@dataclass(frozen=True, slots=True)
class Reply:
    """What one request got back."""

    status: int
    retry_after: float | None = None
    body: str = ""


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), or None."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    value = str(value).strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError):
            return None
        seconds = when - (time.time() if now is None else now)
    return max(0.0, seconds) if math.isfinite(seconds) else None


# Transport failures worth retrying: timeouts, refused or reset connections, garbled
# replies. (URLError and TimeoutError are OSErrors; BadStatusLine is an HTTPException.)
TRANSIENT = (OSError, http.client.HTTPException)


def deliver(
    request: Callable[[], Reply],
    policy: RetryPolicy,
    sleep: Sleeper,
    rand: Callable[[], float],
    what: str,
) -> None:
    """Call ``request`` until it succeeds or the policy gives up.

    Args:
        request: one POST; raises a ``TRANSIENT`` error on transport failure.
        policy: attempts and waits.
        sleep: waits between attempts; True from it aborts (the sink is closing).
        rand: uniform [0, 1) for the jitter (injectable for tests).
        what: names the sink in error messages (never the URL).

    Raises:
        SinkError: retryable when it gave up on a transient failure, not retryable for
            a 4xx other than 408 and 429.
    """
    reason = ""
    retry_after: float | None = None
    for attempt in range(policy.attempts):
        try:
            reply = request()
        except TRANSIENT as exc:
            # The exception text is dropped on purpose: urllib may quote the URL in it.
            reason = "timed out" if _is_timeout(exc) else f"connection failed ({_kind(exc)})"
            wait = policy.delay(attempt, rand())
        else:
            if 200 <= reply.status < 300:
                return
            reason = f"HTTP {reply.status}"
            if reply.status == 429:
                retry_after = reply.retry_after
                if retry_after is not None and retry_after > policy.max_retry_after:
                    raise SinkError(
                        f"{what}: rate limited, asked to wait {retry_after:.0f} s",
                        retry_after=retry_after,
                    )
                wait = policy.delay(attempt, rand()) if retry_after is None else retry_after
            elif reply.status >= 500 or reply.status == 408:
                wait = policy.delay(attempt, rand())
            else:
                detail = f": {reply.body[:80]}" if reply.body else ""
                raise SinkError(f"{what}: HTTP {reply.status}{detail}", retryable=False)
        if attempt + 1 < policy.attempts and sleep(wait):
            raise SinkError(f"{what}: closing while retrying ({reason})")
    raise SinkError(
        f"{what}: gave up after {policy.attempts} attempts ({reason})", retry_after=retry_after
    )


def _is_timeout(exc: BaseException) -> bool:
    reason = getattr(exc, "reason", None)  # URLError wraps the socket timeout
    return isinstance(exc, TimeoutError) or isinstance(reason, TimeoutError)


def _kind(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return type(reason if isinstance(reason, BaseException) else exc).__name__
