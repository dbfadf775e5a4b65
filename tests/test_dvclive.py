"""DVCLive's layout (what dvclive 3.49.1 wrote: fixtures/dvclive, see
fixtures/gen_dvclive.py), and tags of folded sub-directories in every format."""

from __future__ import annotations

import csv
import math
from pathlib import Path

from loader_helpers import replay_diagnoses

from advisor.api import load_store
from advisor.api import read_scalars
from advisor.config import Settings
from advisor.model import Role
from advisor.sources.discovery import discover

ROOT = Path(__file__).resolve().parents[1] / "fixtures" / "dvclive"
METRICS = ROOT / "dvclive" / "plots" / "metrics"


def tsv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_each_metric_file_is_a_tag_of_the_run_above_plots() -> None:
    """``plots/metrics/train/loss.tsv`` and ``plots/metrics/eval/loss.tsv`` both hold a
    column ``loss``: read as ``train/loss`` and ``eval/loss`` of the run ``dvclive``."""
    found = discover(ROOT)
    assert sorted((f.run, f.path.name, f.tag_prefix) for f in found) == [
        ("dvclive", "acc.tsv", "eval/"),
        ("dvclive", "loss.tsv", "eval/"),
        ("dvclive", "loss.tsv", "train/"),
        ("dvclive", "params.yaml", ""),
    ]
    store = load_store([ROOT], Settings())
    rc = store.curves("dvclive", Settings().roles)
    roles = {tag: c.role.role for tag, c in rc.curves.items()}
    assert roles == {
        "train/loss": Role.TRAIN_LOSS, "eval/loss": Role.VAL_LOSS, "eval/acc": Role.VAL_METRIC,
    }  # fmt: skip
    assert dict(rc.hparams) == {
        "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0, "batch_size": 128.0, "epochs": 20.0,
        "optimizer.name": "sgd", "optimizer.nesterov": True,
    }  # fmt: skip


def test_values_steps_and_times_are_those_of_the_files() -> None:
    frame = read_scalars(ROOT)
    for rel, tag in (("eval/loss.tsv", "eval/loss"), ("train/loss.tsv", "train/loss")):
        rows = tsv(METRICS / rel)
        got = frame[frame.tag == tag]
        assert list(got.step) == [int(r["step"]) for r in rows]
        assert list(got.value) == [float(r["loss"]) for r in rows]
        if "timestamp" in rows[0]:
            assert list(got.wall_time) == [int(r["timestamp"]) / 1000 for r in rows]
        else:
            assert all(math.isnan(w) for w in got.wall_time)


def test_replay_diagnoses_the_run() -> None:
    assert replay_diagnoses(ROOT) == {"dvclive": "overfitting"}


def test_csv_logs_in_keras_style_sub_directories_keep_their_tags_apart(tmp_path: Path) -> None:
    """``run/train/log.csv`` and ``run/validation/log.csv`` fold into ``run``, and their
    ``loss`` columns are two tags (they were one, the two curves mixed)."""
    for sub, base in (("train", 1.0), ("validation", 2.0)):
        (tmp_path / "run" / sub).mkdir(parents=True)
        lines = "".join(f"{e},{base / (e + 1)}\n" for e in range(5))
        (tmp_path / "run" / sub / "log.csv").write_text("epoch,loss\n" + lines)
    frame = read_scalars(tmp_path)
    assert sorted(set(zip(frame.run, frame.tag, strict=True))) == [
        ("run", "train/epoch"), ("run", "train/loss"),
        ("run", "validation/epoch"), ("run", "validation/loss"),
    ]  # fmt: skip
    val = frame[frame.tag == "validation/loss"]
    assert list(val.value) == [2.0 / (e + 1) for e in range(5)]
    assert set(frame[frame.tag == "validation/loss"].role) == {"val_loss"}


def test_a_lone_sub_directory_of_that_name_prefixes_nothing(tmp_path: Path) -> None:
    """YOLO writes ``runs/detect/train/results.csv`` (train and val columns in one
    file), and a run may be named ``test``: with no sibling to keep apart, the columns
    keep their names (``test/loss`` would be a validation loss by its words)."""
    (tmp_path / "runs" / "test").mkdir(parents=True)
    lines = "".join(f"{e},{1.0 / (e + 1)},{1.2 / (e + 1)}\n" for e in range(5))
    (tmp_path / "runs" / "test" / "log.csv").write_text("epoch,loss,val_loss\n" + lines)
    frame = read_scalars(tmp_path)
    assert set(zip(frame.tag, frame.role, strict=True)) == {
        ("epoch", "epoch"), ("loss", "train_loss"), ("val_loss", "val_loss"),
    }  # fmt: skip
