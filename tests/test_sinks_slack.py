"""The Slack sink against a real HTTP server on loopback: payload, retries, secrecy."""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
from loopback import HANG
from loopback import Answer
from loopback import LoopbackServer

from advisor.errors import ConfigError
from advisor.model import Alert
from advisor.model import AlertEvent
from advisor.model import Diagnosis
from advisor.model import Finding
from advisor.model import Recommendation
from advisor.model import Severity
from advisor.sinks.base import SinkError
from advisor.sinks.dispatcher import Backoff
from advisor.sinks.dispatcher import Dispatcher
from advisor.sinks.retry import RetryPolicy
from advisor.sinks.slack import SlackSink
from advisor.sinks.slack import slack_digest_payload
from advisor.sinks.slack import slack_payload
from advisor.sinks.slack import webhook_url

SECRET_PATH = "/services/T0SECRET/B0SECRET/xoxSecretToken123"

ALERT = Alert(
    event=AlertEvent.OPENED,
    run="exp1/seed0",
    rule="SMITH-OVF-01",
    finding=Finding(
        Diagnosis.OVERFITTING,
        Severity.WARNING,
        0.9123,
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
        Recommendation("lr", "lower", 0.1, 0.03, "too fast", "Smith 2018, 4.1"),
    ),
)

GOLDEN = {
    "text": ":warning: overfitting opened on exp1/seed0: "
    "validation loss has risen 18% since its minimum at step 2600",
    "blocks": [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": ":warning: Overfitting opened: exp1/seed0"},
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "validation loss has risen 18% since its minimum at step 2600",
            },
        },
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": "*Run*\n`exp1/seed0`"},
                {"type": "mrkdwn", "text": "*Rule*\n`SMITH-OVF-01`"},
                {"type": "mrkdwn", "text": "*Severity*\nwarning, confidence 0.91"},
                {"type": "mrkdwn", "text": "*At*\nstep 4200 (epoch 12)"},
            ],
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "*Recommended:* raise weight_decay 0.0001 → 0.001\n"
                "gap &gt; 10% &amp; growing _(Smith 2018, 4.4)_\n+1 more recommendation(s)",
            },
        },
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": "Evidence: min_step=2600, rise_pct=18, p_value=0.003"}
            ],
        },
    ],
}


@pytest.fixture(autouse=True)
def no_thread_leak() -> Iterator[None]:
    before = threading.active_count()
    yield
    assert threading.active_count() == before


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """slack_sdk and urllib would route loopback through a proxy from the environment."""
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(name, raising=False)


class Sleeps:
    """An injected sleeper: records the waits, waits for nothing."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> bool:
        self.waits.append(seconds)
        return False


def sink_for(server: LoopbackServer, sleeps: Sleeps, **policy: float) -> SlackSink:
    pol = RetryPolicy(**{"attempts": 4, "timeout": 0.3, **policy})  # type: ignore[arg-type]
    return SlackSink(server.url(SECRET_PATH), policy=pol, sleep=sleeps, rand=lambda: 0.5)


def test_payload_is_the_golden_block_kit_message() -> None:
    """The message builder is pure and stable: compared field by field."""
    assert slack_payload(ALERT) == GOLDEN


def test_resolved_payload_has_no_recommendation() -> None:
    """A resolved alert shows a check mark and no fix to apply."""
    resolved = Alert(
        AlertEvent.RESOLVED, "r", "X", ALERT.finding, recommendations=ALERT.recommendations
    )
    payload = slack_payload(resolved)
    assert payload["blocks"][0]["text"]["text"] == ":white_check_mark: Overfitting resolved: r"
    assert not any("Recommended" in str(b) for b in payload["blocks"])


def test_digest_lists_twenty_and_counts_the_rest() -> None:
    """A held batch becomes one message that names how many it did not list."""
    payload = slack_digest_payload([ALERT] * 25)
    assert payload["blocks"][0]["text"]["text"] == ":bell: 25 alerts held back by the rate limit"
    assert payload["blocks"][1]["text"]["text"].count("\n") == 19
    assert payload["blocks"][2]["elements"][0]["text"] == "+5 more not listed here"


def test_200_delivers_the_exact_json() -> None:
    """The server receives the golden payload, as JSON, on the webhook's path."""
    sleeps = Sleeps()
    with LoopbackServer([Answer(200)]) as server:
        sink_for(server, sleeps).send(ALERT)
    (req,) = server.requests
    assert req.path == SECRET_PATH
    assert req.json() == GOLDEN
    assert req.headers["Content-Type"].startswith("application/json")
    assert sleeps.waits == []


def test_429_honours_retry_after() -> None:
    """A 429 with Retry-After: 1 waits exactly 1 s, then sends the same message."""
    sleeps = Sleeps()
    with LoopbackServer([Answer(429, {"Retry-After": "1"}, "rate_limited")]) as server:
        sink_for(server, sleeps).send(ALERT)
    assert sleeps.waits == [1.0]
    assert [r.json() for r in server.requests] == [GOLDEN, GOLDEN]


