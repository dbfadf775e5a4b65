"""Alerts and run summaries as the JSON objects of DESIGN.md section 5.

Pure: no I/O. The fixed fields keep the order and names of section 5; fields are only
ever added (``id``), never renamed. Non-finite numbers (NaN, inf) become ``null``, so
every line is strict JSON that any parser accepts.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any

from advisor.model import Alert
from advisor.model import AlertEvent
from advisor.model import Diagnosis
from advisor.model import Finding
from advisor.model import Recommendation
from advisor.model import RunSummary
from advisor.model import Severity

JsonDict = dict[str, Any]


def alert_id(alert: Alert) -> str:
    """The stable id of an alert: a digest of (run, rule, event, step).

    The same change of the same run, derived again after a restart, gets the same id,
    so the outbox and any receiver can drop the duplicate.
    """
    key = json.dumps([alert.run, alert.rule, alert.event.value, int(alert.finding.step)])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]


def number(value: object) -> int | float | bool | str | None:
    """A JSON-safe scalar: ints stay ints, non-finite floats become None."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        f = float(value)
        return f if math.isfinite(f) else None
    raise TypeError(f"not a JSON scalar: {type(value).__name__}")


def recommendation_to_dict(rec: Recommendation) -> JsonDict:
    return {
        "param": rec.param,
        "action": rec.action,
        "current": number(rec.current),
        "suggested": number(rec.suggested),
        "factor": number(rec.factor),
        "why": rec.why,
        "source": rec.source,
    }


def alert_to_dict(alert: Alert) -> JsonDict:
    """The ``{"type": "alert", ...}`` object of DESIGN.md section 5, plus its ``id``."""
    f = alert.finding
    return {
        "type": "alert",
        "event": alert.event.value,
        "run": alert.run,
        "rule": alert.rule,
        "diagnosis": f.diagnosis.value,
        "severity": f.severity.value,
        "confidence": number(f.confidence),
        "step": int(f.step),
        "epoch": number(alert.epoch),
        "wall_time": number(alert.wall_time),
        "message": f.message,
        "evidence": {k: number(v) for k, v in f.evidence.items()},
        "recommendations": [recommendation_to_dict(r) for r in alert.recommendations],
        "id": alert_id(alert),
    }


def summary_to_dict(summary: RunSummary) -> JsonDict:
    """The ``{"type": "summary", ...}`` object of DESIGN.md section 5."""
    return {
        "type": "summary",
        "run": summary.run,
        "diagnosis": summary.diagnosis.value,
        "points": int(summary.points),
        "last_step": int(summary.last_step),
        "first_alert_step": {k: int(v) for k, v in summary.first_alert_step.items()},
        "recommendations": [recommendation_to_dict(r) for r in summary.recommendations],
    }


def finding_to_dict(finding: Finding) -> JsonDict:
    return {
        "diagnosis": finding.diagnosis.value,
        "severity": finding.severity.value,
        "confidence": number(finding.confidence),
        "step": int(finding.step),
        "message": finding.message,
        "evidence": {k: number(v) for k, v in finding.evidence.items()},
    }


def _float(value: Any) -> float:
    # null stands for a non-finite number; NaN is the honest way back.
    return math.nan if value is None else float(value)


def finding_from_dict(data: Mapping[str, Any]) -> Finding:
    """Inverse of :func:`finding_to_dict` (non-finite evidence comes back as NaN)."""
    return Finding(
        diagnosis=Diagnosis(data["diagnosis"]),
        severity=Severity(data["severity"]),
        confidence=_float(data["confidence"]),
        step=int(data["step"]),
        message=str(data["message"]),
        evidence={str(k): _float(v) for k, v in data["evidence"].items()},
    )


def alert_from_dict(data: Mapping[str, Any]) -> Alert:
    """Inverse of :func:`alert_to_dict`, for the outbox (non-finite numbers come back NaN).

    Raises:
        KeyError, ValueError, TypeError: ``data`` is not an alert object.
    """
    recs = tuple(
        Recommendation(
            param=str(r["param"]),
            action=str(r["action"]),
            current=r["current"],
            suggested=r["suggested"],
            why=str(r["why"]),
            source=str(r["source"]),
            factor=None if r.get("factor") is None else float(r["factor"]),
        )
        for r in data["recommendations"]
    )
    epoch = data.get("epoch")
    wall_time = data.get("wall_time")
    return Alert(
        event=AlertEvent(data["event"]),
        run=str(data["run"]),
        rule=str(data["rule"]),
        finding=finding_from_dict(data),
        epoch=None if epoch is None else float(epoch),
        wall_time=None if wall_time is None else float(wall_time),
        recommendations=recs,
    )


def dumps(obj: Mapping[str, Any]) -> str:
    """One object as one line of strict JSON (no trailing newline)."""
    return json.dumps(obj, ensure_ascii=False, allow_nan=False)


def jsonl(objs: Iterable[Mapping[str, Any]]) -> str:
    """JSON Lines: one object per line, each line ending in a newline."""
    return "".join(dumps(o) + "\n" for o in objs)
