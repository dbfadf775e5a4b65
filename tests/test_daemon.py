"""The watch daemon in-process, with real parts: a real observer on a temporary directory,
real writers (torch's SummaryWriter, Keras-style CSV lines, a trainer_state.json
rewriter), the real worker, pipeline and dispatcher; a recording sink at the end."""

from __future__ import annotations

import io
import json
import re
import shutil
import time
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from thread_checks import no_thread_leaks  # noqa: F401 (autouse for this module)

from advisor.daemon.app import Daemon
from advisor.daemon.app import WatchRequest
from advisor.daemon.app import assemble
from advisor.daemon.pacer import Pacer
from advisor.daemon.settings import watch_config
from advisor.errors import ConfigError
from advisor.model import Alert
from advisor.model import AlertEvent
from advisor.sinks.base import MemorySink

TIMEOUT = 20.0


def opened(run: str) -> Callable[[list[Alert]], bool]:
    return lambda alerts: any(a.run == run and a.event is AlertEvent.OPENED for a in alerts)


@contextmanager
def watching(
    root: Path, *, poll: float | None = None, state_dir: Path | None = None
) -> Iterator[tuple[Daemon, MemorySink]]:
    """A started daemon over ``root`` whose alerts go to a MemorySink."""
    config = root.parent / "advisor.toml"
    if not config.exists():
        config.write_text("[watch]\nrescan = 0.5\n")
    sink = MemorySink()
    req = WatchRequest(roots=(root,), config=config, poll=poll, state_dir=state_dir)
    daemon = Daemon(assemble(req, io.StringIO(), sinks={"memory": sink})).start()
    try:
        assert daemon.ready.wait(TIMEOUT)
        yield daemon, sink
    finally:
        daemon.stop()
    assert daemon.failure is None


