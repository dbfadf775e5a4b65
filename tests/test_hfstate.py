"""HfStateLoader: Hugging Face trainer_state.json, rewritten whole and not atomically."""

from __future__ import annotations

import builtins
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from advisor.errors import InputError
from advisor.model import Batch
from advisor.sources.hfstate import HfStateLoader

Point = tuple[str, int, str]
FAST = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def points(batch: Batch) -> list[Point]:
    s = batch.scalars
    assert all(math.isnan(w) for w in s.wall_time)
    return [
        (s.tags[int(t)], int(st_), repr(float(v)))
        for t, st_, v in zip(s.tag_index, s.step, s.value, strict=True)
    ]


def entry(step: int) -> dict[str, Any]:
    """A log_history entry as the Trainer logs it (training or evaluation)."""
    if step % 20 == 0:
        return {"epoch": step / 100, "eval_loss": 2.0 / step, "eval_runtime": 1.5, "step": step}
    return {"epoch": step / 100, "grad_norm": 1.25, "learning_rate": 5e-05, "loss": 1.0 / step,
            "step": step}  # fmt: skip


def state_text(history: list[Any], **extra: Any) -> str:
    """What TrainerState.save_to_json writes."""
    state = {
        "best_metric": None, "epoch": len(history) / 10,
        "eval_steps": 20, "global_step": len(history) * 10,
        "is_hyper_param_search": False, "is_local_process_zero": True, "log_history": history,
        "logging_steps": 10, "max_steps": 1000, "num_train_epochs": 3, "save_steps": 500,
        "stateful_callbacks": {}, "total_flos": 0, "train_batch_size": 8, "trial_name": None,
        **extra,
    }  # fmt: skip
    return json.dumps(state, indent=2, sort_keys=True) + "\n"


