"""Slack through an incoming webhook (slack_sdk's ``WebhookClient``), Block Kit messages.

The webhook URL is a secret: whoever has it can post to the channel. It comes from the
environment or a file, is never printed or logged, and is kept out of every exception
message and ``repr`` this module produces. slack_sdk logs the URL at DEBUG level, so
its client gets a logger that is switched off.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from typing import cast

from slack_sdk.webhook import WebhookClient

from advisor.errors import ConfigError
from advisor.model import Alert
from advisor.model import Severity
from advisor.sinks.base import SinkError
from advisor.sinks.base import redact
from advisor.sinks.retry import TRANSIENT
from advisor.sinks.retry import Reply
from advisor.sinks.retry import RetryPolicy
from advisor.sinks.retry import Sleeper
from advisor.sinks.retry import deliver
from advisor.sinks.retry import parse_retry_after
from advisor.sinks.text import evidence_line
from advisor.sinks.text import fmt_value
from advisor.sinks.text import headline
from advisor.sinks.text import is_resolved
from advisor.sinks.text import recommendation_line
from advisor.sinks.text import step_line
from advisor.sinks.text import truncate

ENV_URL = "ADVISOR_SLACK_WEBHOOK_URL"
ENV_FILE = "ADVISOR_SLACK_WEBHOOK_FILE"

_ICON = {
    Severity.INFO: ":information_source:",
    Severity.WARNING: ":warning:",
    Severity.CRITICAL: ":rotating_light:",
}
_RESOLVED = ":white_check_mark:"
# Block Kit limits: header text 150 characters, section text 3000, 10 fields per section.
_HEADER_MAX = 150
_SECTION_MAX = 3000
_DIGEST_LINES = 20


def webhook_url(env: Mapping[str, str], file: Path | None = None) -> str | None:
    """The webhook URL from ``$ADVISOR_SLACK_WEBHOOK_URL``, else the file named by
    ``$ADVISOR_SLACK_WEBHOOK_FILE``, else ``file`` (from the configuration); None if none.

    ``env`` is passed in (``advisor.config`` owns reading the environment).

    Raises:
        ConfigError: a named file cannot be read or holds no http(s) URL. The message
            names the file or variable, never the URL.
    """
    url = env.get(ENV_URL, "").strip()
    if url:
        return _checked(url, ENV_URL)
    name = env.get(ENV_FILE, "").strip()
    path = Path(name) if name else file
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "unreadable"
        raise ConfigError(f"{path}: cannot read the Slack webhook URL: {reason}") from None
    return _checked(text, str(path))


def _checked(url: str, origin: str) -> str:
    if not url.lower().startswith(("https://", "http://")) or any(c.isspace() for c in url):
        raise ConfigError(f"{origin}: expected one http(s):// URL for the Slack webhook")
    return url


def _escape(text: str) -> str:
    """Slack mrkdwn control characters (the only three it asks to escape)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _icon(alert: Alert) -> str:
    return _RESOLVED if is_resolved(alert) else _ICON[alert.finding.severity]


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def slack_payload(alert: Alert) -> dict[str, Any]:
    """The Block Kit message for one alert. Pure.

    A header (icon, diagnosis, event, run), the finding's sentence, the facts (run,
    rule, severity and confidence, step), the top recommendation with its reason and
    source, and the evidence in one context line. ``text`` is the notification fallback.
    """
    f = alert.finding
    title = f"{_icon(alert)} {f.diagnosis.value.capitalize()} {alert.event.value}: {alert.run}"
    facts = [
        _mrkdwn(f"*Run*\n`{_escape(alert.run)}`"),
        _mrkdwn(f"*Rule*\n`{_escape(alert.rule)}`"),
        _mrkdwn(f"*Severity*\n{f.severity.value}, confidence {fmt_value(round(f.confidence, 2))}"),
        _mrkdwn(f"*At*\n{step_line(alert)}"),
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": truncate(title, _HEADER_MAX)}},
        {"type": "section", "text": _mrkdwn(truncate(_escape(f.message), _SECTION_MAX))},
        {"type": "section", "fields": facts},
    ]
    if alert.recommendations and not is_resolved(alert):
        top = alert.recommendations[0]
        text = f"*Recommended:* {_escape(recommendation_line(top))}\n{_escape(top.why)}"
        if top.source:
            text += f" _({_escape(top.source)})_"
        if len(alert.recommendations) > 1:
            text += f"\n+{len(alert.recommendations) - 1} more recommendation(s)"
        blocks.append({"type": "section", "text": _mrkdwn(truncate(text, _SECTION_MAX))})
    if f.evidence:
        evidence = _mrkdwn(truncate(f"Evidence: {_escape(evidence_line(f.evidence))}", 2000))
        blocks.append({"type": "context", "elements": [evidence]})
    fallback = f"{_icon(alert)} {headline(alert)}: {f.message}"
    return {"text": truncate(fallback, _SECTION_MAX), "blocks": blocks}