def overfit_curve(n: int = 32, turn: int = 14, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Validation loss that falls, then rises after ``turn``; training loss keeps falling.

    The pipeline opens an overfitting alert at evaluation 18 of it.
    """
    e = np.arange(n, dtype=float)
    rng = np.random.default_rng(seed)
    val = 0.5 + 1.5 * np.exp(-e / 4) + np.where(e > turn, 0.03 * (e - turn), 0.0)
    val += rng.normal(0.0, 0.005, n)
    train = 0.4 + 1.6 * np.exp(-e / 5) - 0.005 * e
    return val, train


def write_csv(run: Path, rows: range, *, header: bool = True) -> None:
    """Keras CSVLogger-style lines, appended and flushed one by one."""
    val, train = overfit_curve()
    run.mkdir(parents=True, exist_ok=True)
    with (run / "training.log").open("a") as fh:
        if header:
            fh.write("epoch,loss,val_loss\n")
            fh.flush()
        for i in rows:
            fh.write(f"{i},{train[i]:.6f},{val[i]:.6f}\n")
            fh.flush()


def write_hf(run: Path) -> None:
    """trainer_state.json rewritten in place after each evaluation, as the Trainer does."""
    val, train = overfit_curve(seed=1)
    run.mkdir(parents=True, exist_ok=True)
    history: list[dict[str, float]] = []
    for i in range(val.size):
        step = 100 * (i + 1)
        history.append({"epoch": float(i + 1), "step": step, "loss": float(train[i])})
        history.append({"epoch": float(i + 1), "step": step, "eval_loss": float(val[i])})
        state = {"global_step": step, "log_history": history, "train_batch_size": 32}
        with (run / "trainer_state.json").open("w") as fh:
            fh.write(json.dumps(state, indent=2, sort_keys=True))


def write_tensorboard(run: Path) -> None:
    """torch's SummaryWriter, flushed after each scalar."""
    from torch.utils.tensorboard import SummaryWriter

    val, train = overfit_curve(seed=2)
    writer = SummaryWriter(log_dir=str(run))
    try:
        for i in range(val.size):
            writer.add_scalar("Loss/train", float(train[i]), i)
            writer.flush()
            writer.add_scalar("Loss/val", float(val[i]), i)
            writer.flush()
    finally:
        writer.close()


def test_three_writers_each_raise_an_overfitting_alert(tmp_path: Path) -> None:
    """SummaryWriter, CSV and trainer_state.json runs created after start each alert."""
    pytest.importorskip("torch.utils.tensorboard")
    root = tmp_path / "runs"
    root.mkdir()
    with watching(root) as (_, sink):
        write_tensorboard(root / "tb")
        write_csv(root / "keras", range(32))
        write_hf(root / "hf")
        for run in ("tb", "keras", "hf"):
            assert sink.wait_until(opened(run), TIMEOUT), (run, sink.alerts)
    first = {a.run: a for a in sink.alerts if a.event is AlertEvent.OPENED}
    assert {a.finding.diagnosis.value for a in first.values()} == {"overfitting"}
    assert first["keras"].finding.step == 18


def test_appended_lines_alert_at_the_step_they_show_it(tmp_path: Path) -> None:
    """A run that exists at start is followed line by line; its alert opens at step 18."""
    root = tmp_path / "runs"
    write_csv(root / "a", range(10))
    with watching(root) as (_, sink):
        for i in range(10, 32):
            write_csv(root / "a", range(i, i + 1), header=False)
        assert sink.wait_until(opened("a"), TIMEOUT)
    assert [a.finding.step for a in sink.alerts if a.event is AlertEvent.OPENED] == [18]


def printed_model() -> str:
    """What ``print(model)`` writes for a small ResNet-like torch model (about 5 KB)."""
    nn = pytest.importorskip("torch.nn")
    block = [nn.Conv2d(64, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU()]
    model = nn.Sequential(
        nn.Conv2d(3, 64, 7, stride=2, padding=3),
        *[nn.Sequential(*block, *block) for _ in range(12)],
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 10),
    )
    return repr(model) + "\n"


def test_a_stdout_log_opening_with_the_printed_model_is_followed(tmp_path: Path) -> None:
    """A script that prints its model before training starts: the stdout log has no
    metric in its first 4 KiB and none at all when the daemon starts; it is recognised
    once metric lines follow, and alerts like any other log."""
    run = tmp_path / "runs" / "a"
    run.mkdir(parents=True)
    head = printed_model()
    assert len(head) > 4096
    (run / "stdout.log").write_text(head)
    val, train = overfit_curve()
    with watching(tmp_path / "runs") as (_, sink), (run / "stdout.log").open("a") as fh:
        for i in range(val.size):
            fh.write(f"epoch {i} loss: {train[i]:.6f} val_loss: {val[i]:.6f}\n")
            fh.flush()
        assert sink.wait_until(opened("a"), TIMEOUT)
    assert [a.finding.step for a in sink.alerts if a.event is AlertEvent.OPENED] == [18]


WANDB_RUN = Path(__file__).parents[1] / "fixtures/wandb/run-20261126_120000-sgdover1"


def test_a_wandb_run_is_followed_as_wandb_writes_it(tmp_path: Path) -> None:
    """A W&B run's .wandb file, written in pieces cut anywhere (W&B flushes whole blocks
    and, every 15 s, what it has), while the script's stdout copy grows beside it: the
    alert opens at the step replay gives (74), and W&B's own files are no run and ask
    for no rescan."""
    run = tmp_path / "runs" / "wandb" / "run-20261126_120000-sgdover1"
    (run / "files").mkdir(parents=True)
    data = (WANDB_RUN / "run-sgdover1.wandb").read_bytes()
    printed = (WANDB_RUN / "files" / "output.log").read_text().splitlines(keepends=True)
    (run / "run-sgdover1.wandb").write_bytes(data[:5])
    cuts = [*range(3000, len(data), 2111), len(data)]
    with watching(tmp_path / "runs") as (daemon, sink):
        logs = daemon.parts.worker.logs
        at = 5
        for i, cut in enumerate(cuts):
            with (run / "run-sgdover1.wandb").open("ab") as fh:
                fh.write(data[at:cut])
            with (run / "files" / "output.log").open("a") as fh:
                fh.write(printed[i % len(printed)])
            at = cut
        assert sink.wait_until(opened("wandb/run-sgdover1"), TIMEOUT)
        assert not logs.worth_rescan(str(run / "files" / "output.log"))
        assert daemon.wait_until(lambda: len(logs.files) == 1, TIMEOUT)
    assert [a.finding.step for a in sink.alerts if a.event is AlertEvent.OPENED] == [74]


def test_a_root_inside_a_tmp_directory_beside_a_wandb_file_is_still_watched(
    tmp_path: Path,
) -> None:
    """Only W&B side directories below the watched root are W&B's: a new log in a root
    under ``tmp/`` is worth a rescan even where a ``.wandb`` file sits above ``tmp/``;
    the stdout copy in a run's own ``files/`` is not."""
    from advisor.config import Settings
    from advisor.daemon.logs import LogSet

    root = tmp_path / "tmp" / "runs"
    (root / "a").mkdir(parents=True)
    (tmp_path / "run-x.wandb").write_bytes(b"")
    (root / "a" / "training.log").write_text("epoch,loss,val_loss\n0,1.0,1.1\n")
    side = root / "wandb" / "run-1-x" / "files"
    side.mkdir(parents=True)
    (side.parent / "run-x.wandb").write_bytes(b"")
    (side / "output.log").write_text("epoch 1 loss=2.0\n")
    logs = LogSet([root], Settings())
    assert logs.worth_rescan(str(root / "a" / "training.log"))
    assert not logs.worth_rescan(str(side / "output.log"))


# The reference trainer's ``lr-too-low`` preset, seed 0 (the demo's run), epochs 1-10 of
# a planned 40: its planned-length underfitting finding holds at epoch 7 alone of these.
LOW_VAL = [2.285, 2.2441, 2.1292, 1.9381, 1.817, 1.7626, 1.7435, 1.7084, 1.6864, 1.6538]
LOW_TRAIN = [2.2956, 2.2712, 2.2007, 2.0391, 1.8692, 1.7861, 1.7455, 1.7101, 1.6842, 1.6554]


def test_a_batch_of_evaluations_is_analysed_at_each_while_the_daemon_is_on_time(
    tmp_path: Path,
) -> None:
    """Epochs 6-10 arrive in one write; the finding holds at epoch 7 only, so analysing
    the batch at its ends (both healthy) would miss it (the demo once opened its alert at
    epoch 14). Not behind, the daemon analyses every evaluation: epoch 7."""
    root = tmp_path / "runs"
    (tmp_path / "advisor.toml").write_text(
        '[watch]\nrescan = 0.5\n\n[[hparams]]\nruns = "*"\nepochs = 40\n'
    )
    run = root / "low"
    run.mkdir(parents=True)
    lines = [f"{e + 1},{LOW_TRAIN[e]},{LOW_VAL[e]}\n" for e in range(10)]
    (run / "training.log").write_text("epoch,loss,val_loss\n" + "".join(lines[:5]))
    with watching(root) as (daemon, sink):
        pipeline = daemon.parts.worker.pipeline
        assert daemon.wait_until(lambda: "low" in pipeline.runs, TIMEOUT)
        with (run / "training.log").open("a") as fh:
            fh.write("".join(lines[5:]))  # one write, one batch
        assert daemon.wait_until(lambda: pipeline.runs["low"].last_step == 10, TIMEOUT)
    assert [(a.event, a.finding.step) for a in sink.alerts] == [(AlertEvent.OPENED, 7)]


def test_deleted_run_is_forgotten(tmp_path: Path) -> None:
    """Deleting a run's directory drops it from the pipeline and the store."""
    root = tmp_path / "runs"
    write_csv(root / "keep", range(8))
    write_csv(root / "gone", range(8))
    with watching(root) as (daemon, _):
        worker = daemon.parts.worker
        assert "gone" in worker.pipeline.runs
        shutil.rmtree(root / "gone")
        assert daemon.wait_until(lambda: "gone" not in worker.pipeline.runs, TIMEOUT)
        assert "gone" not in worker.logs.store.runs()
        assert "keep" in worker.pipeline.runs


def test_poll_mode_alerts(tmp_path: Path) -> None:
    """With --poll (watchdog's PollingObserver) appended lines alert too."""
    root = tmp_path / "runs"
    root.mkdir()
    with watching(root, poll=0.1) as (_, sink):
        write_csv(root / "p", range(32))
        assert sink.wait_until(opened("p"), TIMEOUT)


def test_restart_resumes_without_repeating_or_missing(tmp_path: Path) -> None:
    """Stopped halfway, restarted after more lines: each alert arrives once overall."""
    root = tmp_path / "runs"
    state = tmp_path / "state"
    write_csv(root / "done", range(32))  # finished before the first start
    write_csv(root / "live", range(12))
    with watching(root, state_dir=state) as (_, sink):
        assert sink.wait_until(opened("done"), TIMEOUT)
    first = list(sink.alerts)
    write_csv(root / "live", range(12, 32), header=False)  # written while down
    with watching(root, state_dir=state) as (daemon, sink2):
        assert sink2.wait_until(opened("live"), TIMEOUT)
        # The unchanged run was read but not analysed again.
        assert daemon.parts.worker.analyses == 1
    assert not [a for a in sink2.alerts if a.run == "done"]
    ids = [(a.run, a.rule, a.event, a.finding.step) for a in first + sink2.alerts]
    assert len(ids) == len(set(ids))


def test_state_writes_are_spaced_by_their_cost(tmp_path: Path, monkeypatch) -> None:
    """A state write that takes long is not repeated until 50 times its CPU time has
    passed (writing stays under 2% of a core with thousands of runs); a forced write
    (at stop) still goes through."""
    root = tmp_path / "runs"
    write_csv(root / "a", range(8))
    config = tmp_path / "advisor.toml"
    config.write_text("[watch]\nsave_interval = 0\n")
    req = WatchRequest(roots=(root,), config=config, poll=1.0, state_dir=tmp_path / "state")
    worker = assemble(req, io.StringIO(), sinks={"memory": MemorySink()}).worker
    assert worker.state is not None
    real, writes = worker.state.save, []

    def slow_save(*args: object) -> None:
        spin_until = time.thread_time() + 0.1  # 100 ms of CPU: the next write waits 5 s
        while time.thread_time() < spin_until:
            pass
        writes.append(time.monotonic())
        real(*args)

    monkeypatch.setattr(worker.state, "save", slow_save)
    worker._unsaved = True
    worker.save()
    worker._unsaved = True
    worker.save()  # well within 5 s of the first
    assert len(writes) == 1
    worker.save(force=True)
    assert len(writes) == 2


def test_pacer_keeps_the_analysis_within_its_budget() -> None:
    """A burst is allowed at once; over a long stretch, spending stays at the budget."""
    p = Pacer(budget=0.1, burst=0.05)
    assert p.ready(now=0.0)
    p.record("a", now=0.0, cost=0.1)
    assert not p.ready(now=0.0)
    assert p.next_ready(now=0.0) == pytest.approx(0.5, abs=1e-4)
    t, spent = 0.0, 0.1
    while t < 100.0:
        t = p.next_ready(t)
        p.record(f"r{int(t) % 7}", now=t, cost=0.02)
        spent += 0.02
    assert spent <= 0.1 * t + 0.05 + 0.02 + 0.1
    assert p.active == 7 and p.interval == pytest.approx(7 * 0.02 / 0.1)


def test_pacer_spaces_one_run_by_min_interval() -> None:
    """With min_interval, a run changed again right away waits for it."""
    p = Pacer(min_interval=2.0)
    assert p.due("a", now=5.0) == 5.0
    p.record("a", now=5.0, cost=0.001)
    assert p.due("a", now=6.0) == 7.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[watch]\npoll = -1\n", "watch.poll: expected a finite number > 0"),
        ("[watch]\nfrobnicate = 1\n", "watch.frobnicate: unknown key"),
        ('[alerts]\nmin_severity = "loud"\n', "alerts.min_severity: expected one of"),
        ('[sinks.webhook]\nurl = "ftp://x"\n', "sinks.webhook.url: expected an http(s)"),
        ("[sinks.slack]\nrate_limit = 0\n", "sinks.slack.rate_limit: expected a whole number"),
    ],
)
def test_bad_watch_settings_name_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    """Each bad value is one error naming the file and the key."""
    from advisor.config import load_settings

    path = tmp_path / "advisor.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)) as err:
        watch_config(load_settings(path))
    assert str(path) in str(err.value)
