"""Runs are the directories holding logs, with the Keras, torch, HF and MLflow folds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from advisor.api import load_store
from advisor.config import Settings
from advisor.errors import InputError
from advisor.sources.discovery import discover
from advisor.sources.discovery import root_labels
from advisor.sources.discovery import unique_roots

pytest.importorskip("advisor.sources.csvlog")
pytest.importorskip("advisor.sources.textlog")
pytest.importorskip("advisor.sources.jsonl")


def touch(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def found(root: Path) -> list[tuple[str, str, str, str]]:
    return [(f.run, f.format, f.tag_prefix, f.path.name) for f in discover(root)]


def test_layouts_fold_into_runs(tmp_path: Path) -> None:
    """Keras train/validation, torch hparams and HF checkpoints fold into their parent."""
    touch(tmp_path / "keras/fit1/train/events.out.tfevents.1.host")
    touch(tmp_path / "keras/fit1/validation/events.out.tfevents.2.host")
    touch(tmp_path / "torch/a/events.out.tfevents.3.host")
    touch(tmp_path / "torch/a/1732540000.123/events.out.tfevents.4.host")
    touch(tmp_path / "lightning_logs/version_0/metrics.csv", "epoch,step,val_loss\n0,9,1.0\n")
    touch(tmp_path / "lightning_logs/version_0/hparams.yaml", "lr: 0.1\n")
    assert found(tmp_path) == [
        ("keras/fit1", "tfevents", "train/", "events.out.tfevents.1.host"),
        ("keras/fit1", "tfevents", "validation/", "events.out.tfevents.2.host"),
        ("lightning_logs/version_0", "lightning_hparams", "", "hparams.yaml"),
        ("lightning_logs/version_0", "csv", "", "metrics.csv"),
        ("torch/a", "tfevents", "", "events.out.tfevents.3.host"),
        ("torch/a", "tfevents", "", "events.out.tfevents.4.host"),
    ]


def test_newest_trainer_state_of_a_run_wins(tmp_path: Path) -> None:
    """Each HF checkpoint holds the whole history: only the newest is read."""
    old = touch(tmp_path / "out/checkpoint-500/trainer_state.json", "{}")
    new = touch(tmp_path / "out/checkpoint-1000/trainer_state.json", "{}")
    os.utime(old, ns=(1_000_000_000, 1_000_000_000))
    os.utime(new, ns=(2_000_000_000, 2_000_000_000))
    assert [(f.run, f.path) for f in discover(tmp_path)] == [("out", new)]


def test_mlflow_metric_files_are_tags_of_their_run(tmp_path: Path) -> None:
    """mlruns/<exp>/<run>/metrics/<key> is one tag; nested keys keep their slashes."""
    run = tmp_path / "mlruns/0/abc123"
    touch(run / "meta.yaml", "run_name: demo\n")
    touch(run / "metrics/val_loss", "1700000000000 0.5 1\n")
    touch(run / "metrics/train/loss", "1700000000000 0.7 1\n")
    touch(run / "params/lr", "0.1")
    got = [(f.run, f.format, f.tag, f.path.name) for f in discover(tmp_path)]
    assert sorted(got) == [("mlruns/0/abc123", "mlflow", "train/loss", "loss"),
                           ("mlruns/0/abc123", "mlflow", "val_loss", "val_loss"),
                           ("mlruns/0/abc123", "mlflow_params", "", "params")]  # fmt: skip


def test_text_logs_found_by_content_not_name(tmp_path: Path) -> None:
    """A Keras CSV named training.log is CSV; a stdout log is text; a README is nothing."""
    touch(tmp_path / "a/training.log", "epoch,loss,val_loss\n0,1.0,1.1\n1,0.9,1.0\n")
    touch(tmp_path / "b/stdout.log", "".join(
        f"Epoch [{i}/3] TrainLoss=1.{i} | ValLoss=1.{i}\n" for i in range(3)))  # fmt: skip
    touch(tmp_path / "c/notes.txt", "nothing to see here\n")
    touch(tmp_path / "d/model.pt", "epoch,loss\n0,1\n")
    assert [(f.run, f.format) for f in discover(tmp_path)] == [("a", "csv"), ("b", "text")]


def test_single_file_and_run_at_root(tmp_path: Path) -> None:
    """A file path is read alone; logs directly in the root form a run named after it."""
    f = touch(tmp_path / "exp7/events.out.tfevents.1.host")
    assert [(x.run, x.format) for x in discover(f)] == [("exp7", "tfevents")]
    assert [x.run for x in discover(tmp_path / "exp7")] == ["exp7"]


def test_missing_path_is_one_clear_error(tmp_path: Path) -> None:
    """A path that does not exist raises InputError naming it."""
    with pytest.raises(InputError, match="nope: no such file or directory"):
        discover(tmp_path / "nope")


def test_unreadable_file_given_directly(tmp_path: Path) -> None:
    """A file of no known format, given directly, is an error naming it."""
    f = touch(tmp_path / "weights.bin", "\x00\x01")
    with pytest.raises(InputError, match=r"weights\.bin: not a training log"):
        discover(f)


def test_fifo_is_skipped_not_opened(tmp_path: Path) -> None:
    """A named pipe in a log directory is passed over (opening it would block)."""
    touch(tmp_path / "a/training.log", "epoch,loss,val_loss\n0,1.0,1.1\n")
    os.mkfifo(tmp_path / "a/metrics.csv")
    assert [(f.run, f.path.name) for f in discover(tmp_path)] == [("a", "training.log")]


def test_fifo_given_directly_is_an_error(tmp_path: Path) -> None:
    """A named pipe given as the path is refused with one line, not opened."""
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(InputError, match="pipe: not a regular file or directory"):
        discover(tmp_path / "pipe")


def test_root_labels_tell_several_roots_apart() -> None:
    """One root needs no label; several get the fewest trailing parts that differ."""
    assert root_labels([Path("/x/runs")]) == [""]
    assert root_labels([Path("/a/runs"), Path("/b/runs")]) == ["a/runs", "b/runs"]
    assert root_labels([Path("/a/runs"), Path("/a/other")]) == ["runs", "other"]
    assert unique_roots([Path("/a/runs"), Path("/a/runs/"), Path("/b")]) == [
        Path("/a/runs"),
        Path("/b"),
    ]


def test_a_run_name_shared_by_two_roots_stays_two_runs(tmp_path: Path) -> None:
    """exp1 under a/runs and under b/runs are two runs, not one with both logs merged;
    a root given twice is read once."""
    for side, loss in (("a", 1.0), ("b", 2.0)):
        run = tmp_path / side / "runs" / "exp1"
        run.mkdir(parents=True)
        (run / "metrics.csv").write_text(
            f"epoch,loss,val_loss\n0,{loss},{loss}\n1,{loss},{loss}\n"
        )
    a, b = tmp_path / "a" / "runs", tmp_path / "b" / "runs"
    store = load_store([a, b, a], Settings())
    assert sorted(store.runs()) == ["a/runs/exp1", "b/runs/exp1"]
    assert [len(store.series(r, "val_loss")) for r in sorted(store.runs())] == [2, 2]
    solo = load_store([a / "exp1", b / "exp1"], Settings())
    assert sorted(solo.runs()) == ["a/runs/exp1", "b/runs/exp1"]