def test_429_asking_for_too_long_is_left_to_the_dispatcher() -> None:
    """No request is held open for an hour: the error carries Retry-After instead."""
    server = LoopbackServer([Answer(429, {"Retry-After": "3600"})])
    with server, pytest.raises(SinkError) as info:
        sink_for(server, Sleeps()).send(ALERT)
    assert info.value.retryable and info.value.retry_after == 3600.0
    assert len(server.requests) == 1


def test_500_then_200_retries_after_a_jittered_backoff() -> None:
    """A 500 is retried after the first back-off, with jitter."""
    sleeps = Sleeps()
    with LoopbackServer([Answer(500, body="oops")]) as server:
        sink_for(server, sleeps).send(ALERT)
    assert len(server.requests) == 2
    assert sleeps.waits == [0.75]  # first back-off 1 s, equal jitter at rand=0.5


def test_hanging_server_times_out_and_the_retry_succeeds() -> None:
    """A request with no reply ends at the timeout, and the next attempt goes through."""
    sleeps = Sleeps()
    with LoopbackServer([HANG]) as server:
        sink_for(server, sleeps, timeout=0.2).send(ALERT)
        assert server.wait_requests(2, timeout=0)
    assert len(sleeps.waits) == 1


def test_gives_up_after_the_bounded_attempts() -> None:
    """Four 500s: four requests, three growing waits, a retryable error."""
    sleeps = Sleeps()
    server = LoopbackServer([Answer(500)] * 4)
    with server, pytest.raises(SinkError, match=r"gave up after 4 attempts \(HTTP 500\)") as info:
        sink_for(server, sleeps).send(ALERT)
    assert info.value.retryable
    assert len(server.requests) == 4
    assert sleeps.waits == [0.75, 1.5, 3.0]


def test_a_4xx_is_not_retried() -> None:
    """A 400 will not fix itself: one request, a permanent error."""
    server = LoopbackServer([Answer(400, body="invalid_payload")])
    with server, pytest.raises(SinkError, match="HTTP 400: invalid_payload") as info:
        sink_for(server, Sleeps()).send(ALERT)
    assert not info.value.retryable
    assert len(server.requests) == 1


def test_the_url_never_appears_in_logs_output_errors_or_reprs(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every failure path, with logging at DEBUG everywhere: the secret path is nowhere."""
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    script = [Answer(404, body=f"no_service {SECRET_PATH}"), HANG, Answer(500), Answer(500)]
    with LoopbackServer(script) as server:
        sink = sink_for(server, Sleeps(), attempts=1, timeout=0.2)
        for _ in range(3):
            with pytest.raises(SinkError) as info:
                sink.send(ALERT)
            errors.append(info.value)
        url = server.url(SECRET_PATH)
        # Through the dispatcher, which logs the failure.
        box = Dispatcher({"slack": sink}, backoff=Backoff(first=60.0)).start()
        box.publish(ALERT)
        assert server.wait_requests(4)
        assert box.close(timeout=5.0)
    dead = server.url(SECRET_PATH)  # the server is closed now: connection refused
    with pytest.raises(SinkError) as info:
        SlackSink(dead, policy=RetryPolicy(attempts=1), sleep=Sleeps()).send(ALERT)
    errors.append(info.value)
    with pytest.raises(ConfigError) as bad:
        SlackSink("ftp://x" + SECRET_PATH)
    errors.append(bad.value)
    out, err = capsys.readouterr()
    texts = [caplog.text, out, err, repr(sink)]
    for exc in errors:
        texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    assert "sink slack: slack: gave up after 1 attempts (HTTP 500)" in caplog.text
    assert "timed out" in str(errors[1]) and "connection failed" in str(errors[3])
    for text in texts:
        assert "xoxSecretToken123" not in text and url not in text
        assert "T0SECRET" not in text


def test_webhook_url_comes_from_env_then_file(tmp_path: Path) -> None:
    """The URL variable wins, then the file variable, then the configured file."""
    url = "https://hooks.slack.com" + SECRET_PATH
    secret = tmp_path / "hook"
    secret.write_text(url + "\n")
    assert webhook_url({"ADVISOR_SLACK_WEBHOOK_URL": url}, tmp_path / "missing") == url
    assert webhook_url({"ADVISOR_SLACK_WEBHOOK_FILE": str(secret)}) == url
    assert webhook_url({}, secret) == url
    assert webhook_url({}) is None


def test_bad_webhook_configuration_names_the_source_not_the_value(tmp_path: Path) -> None:
    """Errors name the variable or file that is wrong, never the URL."""
    bad = tmp_path / "hook"
    bad.write_text("not a url " + SECRET_PATH)
    with pytest.raises(ConfigError) as info:
        webhook_url({"ADVISOR_SLACK_WEBHOOK_FILE": str(bad)})
    assert str(bad) in str(info.value) and "xoxSecretToken123" not in str(info.value)
    with pytest.raises(ConfigError, match="ADVISOR_SLACK_WEBHOOK_URL") as info:
        webhook_url({"ADVISOR_SLACK_WEBHOOK_URL": "hooks" + SECRET_PATH})
    assert "xoxSecretToken123" not in str(info.value)
    with pytest.raises(ConfigError, match="cannot read"):
        webhook_url({"ADVISOR_SLACK_WEBHOOK_FILE": str(tmp_path / "absent")})
