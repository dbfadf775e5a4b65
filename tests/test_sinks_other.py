"""JSON objects, the JSON Lines, console and webhook sinks, and the dispatcher."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from loopback import Answer
from loopback import LoopbackServer

from advisor.alertjson import alert_from_dict
from advisor.alertjson import alert_id
from advisor.alertjson import alert_to_dict
from advisor.alertjson import jsonl
from advisor.alertjson import summary_to_dict
from advisor.model import Alert
from advisor.model import AlertEvent
from advisor.model import Diagnosis
from advisor.model import Finding
from advisor.model import Recommendation
from advisor.model import RunSummary
from advisor.model import Severity
from advisor.sinks.base import MemorySink
from advisor.sinks.base import SinkError
from advisor.sinks.console import ConsoleSink
from advisor.sinks.dispatcher import Backoff
from advisor.sinks.dispatcher import Dispatcher
from advisor.sinks.jsonl import JsonlSink
from advisor.sinks.retry import RetryPolicy
from advisor.sinks.webhook import WebhookSink
from advisor.throttle import RateLimiter

ALERT = Alert(
    event=AlertEvent.OPENED,
    run="exp1/seed0",
    rule="SMITH-OVF-01",
    finding=Finding(
        Diagnosis.OVERFITTING,
        Severity.WARNING,
        0.91,
        4200,
        "validation loss has risen 18% since its minimum at step 2600",
        {"min_step": 2600, "rise_pct": 18.0, "p_value": 0.003},
    ),
    epoch=12.0,
    wall_time=1764000000.0,
    recommendations=(
        Recommendation(
            "weight_decay", "raise", 0.0001, 0.001, "gap > 10% & growing", "Smith 2018, 4.4"
        ),
    ),
)


@pytest.fixture(autouse=True)
def no_thread_leak() -> Iterator[None]:
    before = threading.active_count()
    yield
    assert threading.active_count() == before


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)


def at(step: int) -> Alert:
    return dataclasses.replace(ALERT, finding=dataclasses.replace(ALERT.finding, step=step))


# JSON objects (DESIGN.md section 5) ---------------------------------------------------


def test_alert_object_has_the_fixed_fields_in_order() -> None:
    """The alert object has section 5's fields, in order, and reads back."""
    d = alert_to_dict(ALERT)
    assert list(d)[:13] == [
        "type", "event", "run", "rule", "diagnosis", "severity", "confidence",
        "step", "epoch", "wall_time", "message", "evidence", "recommendations",
    ]  # fmt: skip
    assert d["type"] == "alert" and d["event"] == "opened" and d["severity"] == "warning"
    assert d["evidence"] == {"min_step": 2600, "rise_pct": 18.0, "p_value": 0.003}
    assert d["recommendations"] == [
        {
            "param": "weight_decay",
            "action": "raise",
            "current": 0.0001,
            "suggested": 0.001,
            "factor": None,
            "why": "gap > 10% & growing",
            "source": "Smith 2018, 4.4",
        }
    ]
    assert d["id"] == alert_id(ALERT)
    assert alert_from_dict(d) == ALERT


def test_non_finite_numbers_become_null() -> None:
    """NaN and inf become null, so every line is strict JSON."""
    f = dataclasses.replace(
        ALERT.finding, evidence={"a": math.nan, "b": -math.inf}, confidence=math.nan
    )
    line = jsonl([alert_to_dict(dataclasses.replace(ALERT, finding=f, epoch=math.inf))])
    obj = json.loads(line)  # strict JSON: no NaN tokens
    assert obj["evidence"] == {"a": None, "b": None} and obj["confidence"] is None
    assert obj["epoch"] is None and "NaN" not in line and line.endswith("}\n")


def test_summary_object() -> None:
    """The summary object is section 5's, plus the end-of-log recommendations."""
    s = RunSummary("exp1/seed0", Diagnosis.OVERFITTING, 40, 5000, {"overfitting": 4200})
    assert summary_to_dict(s) == {
        "type": "summary",
        "run": "exp1/seed0",
        "diagnosis": "overfitting",
        "points": 40,
        "last_step": 5000,
        "first_alert_step": {"overfitting": 4200},
        "recommendations": [],
    }
    assert jsonl([summary_to_dict(s)] * 2).count("\n") == 2


