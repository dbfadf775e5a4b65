"""MLflow's SQLite tracking store: what MLflow 3.17 wrote (fixtures/mlflow_db, see
fixtures/gen_mlflow_db.py), rows added as MLflow's SQL store adds them, discovery,
replay and the watch daemon."""

from __future__ import annotations

import gzip
import math
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from loader_helpers import drain
from loader_helpers import points
from loader_helpers import replay_diagnoses
from test_daemon import TIMEOUT
from test_daemon import opened
from test_daemon import overfit_curve
from test_daemon import watching
from thread_checks import no_thread_leaks  # noqa: F401 (autouse for this module)

from advisor.errors import InputError
from advisor.model import AlertEvent
from advisor.model import Batch
from advisor.sources.discovery import MLFLOW_DB
from advisor.sources.discovery import discover
from advisor.sources.mlflow import MlflowDbLoader

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mlflow_db" / "mlflow.db.gz"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """The fixture database, unpacked into ``tmp_path/proj``."""
    path = tmp_path / "proj" / "mlflow.db"
    path.parent.mkdir()
    with gzip.open(FIXTURE, "rb") as src, path.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    return path


def run_id(path: Path, name: str) -> str:
    with sqlite3.connect(path) as con:
        return str(con.execute("SELECT run_uuid FROM runs WHERE name = ?", (name,)).fetchone()[0])


def log_metrics(con: sqlite3.Connection, run: str, step: int, metrics: dict[str, float]) -> None:
    """One ``mlflow.log_metrics`` call as MLflow's SqlAlchemyStore commits it: a row per
    key in ``metrics`` (NaN as 0 with is_nan) and ``latest_metrics`` kept up to date."""
    stamp = int(time.time() * 1000)
    with con:  # one transaction
        for key, value in metrics.items():
            nan = math.isnan(value)
            row = (key, 0.0 if nan else value, stamp, run, step, int(nan))
            con.execute(
                "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                row,
            )
            con.execute(
                "INSERT OR REPLACE INTO latest_metrics "
                "(key, value, timestamp, step, is_nan, run_uuid) VALUES (?, ?, ?, ?, ?, ?)",
                (key, row[1], stamp, step, int(nan), run),
            )


def start_run(con: sqlite3.Connection, uuid: str, name: str) -> None:
    """``mlflow.start_run`` in experiment 1, as the SQL store inserts it."""
    with con:
        con.execute(
            "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, "
            "user_id, status, start_time, end_time, source_version, lifecycle_stage, "
            "artifact_uri, experiment_id) VALUES (?, ?, 'UNKNOWN', '', '', 'me', 'RUNNING', "
            "?, NULL, '', 'active', '', 1)",
            (uuid, name, int(time.time() * 1000)),
        )


def by_tag(batch: Batch) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {}
    for tag, step, _, value in points(batch):
        out.setdefault(tag, []).append((step, float(value)))
    return out


# -- discovery ------------------------------------------------------------------------------


def test_each_run_not_deleted_is_a_run_of_its_own(db: Path) -> None:
    with sqlite3.connect(db) as con:
        stages = dict(con.execute("SELECT name, lifecycle_stage FROM runs").fetchall())
    con.close()
    assert stages == {"sgd-overfit": "active", "adam-plateau": "active", "discarded": "deleted"}
    found = discover(db.parent.parent)
    assert [(f.run, f.format, f.part) for f in found] == [
        (f"proj/mlflow.db/1/{run_id(db, name)}", MLFLOW_DB, run_id(db, name))
        for name in ("sgd-overfit", "adam-plateau")
    ]
    assert [f.run for f in discover(db)] == [f.run.removeprefix("proj/") for f in found]


def test_other_sqlite_files_are_no_logs(tmp_path: Path) -> None:
    """A database with other tables, one with MLflow's table names but not its columns
    (say, another tool's), and a text file named .db are passed over."""
    for name, tables in (
        ("cache.sqlite", ["runs"]),
        ("fake.db", ["experiments", "runs", "metrics"]),
    ):
        con = sqlite3.connect(tmp_path / name)
        for table in tables:
            con.execute(f"CREATE TABLE {table} (id INTEGER)")
        con.commit()
        con.close()
    (tmp_path / "notes.db").write_text("epoch,loss\n0,1\n")
    assert discover(tmp_path) == []
    with pytest.raises(InputError, match="not a training log"):
        discover(tmp_path / "fake.db")


def test_a_store_in_mid_commit_is_still_found(db: Path) -> None:
    """A scan that meets MLflow committing (an exclusive lock, held here for 0.3 s)
    waits for it rather than drop the database's runs from this scan."""
    held = threading.Event()

    def commit() -> None:
        writer = sqlite3.connect(db, isolation_level=None)
        writer.execute("BEGIN EXCLUSIVE")
        held.set()
        time.sleep(0.3)  # the commit's duration, not a wait for an event
        writer.execute("COMMIT")
        writer.close()

    thread = threading.Thread(target=commit)
    thread.start()
    try:
        assert held.wait(10)
        assert len(discover(db.parent)) == 2
    finally:
        thread.join()


# -- reading --------------------------------------------------------------------------------


def test_every_logged_value_is_read_as_mlflow_logged_it(db: Path) -> None:
    """20 epochs of four keys; MLflow's NaN (0 with is_nan) and infinity (the largest
    double) come back as such; the last values agree with MLflow's own latest_metrics."""
    run = run_id(db, "sgd-overfit")
    batch = MlflowDbLoader(db, run).load()
    tags = by_tag(batch)
    assert sorted(tags) == ["grad_norm", "train_loss", "val_accuracy", "val_loss"]
    assert all([s for s, _ in series] == list(range(20)) for series in tags.values())
    grad = dict(tags["grad_norm"])
    assert math.isnan(grad[5]) and grad[6] == math.inf and grad[7] == 1.0
    with sqlite3.connect(db) as con:
        latest = dict(
            con.execute(
                "SELECT key, value FROM latest_metrics WHERE run_uuid = ? AND is_nan = 0", (run,)
            ).fetchall()
        )
    con.close()
    assert {k: v[-1][1] for k, v in tags.items()} == latest
    walls = batch.scalars.wall_time
    assert (walls > 1.7e9).all() and (walls < 2.1e9).all()


def test_the_params_are_the_hyper_parameters(db: Path) -> None:
    batch = MlflowDbLoader(db, run_id(db, "sgd-overfit")).load()
    assert dict(batch.hparams) == {
        "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0, "batch_size": 128.0, "epochs": 20.0,
    }  # fmt: skip


def test_rows_logged_later_are_read_once_and_in_order(db: Path) -> None:
    run = run_id(db, "adam-plateau")
    loader = MlflowDbLoader(db, run)
    assert len(points(loader.load())) == 40
    assert loader.load().scalars.step.size == 0
    con = sqlite3.connect(db)
    log_metrics(con, run, 20, {"val_loss": 0.36, "train_loss": float("nan")})
    log_metrics(con, run, 21, {"val_loss": 0.37})
    with con:
        con.execute("INSERT INTO params (key, value, run_uuid) VALUES ('wd', '5e-4', ?)", (run,))
    con.close()
    batch = loader.load()
    assert [(t, s, v) for t, s, _, v in points(batch)] == [
        ("val_loss", 20, "0.36"), ("train_loss", 20, "nan"), ("val_loss", 21, "0.37"),
    ]  # fmt: skip
    assert dict(batch.hparams) == {"wd": 0.0005}
    assert loader.load().hparams == {}


def test_a_small_batch_reads_in_several_calls(db: Path) -> None:
    run = run_id(db, "sgd-overfit")
    loader = MlflowDbLoader(db, run, batch_rows=7)
    first = loader.load()
    assert first.more
    assert points(first) + drain(loader) == points(MlflowDbLoader(db, run).load())


def test_a_replaced_database_is_read_again(db: Path, tmp_path: Path) -> None:
    run = run_id(db, "sgd-overfit")
    loader = MlflowDbLoader(db, run)
    whole = points(loader.load())
    shutil.copy(db, tmp_path / "copy.db")
    (tmp_path / "copy.db").replace(db)
    batch = loader.load()
    assert batch.reset and points(batch) == whole


def test_a_database_that_cannot_be_read_is_one_clear_error(db: Path) -> None:
    run = run_id(db, "sgd-overfit")
    loader = MlflowDbLoader(db, run)
    loader.load()
    db.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    with pytest.raises(InputError, match=r"mlflow\.db: cannot read the MLflow database: "):
        loader.load()
    db.unlink()
    gone = MlflowDbLoader(db, run).load()
    assert len(gone.scalars) == 0 and gone.problems == ()


def test_replay_diagnoses_each_run(db: Path) -> None:
    assert replay_diagnoses(db.parent) == {
        f"mlflow.db/1/{run_id(db, 'sgd-overfit')}": "overfitting",
        f"mlflow.db/1/{run_id(db, 'adam-plateau')}": "healthy",
    }


# -- watching -------------------------------------------------------------------------------


@pytest.mark.parametrize("journal", ["delete", "wal"])
def test_a_run_started_while_watching_is_found_and_followed(db: Path, journal: str) -> None:
    """MLflow starts a run in a watched database and logs an evaluation per commit:
    the run is found without waiting for a periodic rescan and alerts where a file log
    of the same curve does (evaluation 18). In WAL mode commits change only the -wal
    file (MLflow's connection pool keeps the database open, so no close checkpoints it).
    """
    with sqlite3.connect(db) as con:
        con.execute(f"PRAGMA journal_mode={journal}")
    con.close()
    root = db.parent.parent / "root"
    root.mkdir()
    db.parent.rename(root / "proj")
    db = root / "proj" / "mlflow.db"
    (root.parent / "advisor.toml").write_text("[watch]\nrescan = 3600\n")
    uuid = "f" * 32
    name = f"proj/mlflow.db/1/{uuid}"
    val, train = overfit_curve()
    writer = sqlite3.connect(db)
    try:
        with watching(root) as (daemon, sink):
            assert len(daemon.parts.worker.logs.files) == 2
            start_run(writer, uuid, "live")
            for i in range(val.size):
                log_metrics(writer, uuid, i, {"val_loss": float(val[i]), "loss": float(train[i])})
            assert sink.wait_until(opened(name), TIMEOUT)
            if journal == "wal":
                assert db.with_name("mlflow.db-wal").stat().st_size > 0
    finally:
        writer.close()
    opens = [(a.run, a.finding.step) for a in sink.alerts if a.event is AlertEvent.OPENED]
    assert [step for run, step in opens if run == name] == [18]


def test_a_commit_dirties_only_the_runs_it_logged_to(db: Path, tmp_path: Path) -> None:
    """A database may hold thousands of runs: an event on it reads those with new metric
    rows (one query), not every run (a query each); a replaced database, every run."""
    from advisor.config import Settings
    from advisor.daemon.logs import LogSet

    logs = LogSet([db.parent.parent], Settings())
    logs.scan()
    keys = sorted(logs.files)
    for key in keys:
        logs.load(key)
    assert logs.keys_of(str(db)) == []
    con = sqlite3.connect(db)
    log_metrics(con, run_id(db, "adam-plateau"), 20, {"val_loss": 0.3})
    con.close()
    [touched] = logs.keys_of(str(db))
    assert touched.endswith("#" + run_id(db, "adam-plateau"))
    assert logs.keys_of(str(db) + "-journal") == []  # nothing newer since
    shutil.copy(db, tmp_path / "copy.db")
    (tmp_path / "copy.db").replace(db)
    assert logs.keys_of(str(db)) == keys
