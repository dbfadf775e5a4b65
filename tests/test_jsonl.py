"""JsonlLoader: one JSON metrics object per line."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from loader_helpers import FAST
from loader_helpers import Point
from loader_helpers import append_in_chunks
from loader_helpers import drain
from loader_helpers import points

from advisor.sources.jsonl import JsonlLoader
from advisor.sources.jsonl import sniff


def write_lines(path: Path, records: list[dict[str, Any]]) -> None:
    with open(path, "a") as fh:
        for record in records:
            fh.write(json.dumps(record) + "\n")


def test_steps_tags_and_wall_time(tmp_path: Path) -> None:
    """Step keys by priority, nested objects flattened with /, booleans and strings ignored;
    once steps are logged, a metric line without one is reported, not given its index
    (index 4 here, which could be a logged step)."""
    path = tmp_path / "metrics.jsonl"
    write_lines(
        path,
        [
            {"step": 10, "epoch": 0.5, "loss": 1.5, "timestamp": 1700000000.25, "tag": "x"},
            {"global_step": 20, "val": {"loss": 1.25, "acc": {"top1": 0.5}}, "done": True},
            {"iteration": 30, "loss": math.nan, "time": 1700000000123},  # milliseconds
            {"epoch": 3, "val_loss": math.inf, "lr": [1, 2]},
            {"note": "no metrics here"},
            {"loss": -math.inf},
        ],
    )
    batch = JsonlLoader(path).load()
    assert [str(p) for p in batch.problems] == [f"{path}: line 6: no numeric step; skipped"]
    assert points(batch) == [
        ("epoch", 10, "1700000000.25", "0.5"),
        ("loss", 10, "1700000000.25", "1.5"),
        ("val/loss", 20, "nan", "1.25"),
        ("val/acc/top1", 20, "nan", "0.5"),
        ("loss", 30, "1700000000.123", "nan"),
        ("epoch", 3, "nan", "3.0"),
        ("val_loss", 3, "nan", "inf"),
    ]
    path.write_text('{"loss": 2}\n{"loss": 1}\n{"step": 9, "loss": 0.5}\n')
    batch = JsonlLoader(path).load()  # no step logged at first: indices, then the step
    assert batch.problems == ()
    assert [p[:2] for p in points(batch)] == [("loss", 0), ("loss", 1), ("loss", 9)]


def test_non_finite_strings_are_numbers_and_other_text_is_reported(tmp_path: Path) -> None:
    """Writers without NaN in JSON spell it as a string: kept as NaN/inf (instability
    evidence). Other text in a key that held a number is reported, once per line; under a
    metric's name that held none yet, once per key; elsewhere, and null, in silence."""
    path = tmp_path / "log.jsonl"
    write_lines(
        path,
        [
            {"step": 1, "val_loss": 1.0, "status": "ok", "acc": "pending"},
            {"step": 2, "val_loss": "NaN", "acc": 0.5, "top5": "later"},
            {"step": 3, "val_loss": "abc", "train": {"loss": " -Infinity "}, "top5": "x"},
            {"step": 4, "val_loss": None, "acc": "n/a", "status": "done"},
            {"step": 5, "val_loss": "inf", "acc": "a" * 30},
        ],
    )
    batch = JsonlLoader(path).load()
    assert [str(p) for p in batch.problems] == [
        f"{path}: line 1: acc 'pending' is not a number; skipped",
        f"{path}: line 2: top5 'later' is not a number; skipped",
        f"{path}: line 3: val_loss 'abc' is not a number; skipped",
        f"{path}: line 4: acc 'n/a' is not a number; skipped",
        f"{path}: line 5: acc 'aaaaaaaaaaaaaaaaa...' is not a number; skipped",
    ]
    assert points(batch) == [
        ("val_loss", 1, "nan", "1.0"),
        ("val_loss", 2, "nan", "nan"),
        ("acc", 2, "nan", "0.5"),
        ("train/loss", 3, "nan", "-inf"),
        ("val_loss", 5, "nan", "inf"),
    ]
    assert sniff(b'{"step": 1, "loss": "NaN"}\n')


