"""Reading MLflow's SQLite store: the advisor's loader against MLflow's own client.

Usage::

    python benchmarks/mlflow_db_read.py [--rows 100000] [--mlflow-python PYTHON]

Builds a database from the fixture (``fixtures/mlflow_db/mlflow.db.gz``, written by
MLflow) with ``--rows`` more evaluations of three metrics added to one run as MLflow's
SQL store adds them (``metrics`` and ``latest_metrics``), then reads that run's every
point with :class:`~advisor.sources.mlflow.MlflowDbLoader` and, when ``--mlflow-python``
names an interpreter with MLflow (it is not a dependency of the advisor), with
``MlflowClient.get_metric_history`` for each key, in the same run. Prints points per
second and the ratio.

Then, for watching: a database of ``--runs`` finished runs (50 evaluations each) and one
that logs, commit by commit; the median time to read a commit's news, as ``advisor
watch`` does (one query for the runs with new rows, then those runs), against reading
every run of the database (a query each).
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from advisor.sources.mlflow import MlflowDbLoader

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "mlflow_db" / "mlflow.db.gz"
KEYS = ("train_loss", "val_loss", "lr")

_REFERENCE = """
import logging, sys, time
logging.disable(logging.INFO)
from mlflow import MlflowClient
client = MlflowClient(tracking_uri="sqlite:///" + sys.argv[1])
times = []
for _ in range(int(sys.argv[3])):
    start = time.perf_counter()
    count = sum(len(client.get_metric_history(sys.argv[2], k)) for k in sys.argv[4:])
    times.append(time.perf_counter() - start)
print(count, sorted(times)[len(times) // 2])
"""


def build(path: Path, rows: int) -> str:
    """The fixture with ``rows`` evaluations added to its run ``adam-plateau``."""
    with gzip.open(FIXTURE, "rb") as src, path.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    con = sqlite3.connect(path)
    (run,) = con.execute("SELECT run_uuid FROM runs WHERE name = 'adam-plateau'").fetchone()
    stamp = 1_800_000_000_000
    con.executemany(
        "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
        "VALUES (?, ?, ?, ?, ?, 0)",
        ((k, 1.0 / (s + 1), stamp + s, run, s) for s in range(20, 20 + rows) for k in KEYS),
    )
    last = 20 + rows - 1
    con.executemany(
        "INSERT OR REPLACE INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
        "VALUES (?, ?, ?, ?, 0, ?)",
        ((k, 1.0 / (last + 1), stamp + last, last, run) for k in KEYS),
    )
    con.commit()
    con.close()
    return str(run)


def ours(path: Path, run: str, repeat: int) -> tuple[int, float]:
    times = []
    count = 0
    for _ in range(repeat):
        start = time.perf_counter()
        loader = MlflowDbLoader(path, run)
        count = 0
        while True:
            batch = loader.load()
            count += len(batch.scalars)
            if not batch.more:
                break
        times.append(time.perf_counter() - start)
    return count, statistics.median(times)


def per_commit(path: Path, runs: int, commits: int = 9) -> tuple[float, float]:
    """Median seconds per commit: reading the runs it logged to, and reading every run."""
    from advisor.config import Settings
    from advisor.daemon.logs import LogSet

    con = sqlite3.connect(path)
    for r in range(runs):
        uuid = f"{r:032x}"
        con.execute(
            "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, "
            "user_id, status, start_time, end_time, source_version, lifecycle_stage, "
            "artifact_uri, experiment_id) VALUES (?, ?, 'UNKNOWN', '', '', 'me', 'FINISHED', "
            "?, NULL, '', 'active', '', 1)",
            (uuid, f"run-{r}", r),
        )
        con.executemany(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
            "VALUES (?, ?, ?, ?, ?, 0)",
            ((k, 1.0 / (s + 1), s, uuid, s) for s in range(50) for k in ("val_loss", "loss")),
        )
    con.commit()
    logs = LogSet([path.parent], Settings())
    logs.scan()
    keys = sorted(logs.files)
    for key in keys:
        logs.load(key)
    live = f"{0:032x}"
    changed: list[float] = []
    every: list[float] = []
    for i in range(2 * commits):  # alternately: the news only, every run
        con.execute(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
            "VALUES ('val_loss', 0.1, ?, ?, ?, 0)",
            (i, live, 1000 + i),
        )
        con.commit()
        start = time.perf_counter()
        for key in logs.keys_of(str(path)) if i % 2 == 0 else keys:
            logs.load(key)
        (changed if i % 2 == 0 else every).append(time.perf_counter() - start)
    con.close()
    return statistics.median(changed), statistics.median(every)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--mlflow-python", help="an interpreter with mlflow installed")
    parser.add_argument("--runs", type=int, default=500)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mlflow.db"
        run = build(path, args.rows)
        size = path.stat().st_size / 1e6
        count, seconds = ours(path, run, args.repeat)
        print(f"database {size:.0f} MB; one run, {count:,} points (median of {args.repeat})")
        print(f"MlflowDbLoader          {seconds:6.2f} s  {count / seconds:>12,.0f} points/s")
        if args.mlflow_python:
            out = subprocess.run(
                [args.mlflow_python, "-c", _REFERENCE, str(path), run, str(args.repeat), *KEYS],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            ref_count, ref_seconds = out.stdout.split()
            ref = float(ref_seconds)
            print(
                f"MlflowClient history    {ref:6.2f} s  {int(ref_count) / ref:>12,.0f} points/s"
                f"   ours is {ref / seconds:.1f}x faster"
            )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mlflow.db"
        build(path, 0)
        changed, every = per_commit(path, args.runs)
        print(
            f"watching {args.runs} runs, one logging: {changed * 1000:.1f} ms per commit "
            f"(reading every run: {every * 1000:.0f} ms, {every / changed:.0f}x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
