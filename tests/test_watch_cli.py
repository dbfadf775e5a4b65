"""``advisor watch`` as a process: --once against replay, signals, errors, and kill -9
between a finding and its delivery (a loopback webhook receiver records what it got)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

import pytest
from loopback import HANG
from loopback import Answer
from loopback import LoopbackServer
from thread_checks import no_thread_leaks  # noqa: F401 (autouse for this module)

REPO = Path(__file__).resolve().parents[1]
SCENARIOS = REPO / "fixtures" / "scenarios" / "tune"
TIMEOUT = 30.0


def advisor(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "advisor.cli", *args],
        capture_output=True, text=True, timeout=timeout, check=False, cwd=REPO,
    )  # fmt: skip


class DaemonProcess:
    """``advisor watch`` in a subprocess, its output lines in queues."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "advisor.cli", "watch", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        )  # fmt: skip
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.out: queue.Queue[str] = queue.Queue()
        self.err: queue.Queue[str] = queue.Queue()
        self.err_lines: list[str] = []
        self._threads = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.out)),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.err)),
        ]
        for t in self._threads:
            t.start()

    @staticmethod
    def _pump(stream: IO[str], into: queue.Queue[str]) -> None:
        for line in stream:
            into.put(line.rstrip("\n"))

    def wait_err(self, text: str, timeout: float = TIMEOUT) -> str:
        """The first stderr line containing ``text`` (fails on timeout)."""
        while True:
            line = self.err.get(timeout=timeout)
            self.err_lines.append(line)
            if text in line:
                return line

    def finish(self, sig: int | None = signal.SIGTERM) -> int:
        """Send ``sig`` (None: only wait), wait for the exit, join the pumps."""
        if sig is not None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=TIMEOUT)
        for t in self._threads:
            t.join()
        while not self.err.empty():
            self.err_lines.append(self.err.get())
        return rc


def write_overfit_csv(run: Path) -> None:
    """A finished Keras-style run that opens an overfitting alert at epoch 18."""
    import numpy as np

    e = np.arange(32, dtype=float)
    rng = np.random.default_rng(0)
    val = 0.5 + 1.5 * np.exp(-e / 4) + np.where(e > 14, 0.03 * (e - 14), 0.0)
    val += rng.normal(0.0, 0.005, e.size)
    train = 0.4 + 1.6 * np.exp(-e / 5) - 0.005 * e
    run.mkdir(parents=True)
    rows = "".join(f"{i},{train[i]:.6f},{val[i]:.6f}\n" for i in range(e.size))
    (run / "training.log").write_text("epoch,loss,val_loss\n" + rows)


def alert_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if json.loads(line)["type"] == "alert"]


SUBSET = ["overfit_00", "underfit_00", "nan_00", "diverge_00", "healthy_00", "spikes_00",
          "oscillate_00", "lr_range_00", "step_decay_01", "overfit_05"]  # fmt: skip


def test_once_equals_replay_on_scenarios() -> None:
    """--once --json writes exactly replay's alert lines (every format, in order)."""
    paths = [str(SCENARIOS / name) for name in SUBSET]
    once = advisor("watch", "--once", "--json", *paths)
    replay = advisor("replay", "--json", *paths)
    assert once.returncode == 0, once.stderr
    assert once.stdout.strip(), "expected alerts"
    assert once.stdout.splitlines() == alert_lines(replay.stdout)


def test_once_reports_a_cut_off_tail_as_replay_does() -> None:
    """--once reads logs as finished: a last line or record the writer never finished is
    reported, as replay reports it, not waited for in silence (nothing comes after)."""
    paths = [
        str(REPO / "fixtures" / "damaged" / name) for name in ("csv_half_line", "tb_truncated")
    ]
    once = advisor("watch", "--once", "--json", *paths)
    replay = advisor("replay", "--json", *paths)
    assert once.returncode == 0, once.stderr
    warned = [line for line in once.stderr.splitlines() if "cut off mid-write?" in line]
    assert len(warned) == 2
    assert "line 21: last line has no line end" in warned[0]
    assert "byte 5394: last record incomplete after 15 bytes" in warned[1]
    assert warned == [line for line in replay.stderr.splitlines() if "cut off" in line]


@pytest.mark.slow
def test_once_equals_replay_on_the_whole_suite() -> None:
    """The same over all 87 runs of the tune suite."""
    once = advisor("watch", "--once", "--json", str(SCENARIOS), timeout=600)
    replay = advisor("replay", "--json", str(SCENARIOS), timeout=600)
    assert once.stdout.splitlines() == alert_lines(replay.stdout)


