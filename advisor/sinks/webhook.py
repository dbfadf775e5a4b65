"""A generic webhook: each alert POSTed as the JSON object of DESIGN.md section 5.

The receiver gets the alert's stable id both in the body (``id``) and in the
``Idempotency-Key`` header, so it can drop a redelivery after a restart. Webhook URLs
often carry a token, so the URL is treated as a secret exactly as Slack's is.
"""

from __future__ import annotations

import functools
import json
import random
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

from advisor import __version__
from advisor.alertjson import alert_to_dict
from advisor.errors import ConfigError
from advisor.model import Alert
from advisor.sinks.base import SinkError
from advisor.sinks.base import redact
from advisor.sinks.retry import TRANSIENT
from advisor.sinks.retry import Reply
from advisor.sinks.retry import RetryPolicy
from advisor.sinks.retry import Sleeper
from advisor.sinks.retry import deliver
from advisor.sinks.retry import parse_retry_after


def webhook_request(alert: Alert) -> tuple[bytes, dict[str, str]]:
    """The body and headers for one alert. Pure."""
    obj = alert_to_dict(alert)
    body = json.dumps(obj, ensure_ascii=False, allow_nan=False).encode("utf-8")
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": f"advisor/{__version__}",
        "Idempotency-Key": str(obj["id"]),
    }
    return body, headers


class WebhookSink:
    """POSTs alerts to ``url`` with the retry policy of ``retry.py``.

    Args:
        url: an http(s) URL (kept secret).
        headers: extra headers (e.g. an Authorization token; also kept out of messages).
        policy: attempts, timeout and back-off.
        sleep: waits between attempts; defaults to an interruptible wait ended by ``close``.
        rand: jitter source.
    """

    def __init__(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        policy: RetryPolicy | None = None,
        sleep: Sleeper | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if not url.lower().startswith(("https://", "http://")):
            raise ConfigError("webhook sink: expected an http(s):// URL")
        self._url = url
        self._headers = dict(headers or {})
        self._policy = policy or RetryPolicy()
        self._closed = threading.Event()
        self._sleep = self._closed.wait if sleep is None else sleep
        self._rand = rand

    def __repr__(self) -> str:
        return "WebhookSink(url=<redacted>)"

    def send(self, alert: Alert) -> None:
        body, headers = webhook_request(alert)
        headers.update(self._headers)
        request = functools.partial(self._request, body, headers)
        deliver(request, self._policy, self._sleep, self._rand, "webhook")

    def close(self) -> None:
        """Interrupt a retry wait in progress."""
        self._closed.set()

    def _request(self, body: bytes, headers: dict[str, str]) -> Reply:
        req = urllib.request.Request(self._url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self._policy.timeout) as resp:
                text = resp.read(4096).decode("utf-8", "replace")
                return Reply(resp.status, None, text)
        except urllib.error.HTTPError as err:
            # A status reply, not a transport failure: read it, then let retry.py decide.
            text = self._read(err)
            hdrs: dict[str, Any] = dict(err.headers.items()) if err.headers else {}
            return Reply(err.code, parse_retry_after(hdrs), redact(text, self._url))
        except TRANSIENT:
            raise
        except Exception as exc:
            raise SinkError(f"webhook: {type(exc).__name__}", retryable=False) from None

    @staticmethod
    def _read(err: urllib.error.HTTPError) -> str:
        try:
            return err.read(4096).decode("utf-8", "replace")
        except TRANSIENT:
            return ""
        finally:
            err.close()