def test_numbers_quoted_by_default_str_are_read(tmp_path: Path) -> None:
    """``json.dumps(..., default=str)`` is the usual way past numpy scalars, which the
    json module cannot write: it quotes them (``"0.51"``). Steps, times and metrics so
    quoted are numbers, as pandas' ``read_json`` takes them; a torch tensor's text is
    not, and a log holding only such values says why it yields nothing."""
    path = tmp_path / "metrics.jsonl"
    with open(path, "w") as fh:
        for epoch in range(3):
            record = {
                "epoch": np.int64(epoch),
                "timestamp": np.float64(1.7e9 + epoch),  # a float subclass: written bare
                "val_loss": np.float32(1.0 / (epoch + 1)),
                "lr": np.float32(0.1),
            }
            fh.write(json.dumps(record, default=str) + "\n")
    assert '"epoch": "0"' in path.read_text()
    assert sniff(path.read_bytes())
    batch = JsonlLoader(path).load()
    assert batch.problems == ()
    got = {(tag, step): float(value) for tag, step, _, value in points(batch)}
    assert got[("val_loss", 2)] == 0.33333334  # as written: float32's shortest repr
    assert got[("lr", 1)] == 0.1
    assert sorted(step for tag, step in got if tag == "val_loss") == [0, 1, 2]
    assert {wall for _, _, wall, _ in points(batch)} == {repr(1.7e9 + e) for e in range(3)}

    tensors = tmp_path / "tensors.jsonl"  # loss.detach() forgot .item(): default=str
    tensors.write_text(
        "".join(
            json.dumps({"epoch": e, "loss": "tensor(0.5100, device='cuda:0')", "f1": text}) + "\n"
            for e, text in enumerate(["tensor([0.5, 0.6])", "[0.51]", "tensor(0.7)"])
        )
    )
    batch = JsonlLoader(tensors).load()
    assert [p for p in points(batch) if p[0] != "epoch"] == [
        ("loss", 0, "nan", "0.51"),
        ("loss", 1, "nan", "0.51"),
        ("loss", 2, "nan", "0.51"),
        ("f1", 2, "nan", "0.7"),
    ]
    assert [str(p) for p in batch.problems] == [
        f"{tensors}: line 1: f1 'tensor([0.5, 0.6])' is not a number; skipped"
    ]


def test_a_phase_key_names_the_tags_of_its_line(tmp_path: Path) -> None:
    """``{"epoch": 1, "split": "val", "loss": ...}``: each phase's metrics are tags of
    their own (``val/loss``); the step, the time and ``epoch`` are not prefixed."""
    path = tmp_path / "metrics.jsonl"
    write_lines(
        path,
        [
            {"epoch": 0, "split": "train", "loss": 1.0, "opt": {"lr": 0.1}},
            {"epoch": 0, "split": "val", "loss": 1.1, "time": 1.7e9},
            {"epoch": 1, "mode": "val", "loss": 0.9},
            {"epoch": 2, "split": "a phase? no", "loss": 0.8},
        ],
    )
    batch = JsonlLoader(path).load()
    assert batch.problems == ()
    assert [(t, s, w, v) for t, s, w, v in points(batch) if t != "epoch"] == [
        ("train/loss", 0, "nan", "1.0"),
        ("train/opt/lr", 0, "nan", "0.1"),
        ("val/loss", 0, repr(1.7e9), "1.1"),
        ("val/loss", 1, "nan", "0.9"),
        ("loss", 2, "nan", "0.8"),
    ]
    assert [s for t, s, _, _ in points(batch) if t == "epoch"] == [0, 0, 1, 2]


def test_invalid_lines_reported_once_and_skipped(tmp_path: Path) -> None:
    """A bad complete line is reported with its number once, and reading goes on."""
    path = tmp_path / "log.jsonl"
    path.write_text(
        '{"step": 1, "loss": 1}\n{"step": 2, "loss": \n[1, 2]\n\n{"step": 3, "loss": 3}\n'
    )
    loader = JsonlLoader(path)
    batch = loader.load()
    assert [str(p) for p in batch.problems] == [
        f"{path}: line 2: not valid JSON; skipped",
        f"{path}: line 3: not a JSON object; skipped",
    ]
    assert [s for _, s, _, _ in points(batch)] == [1, 3]
    with open(path, "a") as fh:
        fh.write('{"step": 4, "loss": 4}\n')
    batch = loader.load()
    assert batch.problems == () and [s for _, s, _, _ in points(batch)] == [4]


def test_problems_are_capped(tmp_path: Path) -> None:
    """A file of garbage gives a bounded number of problems, the last one saying so."""
    path = tmp_path / "garbage.jsonl"
    path.write_text("not json\n" * 500)
    problems = JsonlLoader(path).load().problems
    assert len(problems) == 51
    assert problems[-1].message == "more problems in this file are not reported"