def test_sigterm_stops_cleanly_and_state_is_kept(tmp_path: Path) -> None:
    """SIGTERM: exit 0, only JSON on stdout, state written; a restart says nothing again."""
    root, state = tmp_path / "runs", tmp_path / "state"
    write_overfit_csv(root / "a")
    d = DaemonProcess(str(root), "--json", "--state-dir", str(state))
    first = json.loads(d.out.get(timeout=TIMEOUT))
    assert (first["run"], first["event"], first["step"]) == ("a", "opened", 18)
    assert d.finish(signal.SIGTERM) == 0
    assert "Traceback" not in "\n".join(d.err_lines)
    saved = json.loads((state / "state.json").read_text())
    assert saved["pipeline"]["runs"]["a"]["evaluated"] == 32
    assert [f["size"] for f in saved["files"]] == [(root / "a" / "training.log").stat().st_size]
    again = advisor("watch", "--once", "--json", "--state-dir", str(state), str(root))
    assert again.returncode == 0 and again.stdout == ""


def outbox_ids(state: Path, sink: str) -> set[str]:
    """Ids of the alerts waiting in a sink's outbox (whole files only)."""
    names = [p.name for p in (state / "outbox" / sink / "pending").glob("*.json")]
    return {n.removesuffix(".json").split("-")[-1] for n in names if not n.startswith(".")}


def test_kill_9_between_finding_and_delivery_loses_and_repeats_nothing(tmp_path: Path) -> None:
    """kill -9 while alerts wait in the outbox: after a restart each id arrives once."""
    root, state = tmp_path / "runs", tmp_path / "state"
    write_overfit_csv(root / "a")
    # The first request hangs: the alert is found and in the outbox, but not delivered.
    with LoopbackServer([HANG]) as server:
        config = tmp_path / "advisor.toml"
        config.write_text(f'[sinks.webhook]\nurl = "{server.url("/hook")}"\n')
        args = (str(root), "--config", str(config), "--state-dir", str(state))
        d = DaemonProcess(*args)
        assert server.wait_requests(1, TIMEOUT)
        waiting = outbox_ids(state, "webhook")
        assert waiting, "the alert should wait in the outbox"
        d.proc.kill()  # SIGKILL: no clean-up of any kind
        assert d.finish(sig=None) == -signal.SIGKILL
        # Meanwhile the run goes on (the validation loss keeps rising).
        with (root / "a" / "training.log").open("a") as fh:
            fh.write("32,0.25,1.02\n33,0.24,1.05\n")
        # Every alert the log gives now, derived afresh (no state, no sinks).
        fresh = advisor("watch", "--once", "--json", str(root))
        expected = {json.loads(line)["id"] for line in fresh.stdout.splitlines()}
        assert waiting <= expected
        d2 = DaemonProcess(*args)
        d2.wait_err("watching")
        assert server.wait_requests(1 + len(expected), TIMEOUT)
        assert d2.finish(signal.SIGINT) == 0
    delivered = [r.json()["id"] for r in server.requests[1:]]  # the first one hung
    assert sorted(delivered) == sorted(expected)  # each once: none lost, none twice
    assert not outbox_ids(state, "webhook")


