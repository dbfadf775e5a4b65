"""Short human-readable pieces of an alert, shared by the console and Slack. Pure."""

from __future__ import annotations

import math
from collections.abc import Mapping

from advisor.model import Alert
from advisor.model import AlertEvent
from advisor.model import Recommendation


def fmt_value(value: float | str | None) -> str:
    """A number as a person reads it: 4 significant digits, ints without ``.0``."""
    if value is None:
        return "?"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(value).lower()
    v = float(value)
    if not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.4g}"


def evidence_line(evidence: Mapping[str, float], limit: int = 6) -> str:
    """``min_step=2600, rise_pct=18, p_value=0.003`` (at most ``limit`` items)."""
    items = [f"{k}={fmt_value(v)}" for k, v in list(evidence.items())[:limit]]
    more = len(evidence) - limit
    if more > 0:
        items.append(f"+{more} more")
    return ", ".join(items)


def recommendation_line(rec: Recommendation) -> str:
    """``raise weight_decay 0.0001 → 0.001``: the action, the parameter and the values
    (``stop training at step 1200`` for a stop)."""
    if rec.action == "stop" and rec.suggested is not None:
        return f"stop {rec.param} at step {fmt_value(rec.suggested)}"
    if rec.current is not None and rec.suggested is not None:
        values = f" {fmt_value(rec.current)} → {fmt_value(rec.suggested)}"
    elif rec.suggested is not None:
        values = f" to {fmt_value(rec.suggested)}"
    else:
        values = ""
    return f"{rec.action} {rec.param}{values}"


def step_line(alert: Alert) -> str:
    """``step 4200 (epoch 12)``."""
    text = f"step {alert.finding.step}"
    if alert.epoch is not None and math.isfinite(alert.epoch):
        text += f" (epoch {fmt_value(alert.epoch)})"
    return text


def headline(alert: Alert) -> str:
    """``overfitting opened on exp1/seed0``; a resolved alert says so."""
    return f"{alert.finding.diagnosis.value} {alert.event.value} on {alert.run}"


def is_resolved(alert: Alert) -> bool:
    return alert.event is AlertEvent.RESOLVED


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, with an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"
