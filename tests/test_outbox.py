"""The durable outbox: written before delivery, gone only after a confirmed send.

A crash is simulated by abandoning the objects and opening the directory again (the
kill -9 end-to-end test belongs to the daemon).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from advisor.alertjson import alert_id
from advisor.model import Alert
from advisor.model import AlertEvent
from advisor.model import Diagnosis
from advisor.model import Finding
from advisor.model import Severity
from advisor.sinks.base import MemorySink
from advisor.sinks.base import SinkError
from advisor.sinks.dispatcher import Backoff
from advisor.sinks.dispatcher import Dispatcher
from advisor.sinks.outbox import Outbox
from advisor.sinks.outbox import outbox_counts


@pytest.fixture(autouse=True)
def no_thread_leak() -> Iterator[None]:
    before = threading.active_count()
    yield
    assert threading.active_count() == before


def alert(step: int = 100, event: AlertEvent = AlertEvent.OPENED, run: str = "exp/1") -> Alert:
    f = Finding(
        Diagnosis.UNDERFITTING, Severity.WARNING, 0.8, step, "still falling", {"slope": -0.1}
    )
    return Alert(event, run, "UND-01", f, epoch=1.0, wall_time=1e9)


def pending_ids(box: Outbox) -> list[str]:
    return [k for k, _ in box.pending()]


def test_alert_id_is_stable_over_run_rule_event_and_step() -> None:
    """The id depends on run, rule, event and step only."""
    a = alert()
    assert alert_id(a) == alert_id(dataclasses.replace(a, wall_time=5.0, recommendations=()))
    others = [alert(step=101), alert(event=AlertEvent.RESOLVED), alert(run="exp/2")]
    assert len({alert_id(a), *map(alert_id, others)}) == 4


def test_an_alert_is_on_disk_before_delivery_and_gone_after_the_ack(tmp_path: Path) -> None:
    """put() writes a file; ack() removes it for good."""
    box = Outbox(tmp_path)
    key = box.put(alert())
    assert key == alert_id(alert())
    assert [p.name.endswith(f"-{key}.json") for p in (tmp_path / "pending").iterdir()] == [True]
    assert box.pending() == [(key, alert())]
    box.ack(key)
    assert list((tmp_path / "pending").iterdir()) == []
    box.close()
    assert Outbox(tmp_path).pending() == []


def test_crash_before_the_ack_redelivers_once_after_restart(tmp_path: Path) -> None:
    """Delivered but not acknowledged when the process died: sent again, exactly once."""
    first = MemorySink()
    box = Outbox(tmp_path / "mem")
    box.put(alert(1))
    box.put(alert(2))
    first.send(alert(1))  # the sink got it; the process dies before box.ack()
    del box
    again = MemorySink()
    with Dispatcher({"mem": again}, outbox_dir=tmp_path) as d:
        assert again.wait_for(2)
    assert d.pending() == {"mem": 0}
    assert again.alerts == [alert(1), alert(2)]  # oldest first
    later = MemorySink()
    with Dispatcher({"mem": later}, outbox_dir=tmp_path) as d:
        d.publish(alert(1))  # derived again by a daemon that lost its state: refused
        d.publish(alert(3))
        assert later.wait_for(1)
    assert later.alerts == [alert(3)]


def test_acknowledged_alerts_are_never_resent(tmp_path: Path) -> None:
    """An acknowledged id is refused, also after a reopen."""
    box = Outbox(tmp_path)
    key = box.put(alert())
    assert key is not None
    assert box.put(alert()) is None  # pending: not twice
    box.ack(key)
    assert box.put(alert()) is None  # acknowledged: never again
    box.close()
    reopened = Outbox(tmp_path)
    assert reopened.put(alert()) is None
    assert reopened.pending() == []


def test_crash_between_the_ack_line_and_the_unlink(tmp_path: Path) -> None:
    """The ack is durable first; a pending file left behind is dropped on reopen."""
    box = Outbox(tmp_path)
    key = box.put(alert())
    assert key is not None
    with open(tmp_path / "acked", "a") as fh:  # what ack() wrote before dying
        fh.write(key + "\n")
    del box
    reopened = Outbox(tmp_path)
    assert reopened.pending() == []
    assert list((tmp_path / "pending").iterdir()) == []


def test_torn_writes_are_cleaned_up(tmp_path: Path) -> None:
    """A temp file never renamed is not an alert; a cut ack line does not glue to the next."""
    box = Outbox(tmp_path)
    a, b = box.put(alert(1)), box.put(alert(2))
    assert a is not None and b is not None
    del box
    (tmp_path / "pending" / ".tmp-000000000009-abc.json").write_text('{"type": "al')
    (tmp_path / "acked").write_text(a[:10])  # died mid-line
    box = Outbox(tmp_path)
    assert pending_ids(box) == [a, b]
    box.ack(a)
    box.close()
    assert pending_ids(Outbox(tmp_path)) == [b]
    assert not any(p.name.startswith(".tmp-") for p in (tmp_path / "pending").iterdir())


def test_order_survives_a_restart(tmp_path: Path) -> None:
    """Pending alerts come back oldest first, and new ones queue after them."""
    box = Outbox(tmp_path)
    keys = [box.put(alert(s)) for s in (30, 10, 20)]
    box.close()
    box = Outbox(tmp_path)
    assert pending_ids(box) == keys
    assert box.put(alert(5)) is not None
    assert pending_ids(box)[-1] == alert_id(alert(5))


def test_rejected_alerts_go_to_dead_letters(tmp_path: Path) -> None:
    """A permanent refusal moves the alert to dead/ with its reason."""
    box = Outbox(tmp_path)
    key = box.put(alert())
    assert key is not None
    box.reject(key, "HTTP 404: no_service")
    assert box.pending() == [] and box.put(alert()) is None
    (dead,) = (tmp_path / "dead").glob("*.json")
    assert dead.with_suffix(".reason").read_text() == "HTTP 404: no_service\n"


def test_unreadable_entry_is_moved_aside(tmp_path: Path) -> None:
    """A corrupt pending file goes to dead/ and does not block the others."""
    box = Outbox(tmp_path)
    key = box.put(alert())
    good = box.put(alert(2))
    del box
    (bad,) = (tmp_path / "pending").glob(f"*-{key}.json")
    bad.write_text("{}")
    box = Outbox(tmp_path)
    assert pending_ids(box) == [good]
    assert len(list((tmp_path / "dead").glob("*.json"))) == 1


def test_the_acked_log_is_compacted_and_keeps_the_newest(tmp_path: Path) -> None:
    """The ack log stays bounded and still refuses the newest ids."""
    box = Outbox(tmp_path, keep_acked=2)
    keys = []
    for s in range(6):
        key = box.put(alert(s))
        assert key is not None
        box.ack(key)
        keys.append(key)
    assert len((tmp_path / "acked").read_text().split()) <= 4
    box.close()
    box = Outbox(tmp_path, keep_acked=2)
    assert box.put(alert(5)) is None and box.put(alert(4)) is None


class Down:
    """A sink that is down: every send fails, retryably."""

    def __init__(self) -> None:
        self.calls = threading.Event()

    def send(self, alert: Alert) -> None:
        self.calls.set()
        raise SinkError("down")


def test_alerts_wait_in_the_outbox_while_a_sink_is_down(tmp_path: Path) -> None:
    """Nothing confirmed, nothing lost: the next start delivers all of it, in order."""
    down = Down()
    with Dispatcher({"hook": down}, outbox_dir=tmp_path, backoff=Backoff(60.0)) as d:
        d.publish_all([alert(1), alert(2), alert(3)])
        assert down.calls.wait(5)
    assert d.pending() == {"hook": 3}
    up = MemorySink()
    with Dispatcher({"hook": up}, outbox_dir=tmp_path) as d:
        assert up.wait_for(3)
    assert up.alerts == [alert(1), alert(2), alert(3)]
    assert Outbox(tmp_path / "hook").pending() == []


def test_counts_beside_the_owner_change_nothing(tmp_path: Path) -> None:
    """``outbox_counts`` (what ``advisor status`` shows): waiting and rejected alerts,
    read while the owner holds the outbox; an acknowledged file not yet removed and a
    temporary file are not waiting, and nothing is created or removed."""
    box = Outbox(tmp_path / "slack")
    keys = [box.put(alert(step=s)) for s in (1, 2, 3, 4)]
    assert all(keys)
    box.ack(str(keys[0]))
    box.reject(str(keys[1]), "HTTP 400")
    # A crash after the ack line and before the unlink leaves the file in pending/.
    survivor = next(
        p for p in (tmp_path / "slack" / "pending").iterdir() if str(keys[2]) in p.name
    )
    with (tmp_path / "slack" / "acked").open("a") as fh:
        fh.write(f"{keys[2]}\n")
    (tmp_path / "slack" / "pending" / ".tmp-123").write_text("{")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert outbox_counts(tmp_path / "slack") == (1, 1)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert survivor.exists()
    assert outbox_counts(tmp_path / "nothing") == (0, 0)
    box.close()