def save(path: Path, text: str) -> None:
    """Rewrite in place, as open(path, "w") does: same inode, truncated first."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def test_emits_only_new_entries_and_hparams(tmp_path: Path) -> None:
    """Each version adds the entries after the last emitted; hparams come once."""
    path = tmp_path / "trainer_state.json"
    save(path, state_text([entry(10), entry(20)]))
    loader = HfStateLoader(path)
    first = loader.load()
    assert points(first) == [
        ("epoch", 10, "0.1"), ("grad_norm", 10, "1.25"), ("learning_rate", 10, "5e-05"),
        ("loss", 10, "0.1"), ("epoch", 20, "0.2"), ("eval_loss", 20, "0.1"),
        ("eval_runtime", 20, "1.5"),
    ]  # fmt: skip
    assert first.hparams == {
        "batch_size": 8.0, "eval_steps": 20.0, "logging_steps": 10.0, "max_steps": 1000.0,
        "num_train_epochs": 3.0, "save_steps": 500.0,
    }  # fmt: skip
    assert not first.reset and first.problems == ()
    save(path, state_text([entry(10), entry(20), entry(30)]))
    second = loader.load()
    assert [s for _, s, _ in points(second)] == [30] * 4
    assert second.hparams == {} and not second.reset
    assert len(loader.load().scalars) == 0


def test_truncated_version_waited_for_silently(tmp_path: Path) -> None:
    """A version seen mid-write emits nothing and reports nothing; the full one is read."""
    path = tmp_path / "trainer_state.json"
    save(path, state_text([entry(10)]))
    loader = HfStateLoader(path)
    loader.load()
    full = state_text([entry(10), entry(20), entry(30)])
    for cut in (0, 1, len(full) // 2, len(full) - 3):
        save(path, full[:cut])
        batch = loader.load()
        assert len(batch.scalars) == 0 and batch.problems == () and not batch.reset
    save(path, full)
    batch = loader.load()
    assert [s for _, s, _ in points(batch)] == [20, 20, 20, 30, 30, 30, 30]
    assert not batch.reset


def test_unparsable_version_left_unchanged_is_reported_once(tmp_path: Path) -> None:
    """A broken file still broken, and unchanged, at a later call is reported once."""
    path = tmp_path / "trainer_state.json"
    save(path, state_text([entry(10)])[:50])
    loader = HfStateLoader(path)
    assert loader.load().problems == ()
    problems = loader.load().problems
    assert len(problems) == 1
    assert str(problems[0]).startswith(f"{path}: line ")
    assert "not valid JSON" in problems[0].message
    assert loader.load().problems == ()
    save(path, '{"log_history": 3}\n')
    assert loader.load().problems == ()
    assert [str(p) for p in loader.load().problems] == [f"{path}: line 1: no log_history list"]


def test_unparsable_file_is_reported_at_once_when_final(tmp_path: Path) -> None:
    """Read as final (replayed logs), a broken file is not being rewritten: reported at
    the first call."""
    path = tmp_path / "trainer_state.json"
    save(path, state_text([entry(10)])[:50])
    problems = HfStateLoader(path).load(final=True).problems
    assert len(problems) == 1 and "not valid JSON" in problems[0].message


def test_restart_rewrites_history_resets(tmp_path: Path) -> None:
    """Resuming from an earlier checkpoint rewrites a different history: reset, all again."""
    path = tmp_path / "trainer_state.json"
    save(path, state_text([entry(10), entry(20), entry(30)]))
    loader = HfStateLoader(path)
    loader.load()
    resumed = [entry(10), entry(20), {**entry(30), "loss": 0.5}]
    save(path, state_text(resumed))
    batch = loader.load()
    assert batch.reset and batch.hparams
    assert [s for _, s, _ in points(batch)] == [10] * 4 + [20] * 3 + [30] * 4
    save(path, state_text([entry(10)]))
    batch = loader.load()
    assert batch.reset and [s for _, s, _ in points(batch)] == [10] * 4


def test_nan_infinity_and_odd_entries(tmp_path: Path) -> None:
    """NaN/Infinity values are points, also spelled as strings by a strict JSON writer;
    other strings are not; entries without a step are skipped and reported."""
    path = tmp_path / "trainer_state.json"
    history = [
        {"loss": math.nan, "step": 1, "flag": True, "name": "x"},
        {"grad_norm": math.inf, "step": 2.0, "eval_loss": "-Infinity"},
        {"loss": 3.0},
        "garbage",
    ]
    save(path, state_text(history))  # json.dumps writes NaN and Infinity
    batch = HfStateLoader(path).load()
    assert points(batch) == [("loss", 1, "nan"), ("eval_loss", 2, "-inf"), ("grad_norm", 2, "inf")]
    assert [str(p) for p in batch.problems] == [
        f"{path}: log_history[2]: no numeric step; skipped",
        f"{path}: log_history[3]: no numeric step; skipped",
    ]


def test_unchanged_file_is_not_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An idle poll is one stat."""
    path = tmp_path / "trainer_state.json"
    save(path, state_text([entry(10)]))
    loader = HfStateLoader(path)
    loader.load()

    def no_open(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("opened")

    monkeypatch.setattr(builtins, "open", no_open)
    assert len(loader.load().scalars) == 0


def test_permission_denied_is_one_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unreadable file raises InputError naming it."""
    path = tmp_path / "trainer_state.json"
    save(path, state_text([entry(10)]))

    def denied(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(builtins, "open", denied)
    with pytest.raises(InputError, match=r"trainer_state\.json: cannot read: Permission denied$"):
        HfStateLoader(path).load()


VERSIONS = [state_text([entry(s) for s in range(10, top + 1, 10)]) for top in (10, 30, 40, 70)]


@FAST
@given(seen_cuts=st.lists(st.tuples(st.integers(0, 3), st.floats(0, 1)), max_size=10))
def test_any_sequence_of_partial_versions_ends_exact(
    tmp_path: Path, seen_cuts: list[tuple[int, float]]
) -> None:
    """Whatever partial writes are seen on the way, the points end equal to the last version."""
    path = tmp_path / "trainer_state.json"
    save(path, "")
    loader = HfStateLoader(path)
    seen: list[Point] = []

    def poll() -> None:
        batch = loader.load()
        if batch.reset:
            seen.clear()
        seen.extend(points(batch))

    for version, fraction in sorted(seen_cuts):
        text = VERSIONS[version]
        save(path, text[: int(len(text) * fraction)])
        poll()
        save(path, text)
        poll()
    save(path, VERSIONS[-1])
    poll()
    whole = tmp_path / "whole.json"
    save(whole, VERSIONS[-1])
    assert seen == points(HfStateLoader(whole).load())


@FAST
@given(data=st.binary(max_size=300))
def test_damaged_input_never_raises(tmp_path: Path, data: bytes) -> None:
    """Random bytes give at most one problem, naming the file, never an exception."""
    path = tmp_path / "trainer_state.json"
    path.write_bytes(data)
    loader = HfStateLoader(path)
    problems = loader.load().problems + loader.load().problems + loader.load().problems
    assert len(problems) <= 1
    assert all(p.path == str(path) for p in problems)


def test_too_large_file_reported(tmp_path: Path) -> None:
    """A file past max_bytes is reported, not read."""
    path = tmp_path / "trainer_state.json"
    save(path, state_text([entry(s) for s in range(10, 2000, 10)]))
    batch = HfStateLoader(path, max_bytes=1 << 10).load()
    assert len(batch.scalars) == 0 and "not read" in batch.problems[0].message