def test_configured_sinks_each_get_the_alerts(tmp_path: Path) -> None:
    """Slack (URL from the environment), JSON Lines file and webhook (from the config)."""
    root = tmp_path / "runs"
    write_overfit_csv(root / "a")
    with LoopbackServer() as slack, LoopbackServer() as hook:
        config = tmp_path / "advisor.toml"
        config.write_text(
            f'[sinks.jsonl]\npath = "alerts.jsonl"\n[sinks.webhook]\nurl = "{hook.url()}"\n'
        )
        env = {**os.environ, "ADVISOR_SLACK_WEBHOOK_URL": slack.url("/services/T/B/secret")}
        proc = subprocess.run(
            [sys.executable, "-m", "advisor.cli", "watch", "--once", str(root),
             "--config", str(config)],
            capture_output=True, text=True, timeout=120, check=False, cwd=REPO, env=env,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "OVERFITTING opened" in proc.stdout  # the console sink, on stdout
    assert "secret" not in proc.stdout + proc.stderr
    lines = (tmp_path / "alerts.jsonl").read_text().splitlines()
    ids = [json.loads(line)["id"] for line in lines]
    assert ids and [r.json()["id"] for r in hook.requests] == ids
    assert len(slack.requests) == len(ids)
    assert "blocks" in slack.requests[0].json()


def test_second_sigint_exits_at_once(tmp_path: Path) -> None:
    """While the first SIGINT waits for a hung sink, a second one exits 130 at once."""
    root = tmp_path / "runs"
    write_overfit_csv(root / "a")
    with LoopbackServer([HANG]) as server:
        config = tmp_path / "advisor.toml"
        config.write_text(f'[sinks.webhook]\nurl = "{server.url()}"\n')
        d = DaemonProcess(str(root), "--config", str(config))
        assert server.wait_requests(1, TIMEOUT)
        d.proc.send_signal(signal.SIGINT)
        d.wait_err("stopping")  # the first one was handled: the sink holds up the exit
        d.proc.send_signal(signal.SIGINT)
        assert d.finish(sig=None) == 130


def test_bad_root_and_bad_config_are_one_line_exit_2(tmp_path: Path) -> None:
    """A missing root, a bad config key and a busy state dir: one line, exit 2."""
    missing = advisor("watch", str(tmp_path / "nope"))
    config = tmp_path / "advisor.toml"
    config.write_text("[watch]\nrescan = 0\n")
    bad = advisor("watch", str(tmp_path), "--config", str(config))
    for proc, text in ((missing, "no such file or directory"), (bad, "watch.rescan")):
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.count("\n") == 1 and text in proc.stderr
        assert proc.stdout == ""


def test_second_daemon_on_one_state_dir_is_refused(tmp_path: Path) -> None:
    """The state dir is locked while a daemon uses it."""
    root, state = tmp_path / "runs", tmp_path / "state"
    root.mkdir()
    d = DaemonProcess(str(root), "--state-dir", str(state))
    d.wait_err("watching")
    other = advisor("watch", "--once", str(root), "--state-dir", str(state))
    assert d.finish(signal.SIGINT) == 0
    assert other.returncode == 2 and "in use by another advisor" in other.stderr


def test_check_validates_beside_a_running_daemon_and_sends_nothing(tmp_path: Path) -> None:
    """--check reads the state dir a daemon holds (no lock), says what would run, sends
    no alert and exits 0; what would stop the daemon at its start is one line, exit 2."""
    root, state = tmp_path / "runs", tmp_path / "state"
    write_overfit_csv(root / "a")
    d = DaemonProcess(str(root), "--json", "--state-dir", str(state))
    d.out.get(timeout=TIMEOUT)  # the alert: the run is read
    d.wait_err("watching")
    config = tmp_path / "advisor.toml"
    config.write_text("[watch]\npoll = 7\n")
    ok = advisor("watch", "--check", str(root), "--config", str(config), "--state-dir", str(state))
    assert d.finish(signal.SIGTERM) == 0
    assert ok.returncode == 0 and ok.stdout == "", ok.stderr
    assert f"would watch {root} (polling every 7 s" in ok.stderr
    assert f"state in {state} (progress saved for 1 log)" in ok.stderr
    (state / "state.json").write_text("{")
    config.write_text("[sinks.slack]\nwebhook_file = 'nowhere'\n")
    for args, text in (
        (["--state-dir", str(state)], "state.json: unreadable state"),
        (["--config", str(config)], "nowhere: cannot read the Slack webhook URL"),
    ):
        bad = advisor("watch", "--check", str(root), *args)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and text in bad.stderr


def test_status_reads_a_running_daemons_runs_alerts_and_outbox(tmp_path: Path) -> None:
    """``advisor status`` beside a running daemon: its runs with their open alerts, and
    its webhook outbox with the first alert refused (HTTP 400) and the others waiting
    behind a hung post."""
    root, state = tmp_path / "runs", tmp_path / "state"
    write_overfit_csv(root / "a")
    write_overfit_csv(root / "b")
    (root / "c").mkdir()
    (root / "c" / "training.log").write_text("epoch,loss,val_loss\n0,1.0,1.1\n1,0.9,1.0\n")
    with LoopbackServer([Answer(400), HANG]) as server:
        config = tmp_path / "advisor.toml"
        config.write_text(f'[sinks.webhook]\nurl = "{server.url()}"\n')
        d = DaemonProcess(str(root), "--config", str(config), "--state-dir", str(state))
        d.wait_err("watching")
        assert server.wait_requests(2, TIMEOUT)
        got = advisor("status", "--state-dir", str(state), "--json")
        text = advisor("status", "--state-dir", str(state), "--all")
        assert d.finish(signal.SIGTERM) == 0
    assert got.returncode == 0, got.stderr
    *runs, total = [json.loads(line) for line in got.stdout.splitlines()]
    assert [(r["run"], r["evaluated"], r["last_step"]) for r in runs] == [
        ("a", 32, 31),
        ("b", 32, 31),
        ("c", 2, 1),
    ]
    assert [[o["diagnosis"] for o in r["open"]] for r in runs] == [
        ["overfitting"],
        ["overfitting"],
        [],
    ]
    assert (total["runs"], total["alerted_runs"]) == (3, 2)
    alerts = advisor("watch", "--once", "--json", str(root)).stdout.splitlines()
    assert len(alerts) >= 2
    assert total["outbox"]["webhook"] == {"waiting": len(alerts) - 1, "rejected": 1}
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["RUN", "EVALS", "LAST", "STEP", "OPEN", "ALERTS"]
    assert lines[1].startswith("a ") and "overfitting critical (SMITH-OVF-01, step " in lines[1]
    assert lines[3].split() == ["c", "2", "1", "-"]
    assert lines[4].startswith("3 runs, 2 with an open alert; state written ")
    assert f"outbox webhook: {len(alerts) - 1} waiting, 1 rejected" in lines
    (state / "state.json").write_text('{"version": 1, "pipeline": {"runs": 3}, "files": []}')
    for where, message in (
        (tmp_path / "none", "no advisor state here"),
        (state, "not a state this advisor reads"),
    ):
        bad = advisor("status", "--state-dir", str(where))
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and message in bad.stderr


def test_benchmark_quick_runs(tmp_path: Path) -> None:
    """benchmarks/daemon.py --quick measures every part and prints a verdict for each."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "daemon.py"), "--quick",
         "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    for part in ("latency (events)", "latency (poll", "active runs", "idle"):
        assert part in proc.stdout, proc.stdout
    assert "PASS" in proc.stdout or "FAIL" in proc.stdout


def test_once_equals_replay_on_every_tracker_format(tmp_path: Path) -> None:
    """The logs of W&B, an MLflow database, DVCLive, Sacred, Ray Tune and a Keras history:
    ``watch --once`` opens the alerts replay opens, in order."""
    import gzip
    import shutil

    fixtures = REPO / "fixtures"
    db = tmp_path / "mlflow" / "mlflow.db"
    db.parent.mkdir()
    with gzip.open(fixtures / "mlflow_db" / "mlflow.db.gz", "rb") as src, db.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    trackers = ("wandb", "wandb_hf", "dvclive", "sacred", "json", "ray")
    paths = [str(fixtures / d) for d in trackers] + [str(db.parent)]
    once = advisor("watch", "--once", "--json", *paths)
    replay = advisor("replay", "--json", *paths)
    assert once.returncode == 0, once.stderr
    runs = {json.loads(line)["run"] for line in once.stdout.splitlines()}
    assert len(runs) >= 7
    assert once.stdout.splitlines() == alert_lines(replay.stdout)


def test_configured_alerts_and_rules_apply_to_replay_as_to_watch(tmp_path: Path) -> None:
    """advisor.toml's ``[alerts]`` floor and ``[rules]`` files (relative to it) shape
    replay's alerts as they shape the daemon's: only critical alerts, the team's rule."""
    (tmp_path / "team.toml").write_text(
        '[[rule]]\nid = "SMITH-INS-03"\ntitle = "t"\ndiagnosis = "instability"\n'
        'when = ["severity == \'critical\'"]\npriority = 1000\nsymptom = "s"\nwhy = "w"\n'
        'source = "team"\n'
        '[[rule.recommend]]\nparam = "training"\naction = "stop"\nwhy = "page the owner"\n'
    )
    config = tmp_path / "advisor.toml"
    config.write_text('[alerts]\nmin_severity = "critical"\n[rules]\nfiles = ["team.toml"]\n')
    paths = [str(SCENARIOS / name) for name in SUBSET]
    once = advisor("watch", "--once", "--json", "--config", str(config), *paths)
    replay = advisor("replay", "--json", "--config", str(config), *paths)
    assert once.returncode == 0, once.stderr
    alerts = [json.loads(line) for line in alert_lines(replay.stdout)]
    assert {a["severity"] for a in alerts} == {"critical"}
    (nan,) = [a for a in alerts if a["run"] == "nan_00"]
    assert nan["rule"] == "SMITH-INS-03"
    assert (nan["recommendations"][0]["why"], nan["recommendations"][0]["source"]) == (
        "page the owner",
        "team",
    )
    assert once.stdout.splitlines() == alert_lines(replay.stdout)
    listed = advisor("rules", "explain", "SMITH-INS-03", "--config", str(config))
    assert "source: team" in listed.stdout
