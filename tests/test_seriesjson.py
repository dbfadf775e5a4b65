"""JSON files of metric series: Sacred's metrics.json (fixtures/sacred, written by
Sacred 0.8.7: see fixtures/gen_sacred.py) and a Keras history saved with json.dump."""

from __future__ import annotations

import json
import math
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

from loader_helpers import points
from loader_helpers import replay_diagnoses

from advisor.api import load_store
from advisor.config import Settings
from advisor.model import Role
from advisor.sources.discovery import JSON_CONFIG
from advisor.sources.discovery import SERIES_JSON
from advisor.sources.discovery import discover
from advisor.sources.seriesjson import SeriesJsonLoader

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SACRED_RUN = FIXTURES / "sacred" / "runs" / "1"
KERAS = FIXTURES / "json" / "keras_history" / "history.json"


def sacred_dump(path: Path, metrics: dict[str, Any]) -> None:
    """What Sacred's FileStorageObserver.save_json writes."""
    with path.open("w") as fh:
        json.dump(metrics, fh, sort_keys=True, indent=2)


# -- Sacred ---------------------------------------------------------------------------------


def test_a_sacred_run_is_its_metrics_and_config_not_its_captured_stdout() -> None:
    found = discover(FIXTURES / "sacred")
    assert [(f.run, f.format, f.path.name) for f in found] == [
        ("runs/1", JSON_CONFIG, "config.json"),
        ("runs/1", SERIES_JSON, "metrics.json"),
    ]
    assert "val_loss=" in (SACRED_RUN / "cout.txt").read_text()  # a text log, if read


def test_sacred_points_are_the_logged_scalars_at_their_steps_and_utc_times() -> None:
    saved = json.loads((SACRED_RUN / "metrics.json").read_text())
    batch = SeriesJsonLoader(SACRED_RUN / "metrics.json").load()
    assert batch.problems == ()
    got: dict[str, list[tuple[int, str, float]]] = {}
    for tag, step, wall, value in points(batch):
        got.setdefault(tag, []).append((step, wall, float(value)))
    assert sorted(got) == ["training.loss", "validation.accuracy", "validation.loss"]
    for name, series in saved.items():
        stamps = [
            repr(datetime.fromisoformat(t).replace(tzinfo=UTC).timestamp())
            for t in series["timestamps"]
        ]
        assert got[name] == list(zip(series["steps"], stamps, series["values"], strict=True))


def test_sacred_config_and_roles_reach_the_run() -> None:
    rc = load_store([FIXTURES / "sacred"], Settings()).curves("runs/1", Settings().roles)
    roles = {tag: c.role.role for tag, c in rc.curves.items()}
    assert roles == {
        "training.loss": Role.TRAIN_LOSS,
        "validation.loss": Role.VAL_LOSS,
        "validation.accuracy": Role.VAL_METRIC,
    }
    config = json.loads((SACRED_RUN / "config.json").read_text())
    assert dict(rc.hparams) == {
        "lr": 0.1, "momentum": 0.9, "weight_decay": 0.0, "batch_size": 128.0, "epochs": 20.0,
        "optimizer.name": "sgd", "optimizer.nesterov": True, "seed": float(config["seed"]),
    }  # fmt: skip


def test_each_heartbeat_gives_the_new_points_once(tmp_path: Path) -> None:
    """Sacred rewrites metrics.json at each heartbeat, the series grown; a version cut
    short (caught mid-write) is waited for, and reported when read as final."""
    path = tmp_path / "metrics.json"
    loader = SeriesJsonLoader(path)
    series = {"validation.loss": {"steps": [], "timestamps": [], "values": []}}
    seen: list[tuple[str, int, str, str]] = []
    for beat in range(3):
        for step in range(beat * 4, beat * 4 + 4):
            s = series["validation.loss"]
            s["steps"].append(step)
            s["timestamps"].append(f"2026-11-26T06:00:{step:02d}.000000")
            s["values"].append(1.0 / (step + 1))
        sacred_dump(path, series)
        batch = loader.load()
        assert not batch.reset and batch.problems == ()
        seen += points(batch)
    assert [p[1] for p in seen] == list(range(12))
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    assert loader.load().problems == ()
    [problem] = loader.load(final=True).problems
    assert problem.message.startswith("not valid JSON")


def test_a_rewritten_history_resets_the_run(tmp_path: Path) -> None:
    """A run restarted into the same file: its series start again, different."""
    path = tmp_path / "metrics.json"
    sacred_dump(path, {"loss": {"steps": [0, 1, 2], "values": [3.0, 2.0, 1.0]}})
    loader = SeriesJsonLoader(path)
    assert len(points(loader.load())) == 3
    sacred_dump(path, {"loss": {"steps": [0, 1], "values": [3.5, 2.5]}})
    batch = loader.load()
    assert batch.reset and [(p[1], p[3]) for p in points(batch)] == [(0, "3.5"), (1, "2.5")]


def test_what_is_not_a_series_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text('{"loss": 0.5}')
    [problem] = SeriesJsonLoader(path).load(final=True).problems
    assert problem.message == "'loss' is not a series (a list, or an object with 'values')"


# -- Keras history ----------------------------------------------------------------------------


def test_a_saved_keras_history_is_one_point_per_epoch() -> None:
    saved = json.loads(KERAS.read_text())
    batch = SeriesJsonLoader(KERAS).load()
    by_tag: dict[str, list[tuple[int, float]]] = {}
    for tag, step, wall, value in points(batch):
        assert math.isnan(float(wall))
        by_tag.setdefault(tag, []).append((step, float(value)))
    assert by_tag == {k: list(enumerate(v)) for k, v in saved.items()}


def test_only_json_shaped_like_a_history_is_taken(tmp_path: Path) -> None:
    """A config, a list of numbers under names that are no metrics, and a history with
    a null (skipped) and a NaN (kept)."""
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "config.json").write_text('{"lr": 0.1, "layers": [64, 64]}')
    (tmp_path / "a" / "shape.json").write_text('{"dims": [3, 224, 224]}')
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "hist.json").write_text('{"loss": [1.0, NaN, null, 0.5]}')
    found = discover(tmp_path)
    assert [(f.run, f.format) for f in found] == [("b", SERIES_JSON)]
    values = [(p[1], p[3]) for p in points(SeriesJsonLoader(found[0].path).load())]
    assert values == [(0, "1.0"), (1, "nan"), (3, "0.5")]


def test_replay_diagnoses_both() -> None:
    assert replay_diagnoses(FIXTURES / "sacred", KERAS.parent) == {
        "sacred/runs/1": "overfitting",
        "keras_history": "overfitting",
    }


def test_a_config_that_is_not_json_is_reported_not_passed_over(tmp_path: Path) -> None:
    """A config cut short is waited for while it changes, reported when read as final
    (or once unchanged), and read once whole."""
    from advisor.sources.seriesjson import JsonConfigLoader

    path = tmp_path / "config.json"
    path.write_text('{"lr": 0.1, "optimizer": {"na')
    loader = JsonConfigLoader(path)
    assert loader.load().problems == ()
    [problem] = loader.load(final=True).problems
    assert problem.message.startswith("not valid JSON")
    path.write_text('{"lr": 0.1, "optimizer": {"name": "sgd"}, "layers": [64, 64]}')
    batch = loader.load()
    assert batch.problems == () and dict(batch.hparams) == {"lr": 0.1, "optimizer.name": "sgd"}
    path.write_text("[1, 2]")
    assert [p.message for p in loader.load(final=True).problems] == ["not a JSON object"]