def test_half_written_last_line_waits(tmp_path: Path) -> None:
    """A last line without its newline is not parsed (nor reported) until complete."""
    path = tmp_path / "log.jsonl"
    path.write_text('{"step": 1, "loss": 1}\n{"step": 2, "lo')
    loader = JsonlLoader(path)
    first = loader.load()
    assert len(points(first)) == 1 and first.problems == ()
    with open(path, "a") as fh:
        fh.write('ss": 2}\n')
    assert points(loader.load()) == [("loss", 2, "nan", "2.0")]


def test_absurd_values_do_not_raise(tmp_path: Path) -> None:
    """Huge integers, deep nesting and out-of-range steps are skipped or reported."""
    path = tmp_path / "log.jsonl"
    path.write_text(
        '{"step": 1, "loss": ' + "9" * 400 + "}\n"
        '{"step": 1e300, "loss": 1}\n' + "[" * 100000 + "\n" + '{"step": 2, "loss": 2}\n'
    )
    batch = JsonlLoader(path).load()
    assert [s for _, s, _, _ in points(batch)] == [2]
    assert [p.position for p in batch.problems] == ["line 2", "line 3"]


TEXT = (
    '\ufeff{"step": 0, "loss": 2.5, "val": {"loss": 3.0}}\r\n\r\n'
    '{"step": 1, "loss": NaN}\r\n{"step": 2, "loss": Infinity}\n'
    '{"step": 3, "loss": 1.0, "wall_time": 1.7e9}\n'
    '{"step": 4, "loss": "-inf", "val": {"loss": "x"}}\n'
).encode()


@FAST
@given(cuts=st.lists(st.integers(0, len(TEXT)), max_size=12))
def test_appending_in_chunks_equals_reading_whole(tmp_path: Path, cuts: list[int]) -> None:
    """Appending in chunks of any size (down to one byte) gives the same points."""
    seen = append_in_chunks(JsonlLoader, tmp_path / "chunked.jsonl", TEXT, cuts)
    whole = tmp_path / "whole.jsonl"
    whole.write_bytes(TEXT)
    assert seen == drain(JsonlLoader(whole)) and len(seen) == 6


def test_one_byte_at_a_time(tmp_path: Path) -> None:
    """Every byte appended and loaded alone gives the points of the whole file."""
    path = tmp_path / "bytes.jsonl"
    path.write_bytes(b"")
    loader = JsonlLoader(path, batch_bytes=7)
    seen: list[Point] = []
    for i in range(len(TEXT)):
        with open(path, "ab") as fh:
            fh.write(TEXT[i : i + 1])
        drain(loader, seen)
    assert seen == drain(JsonlLoader(path))


@FAST
@given(data=st.binary(max_size=400), lines=st.lists(st.text(max_size=80), max_size=8))
def test_damaged_input_never_raises(tmp_path: Path, data: bytes, lines: list[str]) -> None:
    """Random bytes and text give problems with line numbers, never an exception."""
    path = tmp_path / "damaged.jsonl"
    path.write_bytes(data + "\n".join(lines).encode() + b"\n")
    batch = JsonlLoader(path, max_line=100).load()
    for problem in batch.problems:
        assert problem.path == str(path) and problem.position.startswith("line ")
    assert len(batch.problems) == len(set(batch.problems))


def test_long_line_skipped_once(tmp_path: Path) -> None:
    """A line past max_line is skipped and reported once, whether complete or not yet."""
    path = tmp_path / "long.jsonl"
    path.write_text('{"step": 1, "loss": 1}\n{"pad": "' + "x" * 300)
    loader = JsonlLoader(path, max_line=100)
    first = loader.load()
    with open(path, "a") as fh:
        fh.write("x" * 300 + '", "step": 9, "loss": 9}\n{"step": 2, "loss": 2}\n')
    second = loader.load()
    assert [str(p) for p in first.problems + second.problems] == [
        f"{path}: line 2: longer than 100 bytes; skipped"
    ]
    assert [s for _, s, _, _ in points(first) + points(second)] == [1, 2]


def test_sniff() -> None:
    """A first line holding a JSON object with a number is JSON Lines."""
    assert sniff(b'{"step": 1, "loss": 0.5}\n{"step": 2')
    assert sniff(b'\n{"train": {"loss": 1}}\n')
    assert not sniff(b'{"name": "x"}\n')
    assert not sniff(b"[1, 2]\n")
    assert not sniff(b"epoch,loss\n0,1\n")
    assert not sniff(b'{"broken": \n')
