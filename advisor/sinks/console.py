"""Alerts on the terminal, readable at a glance.

Four lines at most: what happened to which run (diagnosis, event, run, rule, step,
severity), the finding's sentence, the evidence in one line, the top recommendation.
Colour through rich on a terminal; the same text, plain, when the stream is not one.
"""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from rich.console import Console
from rich.text import Text

from advisor.model import Alert
from advisor.model import AlertEvent
from advisor.model import Severity
from advisor.sinks.base import SinkError
from advisor.sinks.text import evidence_line
from advisor.sinks.text import fmt_value
from advisor.sinks.text import recommendation_line
from advisor.sinks.text import step_line

_SEVERITY_STYLE = {
    Severity.INFO: "cyan",
    Severity.WARNING: "yellow",
    Severity.CRITICAL: "bold red",
}
_MARK = {AlertEvent.OPENED: "▲", AlertEvent.UPDATED: "◆", AlertEvent.RESOLVED: "✓"}


def console_text(alert: Alert) -> Text:
    """The styled lines for one alert. Pure; ``.plain`` is the uncoloured form."""
    f = alert.finding
    resolved = alert.event is AlertEvent.RESOLVED
    style = "green" if resolved else _SEVERITY_STYLE[f.severity]
    text = Text()
    text.append(f"{_MARK[alert.event]} {f.diagnosis.value.upper()} {alert.event.value}", style)
    text.append(f"  {alert.run}", "bold")
    text.append(f"  {alert.rule} · {step_line(alert)} · ", "dim")
    text.append(f.severity.value, _SEVERITY_STYLE[f.severity])
    text.append(f" {fmt_value(round(f.confidence, 2))}", "dim")
    text.append(f"\n  {f.message}")
    if f.evidence:
        text.append(f"\n  evidence: {evidence_line(f.evidence)}", "dim")
    if alert.recommendations and not resolved:
        top = alert.recommendations[0]
        text.append("\n  → ")
        text.append(recommendation_line(top), "bold")
        text.append(f": {top.why}")
        if top.source:
            text.append(f" ({top.source})", "dim")
    return text


class ConsoleSink:
    """Writes alerts to a text stream (stderr by default; stdout carries ``--json``).

    Args:
        stream: where to write.
        color: force colour on or off; by default on exactly when ``stream`` is a TTY.
    """

    def __init__(self, stream: TextIO | None = None, *, color: bool | None = None) -> None:
        self._stream = sys.stderr if stream is None else stream
        tty = self._stream.isatty() if color is None else color
        self._console = (
            Console(file=self._stream, force_terminal=True, highlight=False) if tty else None
        )
        self._lock = threading.Lock()

    def send(self, alert: Alert) -> None:
        text = console_text(alert)
        with self._lock:
            try:
                if self._console is not None:
                    self._console.print(text)
                else:
                    self._stream.write(text.plain + "\n")
                    self._stream.flush()
            except (OSError, ValueError) as exc:  # closed stream or broken pipe
                raise SinkError(f"console: {exc}", retryable=False) from None