# JSON Lines and console ----------------------------------------------------------------


def test_jsonl_sink_appends_one_line_per_alert(tmp_path: Path) -> None:
    """Each alert is one parsable line, appended in order."""
    path = tmp_path / "deep" / "alerts.jsonl"
    sink = JsonlSink(path)
    sink.send(at(1))
    sink.send(at(2))
    lines = path.read_text().splitlines()
    assert [json.loads(x) for x in lines] == [alert_to_dict(at(1)), alert_to_dict(at(2))]


def test_jsonl_sink_failure_is_a_sink_error(tmp_path: Path) -> None:
    """An unwritable path is a SinkError naming the file."""
    with pytest.raises(SinkError, match="cannot append"):
        JsonlSink(tmp_path).send(ALERT)  # a directory


CONSOLE = """\
▲ OVERFITTING opened  exp1/seed0  SMITH-OVF-01 · step 4200 (epoch 12) · warning 0.91
  validation loss has risen 18% since its minimum at step 2600
  evidence: min_step=2600, rise_pct=18, p_value=0.003
  → raise weight_decay 0.0001 → 0.001: gap > 10% & growing (Smith 2018, 4.4)
"""


def test_console_plain_snapshot() -> None:
    """Not a TTY: plain text, four lines, nothing else."""
    out = io.StringIO()
    ConsoleSink(out).send(ALERT)
    assert out.getvalue() == CONSOLE


def test_console_colour_has_the_same_text() -> None:
    """On a terminal the same text is coloured."""
    out = io.StringIO()
    ConsoleSink(out, color=True).send(ALERT)
    coloured = out.getvalue()
    assert "\x1b[" in coloured
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured).split() == CONSOLE.split()


def test_console_resolved_has_no_recommendation() -> None:
    """A resolved alert has a check mark and no fix."""
    out = io.StringIO()
    ConsoleSink(out).send(dataclasses.replace(ALERT, event=AlertEvent.RESOLVED))
    assert out.getvalue().startswith("✓ OVERFITTING resolved  exp1/seed0")
    assert "→" not in out.getvalue()


# Generic webhook ------------------------------------------------------------------------


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> bool:
        self.append(seconds)
        return False


def test_webhook_posts_the_alert_object_with_an_idempotency_key() -> None:
    """503 and 429 are retried; the receiver gets section 5's object and the id."""
    sleeps = Sleeps()
    with LoopbackServer([Answer(503), Answer(429, {"retry-after": "0.5"})]) as server:
        sink = WebhookSink(server.url("/hook?token=s3cr3t"), sleep=sleeps, rand=lambda: 0.0)
        sink.send(ALERT)
    assert len(server.requests) == 3 and sleeps == [0.5, 0.5]
    req = server.requests[-1]
    assert req.json() == alert_to_dict(ALERT)
    assert req.headers["Idempotency-Key"] == alert_id(ALERT)
    assert "s3cr3t" not in repr(sink)


def test_webhook_4xx_fails_without_retry_or_url() -> None:
    """A 401 fails at once, and its error does not quote the URL."""
    with LoopbackServer([Answer(401, body="bad token")]) as server:
        sink = WebhookSink(server.url("/hook/s3cr3t"), policy=RetryPolicy(attempts=3))
        with pytest.raises(SinkError, match="HTTP 401: bad token") as info:
            sink.send(ALERT)
    assert not info.value.retryable and len(server.requests) == 1
    assert "s3cr3t" not in str(info.value)


# Dispatcher -----------------------------------------------------------------------------


