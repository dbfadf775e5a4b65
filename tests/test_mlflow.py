"""MLflow file store: metric files, params and the run name."""

from __future__ import annotations

import math
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from loader_helpers import FAST
from loader_helpers import append_in_chunks
from loader_helpers import points

from advisor.sources.mlflow import MlflowMetricLoader
from advisor.sources.mlflow import read_mlflow_params
from advisor.sources.mlflow import run_name

META = """artifact_uri: file:///tmp/mlruns/0/0123abcd/artifacts
end_time: null
entry_point_name: ''
experiment_id: '0'
lifecycle_stage: active
run_id: 0123abcd
run_name: bright-fox-123
run_uuid: 0123abcd
source_type: 4
start_time: 1700000000000
status: 1
tags: []
user_id: root
"""


def make_run(root: Path) -> Path:
    """An MLflow run directory as FileStore lays it out."""
    run = root / "mlruns" / "0" / "0123abcd"
    (run / "metrics").mkdir(parents=True)
    (run / "meta.yaml").write_text(META)
    return run


def log_metric(run: Path, key: str, value: float, timestamp: int, step: int) -> None:
    """What FileStore.log_metric appends."""
    path = run / "metrics" / key
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fh.write(f"{timestamp} {value} {step}\n")


def test_metric_file_points(tmp_path: Path) -> None:
    """Each line is a point: wall time from milliseconds, nan and inf kept."""
    run = make_run(tmp_path)
    for step, value in enumerate([1.5, math.nan, math.inf, -0.25]):
        log_metric(run, "val/loss", value, 1700000000000 + step * 250, step * 100)
    loader = MlflowMetricLoader(run / "metrics" / "val" / "loss", "val/loss")
    assert points(loader.load()) == [
        ("val/loss", 0, "1700000000.0", "1.5"),
        ("val/loss", 100, "1700000000.25", "nan"),
        ("val/loss", 200, "1700000000.5", "inf"),
        ("val/loss", 300, "1700000000.75", "-0.25"),
    ]
    log_metric(run, "val/loss", 0.125, 1700000001000, 400)
    assert points(loader.load()) == [("val/loss", 400, "1700000001.0", "0.125")]
    assert MlflowMetricLoader(run / "metrics" / "val" / "loss").tag == "val/loss"


def test_old_two_field_lines_and_bad_lines(tmp_path: Path) -> None:
    """Pre-1.0 lines without a step are step 0; malformed lines are reported by number."""
    run = make_run(tmp_path)
    path = run / "metrics" / "loss"
    path.write_text("1700000000000 0.5\n\nabc 1 2\n1700000000000 1 2 3\n1700000001000 0.25 7\n")
    batch = MlflowMetricLoader(path, "loss").load()
    assert points(batch) == [
        ("loss", 0, "1700000000.0", "0.5"),
        ("loss", 7, "1700000001.0", "0.25"),
    ]
    assert [str(p) for p in batch.problems] == [
        f"{path}: line 3: not 'timestamp value step'; skipped",
        f"{path}: line 4: not 'timestamp value step'; skipped",
    ]


TEXT = b"".join(
    f"{1700000000000 + i} {v} {i}\n".encode() for i, v in enumerate([0.5, 1e-08, -3.25e5, 7, 0.1])
)


@FAST
@given(cuts=st.lists(st.integers(0, len(TEXT)), max_size=10))
def test_appending_in_chunks_equals_reading_whole(tmp_path: Path, cuts: list[int]) -> None:
    """Appending in chunks of any size (down to one byte) gives the same points."""
    path = tmp_path / "loss"
    seen = append_in_chunks(lambda p: MlflowMetricLoader(p, "loss"), path, TEXT, cuts)
    assert seen == points(MlflowMetricLoader(path, "loss").load()) and len(seen) == 5


@FAST
@given(data=st.binary(max_size=300))
def test_damaged_input_never_raises(tmp_path: Path, data: bytes) -> None:
    """Random bytes give problems naming a line, never an exception."""
    path = tmp_path / "loss"
    path.write_bytes(TEXT + data + b"\n")
    batch = MlflowMetricLoader(path, "loss", max_line=100).load()
    assert len(batch.scalars) >= 5
    assert all(p.position.startswith("line ") for p in batch.problems)


def test_params_and_run_name(tmp_path: Path) -> None:
    """Params are files (numbers parsed, keys with /); the name comes from meta.yaml."""
    run = make_run(tmp_path)
    (run / "params" / "optimizer").mkdir(parents=True)
    for key, value in {
        "lr": "0.001",
        "batch_size": "64",
        "model": "resnet18",
        "optimizer/name": "adam",
        "use_amp": "True",
        "seed_list": "[1, 2]",
    }.items():
        (run / "params" / key).write_text(value)  # FileStore writes no newline
    assert read_mlflow_params(run) == {
        "batch_size": 64.0,
        "lr": 0.001,
        "model": "resnet18",
        "optimizer/name": "adam",
        "seed_list": "[1, 2]",
        "use_amp": True,
    }
    assert run_name(run) == "bright-fox-123"
    (run / "meta.yaml").write_text("run_id: x\n")
    (run / "tags").mkdir()
    (run / "tags" / "mlflow.runName").write_text("legacy-name")
    assert run_name(run) == "legacy-name"
    assert run_name(tmp_path) is None and read_mlflow_params(tmp_path) == {}
