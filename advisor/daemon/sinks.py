"""The sinks a watch configuration asks for, by name (a name is also its outbox)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TextIO

from advisor.alertjson import alert_to_dict
from advisor.alertjson import dumps
from advisor.model import Alert
from advisor.sinks.base import Sink
from advisor.sinks.base import SinkError
from advisor.throttle import RateLimiter

from .settings import SinksConfig


class JsonStreamSink:
    """``--json``: each alert as one line of DESIGN.md section 5 on a stream (stdout).

    A closed stream or a broken pipe (the reader went away) is a permanent failure:
    the alert stays in the outbox's ``dead/``, and analysis goes on.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, alert: Alert) -> None:
        line = dumps(alert_to_dict(alert)) + "\n"
        with self._lock:
            try:
                self._stream.write(line)
                self._stream.flush()
            except (OSError, ValueError) as exc:
                raise SinkError(f"stdout: {exc}", retryable=False) from None


def build_sinks(
    cfg: SinksConfig, env: Mapping[str, str], *, as_json: bool, stdout: TextIO
) -> tuple[dict[str, Sink], dict[str, RateLimiter]]:
    """The sinks and their rate limiters.

    With ``--json`` alerts go to stdout as JSON Lines and nothing else is written there,
    so the console sink is off (the terminal gets status lines on stderr only); without
    it the console sink writes to stdout, as alerts are what the command outputs.

    Args:
        cfg: the ``[sinks]`` configuration.
        env: the ``ADVISOR_*`` environment (for the Slack webhook URL).
        as_json: ``--json``.
        stdout: where JSON Lines or console text go.

    Raises:
        ConfigError: the Slack webhook URL's file is unreadable or holds no URL.
    """
    sinks: dict[str, Sink] = {}
    if as_json:
        sinks["stdout"] = JsonStreamSink(stdout)
    elif cfg.console:
        from advisor.sinks.console import ConsoleSink

        sinks["console"] = ConsoleSink(stdout)
    if cfg.slack:
        from advisor.sinks.slack import SlackSink
        from advisor.sinks.slack import webhook_url

        url = webhook_url(env, cfg.slack_webhook_file)
        if url is not None:
            sinks["slack"] = SlackSink(url)
    if cfg.jsonl is not None:
        from advisor.sinks.jsonl import JsonlSink

        sinks["jsonl"] = JsonlSink(cfg.jsonl)
    if cfg.webhook_url is not None:
        from advisor.sinks.webhook import WebhookSink

        sinks["webhook"] = WebhookSink(cfg.webhook_url, headers=cfg.webhook_headers)
    limits = {
        name: RateLimiter(limit=count, window=window)
        for name, (count, window) in cfg.rate_limits.items()
        if name in sinks
    }
    return sinks, limits
