"""A Ray Tune trial directory, as Ray Tune 2.60 wrote it (fixtures/ray, see
fixtures/gen_ray.py): progress.csv, result.json, params.json and tensorboardX's file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from loader_helpers import replay_diagnoses

from advisor.api import load_store
from advisor.api import read_scalars
from advisor.config import Settings
from advisor.sources.discovery import CSV
from advisor.sources.discovery import JSON_CONFIG
from advisor.sources.discovery import TFEVENTS
from advisor.sources.discovery import discover

ROOT = Path(__file__).resolve().parents[1] / "fixtures" / "ray"
TRIAL = ROOT / "trial_lr=0.1000"


def test_a_trial_is_a_run_with_its_params() -> None:
    found = sorted((f.run, f.format, f.path.name[:18]) for f in discover(ROOT))
    assert found == [
        ("trial_lr=0.1000", CSV, "progress.csv"),
        ("trial_lr=0.1000", JSON_CONFIG, "params.json"),
        ("trial_lr=0.1000", TFEVENTS, "events.out.tfevent"),
    ]  # result.json holds progress.csv's numbers again: not read
    rc = load_store([ROOT], Settings()).curves("trial_lr=0.1000", Settings().roles)
    assert dict(rc.hparams) == {
        "lr": 0.1, "momentum": 0.9, "batch_size": 128.0, "epochs": 20.0, "optimizer.name": "sgd",
    }  # fmt: skip


def test_progress_csv_is_stepped_by_training_iteration_as_the_event_file_is() -> None:
    """Both feed one run: a CSV stepped by its row index (0-based) would sit one step
    off the event file's ``ray/tune/`` tags (``training_iteration``, from 1)."""
    with (TRIAL / "progress.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    frame = read_scalars(ROOT)
    csv_val = frame[frame.tag == "val_loss"]
    tb_val = frame[frame.tag == "ray/tune/val_loss"]
    assert list(csv_val.step) == [int(r["training_iteration"]) for r in rows]
    assert list(csv_val.value) == [float(r["val_loss"]) for r in rows]
    assert list(tb_val.step) == list(csv_val.step)
    assert np.allclose(tb_val.value, csv_val.value, rtol=1e-6)  # float32 in the event file
    first = json.loads((TRIAL / "result.json").read_text().splitlines()[0])
    assert first["training_iteration"] == 1 and first["val_loss"] == csv_val.value.iloc[0]


def test_replay_diagnoses_the_trial() -> None:
    assert replay_diagnoses(ROOT) == {"trial_lr=0.1000": "overfitting"}