class Hanging(MemorySink):
    """Blocks in send until released: a sink whose server never answers."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.entered = threading.Event()

    def send(self, alert: Alert) -> None:
        self.entered.set()
        self.release.wait()
        super().send(alert)


class Broken:
    def __init__(self, retryable: bool = True) -> None:
        self.retryable = retryable

    def send(self, alert: Alert) -> None:
        raise SinkError("broken", retryable=self.retryable)


def test_a_failing_or_hanging_sink_blocks_neither_analysis_nor_other_sinks() -> None:
    """publish returns and the good sink gets everything while the others fail or hang."""
    hang, good = Hanging(), MemorySink()
    sinks = {"hang": hang, "broken": Broken(), "good": good}
    d = Dispatcher(sinks, backoff=Backoff(first=60.0)).start()
    try:
        d.publish_all(at(s) for s in range(50))  # returns although `hang` never answers
        assert good.wait_for(50)
        # The hanging sink's thread may not have been scheduled yet on a busy machine.
        assert hang.entered.wait(timeout=10.0) and hang.alerts == []
        assert d.pending() == {"hang": 50, "broken": 50, "good": 0}
    finally:
        hang.release.set()
        assert d.close(timeout=5.0)
    assert [a.finding.step for a in good.alerts] == list(range(50))
    assert len(hang.alerts) == 50  # drained before stopping


def test_close_gives_up_on_a_hung_sink_after_the_timeout() -> None:
    """close() returns False at its timeout instead of waiting for a hung sink."""
    hang = Hanging()
    d = Dispatcher({"hang": hang}).start()
    d.publish(ALERT)
    assert hang.entered.wait(5)
    assert d.close(timeout=0.05) is False
    hang.release.set()
    assert d.close(timeout=5.0)  # now it stops


def test_a_full_queue_spills_to_the_outbox_and_loses_nothing() -> None:
    """Past the queue bound alerts wait in the outbox and all arrive, in order."""
    hang = Hanging()
    d = Dispatcher({"hang": hang}, queue_size=2).start()
    d.publish(at(0))
    assert hang.entered.wait(5)
    d.publish_all(at(s) for s in range(1, 10))  # the queue holds 2; the rest overflow
    hang.release.set()
    assert hang.wait_for(10)
    assert d.close()
    assert [a.finding.step for a in hang.alerts] == list(range(10))


def test_over_the_rate_limit_alerts_are_held_and_sent_as_one_digest() -> None:
    """One per window: the first goes alone, the four held go as one digest."""
    good = MemorySink()
    limit = {"good": RateLimiter(limit=1, window=0.2)}
    with Dispatcher({"good": good}, limits=limit) as d:
        d.publish_all(at(s) for s in range(5))
        assert good.wait_for(5)
    assert good.batches == [4]
    assert [a.finding.step for a in good.alerts] == list(range(5))


def test_a_permanent_failure_is_set_aside_and_the_next_alert_goes_out() -> None:
    """A rejected alert is dead-lettered and does not block the queue."""

    class FirstRejected(MemorySink):
        def send(self, alert: Alert) -> None:
            if alert.finding.step == 0:
                raise SinkError("HTTP 400", retryable=False)
            super().send(alert)

    sink = FirstRejected()
    with Dispatcher({"s": sink}) as d:
        d.publish_all([at(0), at(1)])
        assert sink.wait_for(1)
    assert [a.finding.step for a in sink.alerts] == [1]
    assert d.pending() == {"s": 0}


def test_a_buggy_sink_is_retried_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    """An unexpected exception is logged and retried; the worker survives."""

    class Flaky(MemorySink):
        calls = 0

        def send(self, alert: Alert) -> None:
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("bug")
            super().send(alert)

    sink = Flaky()
    with Dispatcher({"s": sink}, backoff=Backoff(first=0.01)) as d:
        d.publish(ALERT)
        assert sink.wait_for(1)
    assert sink.alerts == [ALERT] and "RuntimeError: bug" in caplog.text


def test_sink_names_and_limits_are_validated() -> None:
    """Unsafe sink names and limits for unknown sinks fail at construction."""
    with pytest.raises(ValueError, match="sink name"):
        Dispatcher({"../x": MemorySink()})
    with pytest.raises(ValueError, match="unknown sink 'nope'"):
        Dispatcher({"a": MemorySink()}, limits={"nope": RateLimiter(1, 1.0)})


def test_a_stop_reads_as_a_step_to_stop_at() -> None:
    from advisor.model import Recommendation
    from advisor.sinks.text import recommendation_line

    stop = Recommendation("training", "stop", None, 11.0, "Stop near the best step.", "s")
    assert recommendation_line(stop) == "stop training at step 11"
    lower = Recommendation("lr", "lower", 0.1, 0.03, "why", "s")
    assert recommendation_line(lower) == "lower lr 0.1 → 0.03"