def slack_digest_payload(alerts: Sequence[Alert]) -> dict[str, Any]:
    """One message for alerts held back by the rate limit: a line each, the first 20.

    Pure. The rest are counted, never dropped silently; each is in the JSON Lines sink
    (when configured) in full.
    """
    title = f":bell: {len(alerts)} alerts held back by the rate limit"
    lines = [
        f"• {_icon(a)} *{a.event.value}* {a.finding.diagnosis.value} on `{_escape(a.run)}` "
        f"({_escape(a.rule)}, {step_line(a)})"
        for a in alerts[:_DIGEST_LINES]
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title}},
        {"type": "section", "text": _mrkdwn(truncate("\n".join(lines), _SECTION_MAX))},
    ]
    if len(alerts) > _DIGEST_LINES:
        more = _mrkdwn(f"+{len(alerts) - _DIGEST_LINES} more not listed here")
        blocks.append({"type": "context", "elements": [more]})
    return {"text": title, "blocks": blocks}


def _quiet_logger() -> logging.Logger:
    # Not registered with logging's manager, so no handler (not even lastResort, as it
    # is disabled) ever sees what slack_sdk writes, URL included. The level also makes
    # slack_sdk's own "level <= DEBUG" checks false.
    log = logging.Logger("advisor.sinks.slack.sdk", level=logging.CRITICAL + 1)
    log.disabled = True
    log.propagate = False
    return log


class SlackSink:
    """Posts alerts to a Slack incoming webhook, with the retry policy of ``retry.py``.

    Args:
        url: the webhook URL (a secret; see the module docstring).
        policy: attempts, timeout and back-off.
        sleep: waits between attempts; defaults to an interruptible wait that ``close``
            ends at once.
        rand: jitter source.
    """

    def __init__(
        self,
        url: str,
        *,
        policy: RetryPolicy | None = None,
        sleep: Sleeper | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self._url = _checked(url, "Slack webhook URL")
        self._policy = policy or RetryPolicy()
        self._closed = threading.Event()
        self._sleep = self._closed.wait if sleep is None else sleep
        self._rand = rand
        # urlopen takes float seconds; slack_sdk's hint says int.
        timeout = cast(int, self._policy.timeout)
        self._client = WebhookClient(
            self._url, timeout=timeout, logger=_quiet_logger(), retry_handlers=[]
        )

    def __repr__(self) -> str:
        return "SlackSink(url=<redacted>)"

    def send(self, alert: Alert) -> None:
        self._post(slack_payload(alert))

    def send_batch(self, alerts: Sequence[Alert]) -> None:
        self._post(slack_digest_payload(alerts))

    def close(self) -> None:
        """Interrupt a retry wait in progress; later sends fail at their first wait."""
        self._closed.set()

    def _post(self, payload: dict[str, Any]) -> None:
        deliver(lambda: self._request(payload), self._policy, self._sleep, self._rand, "slack")

    def _request(self, payload: dict[str, Any]) -> Reply:
        try:
            resp = self._client.send_dict(payload)
        except Exception as exc:
            if isinstance(exc, TRANSIENT):
                raise
            # Anything else is a bug or a bad URL; its text may quote the URL.
            raise SinkError(f"slack: {type(exc).__name__}", retryable=False) from None
        raw = resp.headers or {}
        headers = {str(k): str(v) for k, v in raw.items()}
        body = redact(str(resp.body or ""), self._url)
        return Reply(resp.status_code, parse_retry_after(headers), body)
