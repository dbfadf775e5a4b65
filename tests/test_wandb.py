"""W&B run files: what wandb 0.31.0 wrote (fixtures/wandb, see fixtures/gen_wandb.py),
read whole and while it grows, damaged, and through discovery and replay."""

from __future__ import annotations

import json
import math
import re
import shutil
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from loader_helpers import FAST
from loader_helpers import Point
from loader_helpers import append_in_chunks
from loader_helpers import drain
from loader_helpers import points
from loader_helpers import replay_diagnoses

from advisor.api import read_scalars
from advisor.core.planned import plan_of
from advisor.model import Batch
from advisor.sources.discovery import WANDB
from advisor.sources.discovery import discover
from advisor.sources.wandblog import MAGIC
from advisor.sources.wandblog import WandbLoader

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures" / "wandb"
SGD = FIXTURES / "run-20261126_120000-sgdover1"
SGD_FILE = SGD / "run-sgdover1.wandb"
PL_FILE = FIXTURES / "run-20261126_120000-pltunder" / "run-pltunder.wandb"
BLOCK = 32 << 10


def read(path: Path, final: bool = True) -> Batch:
    return WandbLoader(path).load(final=final)


def by_tag(batch: Batch) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {}
    for tag, step, _, value in points(batch):
        out.setdefault(tag, []).append((step, float(value)))
    return out


def chunks(data: bytes) -> list[tuple[int, int, int]]:
    """(offset, length, type) of every chunk of a well-formed file (an independent walk
    of the framing, for the tests to pick cut points and damage)."""
    out = []
    pos = len(MAGIC)
    while pos + 7 <= len(data):
        if BLOCK - pos % BLOCK < 7:
            pos += BLOCK - pos % BLOCK
            continue
        _, length, kind = struct.unpack_from("<IHB", data, pos)
        out.append((pos, length, kind))
        pos += 7 + length
    return out


# -- what wandb wrote ---------------------------------------------------------------------


def test_every_logged_number_is_read_with_its_step() -> None:
    """Rows of ``train/loss`` and ``lr``, then a nested ``val`` dict and ``epoch`` every
    fifth row: stepped by ``_step``; nested keys joined with "."; W&B's own ``_`` keys,
    text, booleans and a histogram are not metrics; a NaN is kept."""
    batch = read(SGD_FILE)
    assert batch.problems == ()
    tags = by_tag(batch)
    assert sorted(tags) == ["epoch", "grad_norm", "lr", "train/loss", "val.accuracy", "val.loss"]
    assert [s for s, _ in tags["val.loss"]] == list(range(4, 100, 5))
    assert [s for s, _ in tags["train/loss"]] == [s for s in range(100) if s % 5 != 4]
    assert [v for _, v in tags["epoch"]] == list(range(20))
    assert {v for _, v in tags["lr"]} == {0.1}
    [(nan_step, nan)] = tags["grad_norm"]
    assert nan_step == 27 and math.isnan(nan)
    walls = batch.scalars.wall_time
    assert (walls > 1.7e9).all() and (walls[1:] >= walls[:-1]).all()


def test_values_match_what_the_script_printed() -> None:
    """The script printed each validation loss to 4 decimals; wandb captured its stdout
    in files/output.log: the values read from the .wandb file agree."""
    printed = re.findall(r"val_loss=([0-9.]+)", (SGD / "files" / "output.log").read_text())
    read_back = [v for _, v in by_tag(read(SGD_FILE))["val.loss"]]
    assert len(printed) == 20
    assert [f"{v:.4f}" for v in read_back] == printed


def test_the_config_is_the_runs_hyper_parameters() -> None:
    assert dict(read(SGD_FILE).hparams) == {
        "lr": 0.1,
        "momentum": 0.9,
        "weight_decay": 0.0,
        "batch_size": 128.0,
        "epochs": 20.0,
        "optimizer.name": "sgd",
        "optimizer.nesterov": True,
    }


def test_a_declared_step_metric_steps_the_points() -> None:
    """Lightning's WandbLogger declares ``trainer/global_step`` the step of every key: the
    points are at global steps 10, 20, ... (not at the row counter ``_step``)."""
    batch = read(PL_FILE)
    assert batch.problems == ()
    tags = by_tag(batch)
    assert [s for s, _ in tags["train_loss"]] == list(range(10, 601, 10))
    assert [s for s, _ in tags["val_loss"]] == list(range(50, 601, 50))
    assert tags["epoch"][-1] == (600, 11.0)
    assert batch.hparams["max_epochs"] == 40.0


def test_the_fixture_has_records_that_span_blocks() -> None:
    """So that joining first/middle/last chunks is exercised by real data."""
    data = SGD_FILE.read_bytes()
    assert data.startswith(MAGIC)
    kinds = [k for _, _, k in chunks(data)]
    assert 2 in kinds and 4 in kinds


# -- tailing --------------------------------------------------------------------------------


@FAST
@given(cuts=st.lists(st.integers(0, SGD_FILE.stat().st_size), max_size=10))
def test_reading_while_it_grows_gives_each_point_once(tmp_path: Path, cuts: list[int]) -> None:
    data = SGD_FILE.read_bytes()
    whole = points(read(SGD_FILE))
    assert append_in_chunks(WandbLoader, tmp_path / "run-x.wandb", data, cuts) == whole


def test_cuts_at_every_kind_of_place_give_no_problem(tmp_path: Path) -> None:
    """Inside the header, inside a chunk header, inside a chunk's data, between the
    first and last chunk of a record, at a block's padding: waited for in silence."""
    data = SGD_FILE.read_bytes()
    first = next((pos, n) for pos, n, k in chunks(data) if k == 2)
    cuts = [3, 7 + 3, 7 + 7 + 5, first[0] + 7 + first[1], BLOCK - 2, BLOCK + 3]
    path = tmp_path / "run-x.wandb"
    path.write_bytes(b"")
    loader = WandbLoader(path)
    seen: list[Point] = []
    at = 0
    for cut in [*sorted(cuts), len(data)]:
        with path.open("ab") as fh:
            fh.write(data[at:cut])
        at = cut
        batch = loader.load()
        assert batch.problems == ()
        seen.extend(points(batch))
    assert seen == points(read(SGD_FILE))


def test_a_small_budget_reads_in_several_batches(tmp_path: Path) -> None:
    loader = WandbLoader(SGD_FILE, batch_bytes=4096)
    first = loader.load()
    assert first.more
    assert points(first) + drain(loader) == points(read(SGD_FILE))


def test_a_replaced_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "run-x.wandb"
    shutil.copy(PL_FILE, path)
    loader = WandbLoader(path)
    assert len(points(loader.load())) > 0
    shutil.copy(SGD_FILE, tmp_path / "new.wandb")
    (tmp_path / "new.wandb").replace(path)
    batch = loader.load()
    assert batch.reset
    assert points(batch) == points(read(SGD_FILE))


# -- damage ---------------------------------------------------------------------------------


def test_a_file_cut_mid_record_is_reported_when_final(tmp_path: Path) -> None:
    data = SGD_FILE.read_bytes()
    pos, length, _ = chunks(data)[-3]
    path = tmp_path / "run-x.wandb"
    path.write_bytes(data[: pos + 7 + length // 2])
    assert WandbLoader(path).load().problems == ()  # live: waited for
    batch = read(path)
    assert [str(p) for p in batch.problems] == [
        f"{path}: byte {pos}: last record incomplete (cut off mid-write?); skipped"
    ]
    assert points(batch) == points(read(SGD_FILE))[: len(points(batch))]


def test_a_damaged_chunk_is_reported_and_reading_goes_on_at_the_next_block(
    tmp_path: Path,
) -> None:
    data = bytearray(SGD_FILE.read_bytes())
    pos, length, _ = next(c for c in chunks(bytes(data)) if c[0] > 20_000 and c[2] == 1)
    data[pos + 7 + length // 2] ^= 0x40
    path = tmp_path / "run-x.wandb"
    path.write_bytes(bytes(data))
    batch = read(path)
    assert [str(p) for p in batch.problems] == [
        f"{path}: byte {pos}: checksum mismatch; skipped to byte {BLOCK}"
    ]
    whole = points(read(SGD_FILE))
    got = points(batch)
    assert 0 < len(got) < len(whole) and set(got) <= set(whole)
    assert got[-1] == whole[-1]  # the file after the damaged block is read


def test_a_bad_chunk_type_and_a_broken_record_are_reported(tmp_path: Path) -> None:
    data = bytearray(SGD_FILE.read_bytes())
    first = next(c for c in chunks(bytes(data)) if c[2] == 2)  # a record's first chunk
    last = next(c for c in chunks(bytes(data)) if c[2] == 4)  # ... its last, in block 2
    data[last[0] + 6] = 9
    path = tmp_path / "run-x.wandb"
    path.write_bytes(bytes(data))
    messages = [f"{p.position}: {p.message}" for p in read(path).problems]
    after = last[0] - last[0] % BLOCK + BLOCK
    assert messages == [
        f"byte {last[0]}: bad chunk type 9 (the record from byte {first[0]} lost); "
        f"skipped to byte {after}"
    ]


def test_a_file_that_is_not_a_wandb_log_is_reported_once(tmp_path: Path) -> None:
    path = tmp_path / "notes.wandb"
    path.write_text("just some notes\n")
    loader = WandbLoader(path)
    assert [p.message for p in loader.load().problems] == [
        "not a W&B run file (no ':W&B' header); skipped"
    ]
    path.write_text("just some notes\nand more\n")
    assert loader.load().problems == ()


def test_an_empty_or_just_started_file_is_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "run-x.wandb"
    path.write_bytes(b"")
    assert read(path).problems == ()
    path.write_bytes(MAGIC[:3])
    assert WandbLoader(path).load().problems == ()
    assert [p.message for p in read(path).problems] == ["file shorter than its header; skipped"]
    path.write_bytes(MAGIC[:6] + b"\x03")
    assert [p.message for p in read(path).problems] == ["W&B log version 3, not 0; not read"]


@FAST
@given(flips=st.lists(st.integers(0, 39_000), min_size=1, max_size=6), cut=st.integers(0, 40_000))
def test_random_damage_never_raises(tmp_path: Path, flips: list[int], cut: int) -> None:
    data = bytearray(SGD_FILE.read_bytes())
    for at in flips:
        data[at % len(data)] ^= 1 << (at % 8)
    path = tmp_path / "run-x.wandb"
    path.write_bytes(bytes(data[:cut]))
    batch = read(path)
    assert len(batch.problems) <= 51  # the problem log's bound
    # Every chunk read passed its CRC: only the file's own points can come out.
    assert set(points(batch)) <= set(points(read(SGD_FILE)))


# -- records the fixtures do not have (written here with the same framing) ---------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _row(**values: float) -> bytes:
    items = b"".join(
        _field(1, _field(2, k.encode()) + _field(16, json.dumps(v).encode()))
        for k, v in values.items()
    )
    return _field(2, items)


def _metric(glob: str, step_metric: str) -> bytes:
    return _field(12, _field(2, glob.encode()) + _field(4, step_metric.encode()))


def _file(*records: bytes) -> bytes:
    """The framing wandb writes, for records of any size (split across blocks)."""
    out = bytearray(MAGIC)
    for record in records:
        rest, first = record, True
        while True:
            left = BLOCK - len(out) % BLOCK
            if left < 7:
                out += bytes(left)
                continue
            part, rest = rest[: left - 7], rest[left - 7 :]
            kind = (1 if first else 4) if not rest else (2 if first else 3)
            crc = zlib.crc32(part, zlib.crc32(bytes([kind])))
            out += struct.pack("<IHB", crc, len(part), kind) + part
            first = False
            if not rest:
                break
    return bytes(out)


def test_a_point_before_its_step_metric_has_a_value_is_skipped_and_reported(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run-x.wandb"
    path.write_bytes(
        _file(
            _metric("*", "global_step"),
            _row(_step=0, loss=2.0),
            _row(_step=1, loss=1.5),
            _row(_step=2, loss=1.0, global_step=300),
            _row(_step=3, val_loss=0.9),
        )
    )
    batch = read(path)
    assert by_tag(batch) == {
        "loss": [(300, 1.0)],
        "global_step": [(300, 300.0)],
        "val_loss": [(300, 0.9)],
    }
    assert [str(p).split(": ", 1)[1] for p in batch.problems] == [
        f"byte {len(MAGIC) + 7 + len(_metric('*', 'global_step'))}: "
        "row before the step metric global_step had a value; skipped"
    ]


def test_a_step_metric_for_some_keys_only_is_not_taken(tmp_path: Path) -> None:
    """Keras's WandbMetricsLogger steps ``batch/*`` by ``batch/batch_step`` while its
    epoch keys stay on ``_step``: two axes in one run, so ``_step`` steps all."""
    path = tmp_path / "run-x.wandb"
    path.write_bytes(
        _file(
            _metric("batch/*", "batch/batch_step"),
            _row(_step=0, **{"batch/loss": 2.0, "batch/batch_step": 0}),
            _row(_step=1, **{"batch/loss": 1.5, "batch/batch_step": 100}),
            _row(_step=2, **{"epoch/val_loss": 1.7, "epoch/epoch": 0}),
        )
    )
    batch = read(path)
    assert batch.problems == ()
    assert by_tag(batch)["batch/loss"] == [(0, 2.0), (1, 1.5)]
    assert by_tag(batch)["epoch/val_loss"] == [(2, 1.7)]


def test_a_record_over_the_limit_is_skipped_and_the_next_read(tmp_path: Path) -> None:
    """A 40 KB record (a long config value, say) spans two blocks: skipped whole, and
    reported, when over the limit."""
    big = _field(5, _field(1, _field(1, b"notes") + _field(16, json.dumps("x" * 40_000).encode())))
    path = tmp_path / "run-x.wandb"
    path.write_bytes(_file(_row(_step=0, loss=2.0), big, _row(_step=1, loss=1.0)))
    batch = WandbLoader(path, max_record=30_000).load(final=True)
    assert by_tag(batch) == {"loss": [(0, 2.0), (1, 1.0)]}
    assert [p.message for p in batch.problems] == ["record over 30000 bytes; skipped"]
    whole = WandbLoader(path).load(final=True)
    assert whole.problems == () and whole.hparams == {"notes": "x" * 40_000}


# -- discovery and replay -------------------------------------------------------------------


def test_each_wandb_run_is_one_run_and_its_side_files_are_not_runs() -> None:
    """files/output.log holds metric lines (the script's stdout) and logs/ W&B's debug
    logs: reading them too would make a second run of the same training."""
    found = discover(FIXTURES)
    assert [(f.run, f.format, f.path.name) for f in found] == [
        ("run-pltunder", WANDB, "run-pltunder.wandb"),
        ("run-sgdover1", WANDB, "run-sgdover1.wandb"),
    ]


def test_the_parts_of_a_resumed_run_are_one_run(tmp_path: Path) -> None:
    """``wandb.init(id=..., resume="allow")`` after a preemption writes a new
    ``run-<time>-<id>`` directory whose steps go on: one run, read in order."""
    first = tmp_path / "wandb" / "run-20261126_120000-abc123" / "run-abc123.wandb"
    second = tmp_path / "wandb" / "run-20261126_180000-abc123" / "run-abc123.wandb"
    for path, steps in ((first, range(10)), (second, range(10, 20))):
        path.parent.mkdir(parents=True)
        path.write_bytes(_file(*(_row(_step=s, val_loss=1.0 / (s + 1)) for s in steps)))
    found = discover(tmp_path / "wandb")
    assert [(f.run, f.path) for f in found] == [("run-abc123", first), ("run-abc123", second)]
    frame = read_scalars(tmp_path / "wandb")
    assert set(frame.run) == {"run-abc123"}
    assert list(frame.step) == list(range(20))


def test_replay_diagnoses_the_wandb_runs() -> None:
    assert replay_diagnoses(FIXTURES) == {
        "run-pltunder": "underfitting",
        "run-sgdover1": "overfitting",
    }


def test_the_fixtures_stay_small() -> None:
    assert max(p.stat().st_size for p in FIXTURES.rglob("*") if p.is_file()) < 64 * 1024


@pytest.mark.parametrize("path", [SGD_FILE, PL_FILE])
def test_the_fixture_files_are_whole(path: Path) -> None:
    """No chunk is cut or fails its CRC (the reader's silence above means something)."""
    data = path.read_bytes()
    for pos, length, kind in chunks(data):
        crc = struct.unpack_from("<I", data, pos)[0]
        assert crc == zlib.crc32(data[pos + 7 : pos + 7 + length], zlib.crc32(bytes([kind])))


def test_a_record_that_does_not_decode_gives_nothing(tmp_path: Path) -> None:
    """Whole chunks with valid CRCs whose record is not protobuf (a writer's bug, or a
    newer format): reported once each, and none of their points kept."""
    path = tmp_path / "run-x.wandb"
    path.write_bytes(_file(_row(_step=0, loss=2.0), _row(_step=1, loss=1.5) + b"\x07"))
    batch = read(path)
    assert by_tag(batch) == {"loss": [(0, 2.0)]}
    assert [p.message for p in batch.problems] == ["record does not decode; skipped"]


def test_a_step_key_in_the_first_row_steps_the_run(tmp_path: Path) -> None:
    """nanoGPT logs ``iter`` with its evaluations and no step metric: the points are at
    the iterations (its ``max_iters`` is on that axis), not at ``_step`` (0, 1, 2, ...);
    a row without the key goes on from its last value."""
    path = tmp_path / "run-x.wandb"
    path.write_bytes(
        _file(
            _row(_step=0, iter=0, **{"val/loss": 4.0}),
            _row(_step=1, iter=250, **{"val/loss": 3.0}),
            _row(_step=2, mfu=0.3),
            _row(_step=3, iter=500, **{"val/loss": 2.5}),
        )
    )
    tags = by_tag(read(path))
    assert tags["val/loss"] == [(0, 4.0), (250, 3.0), (500, 2.5)]
    assert tags["mfu"] == [(250, 0.3)]


def _config(**values: object) -> bytes:
    items = b"".join(
        _field(1, _field(1, k.encode()) + _field(16, json.dumps(v).encode()))
        for k, v in values.items()
    )
    return _field(5, items)


@pytest.mark.parametrize(
    ("first", "planned_steps"),
    [({"_step": 0, "val_loss": 3.0}, None), ({"_step": 0, "step": 0, "val_loss": 3.0}, 1000.0)],
    ids=["on _step", "on a step key"],
)
def test_a_planned_step_count_is_kept_only_on_the_runs_own_step_axis(
    tmp_path: Path, first: dict[str, float], planned_steps: float | None
) -> None:
    """``_step`` counts ``log()`` calls: a script logging its loss and its LR in two
    calls per step is at _step 1000 at step 500, half-way through max_steps=1000, not at
    its end. On _step the run has no planned steps (its planned epochs stay: they are
    placed by the epoch curve); on a logged step key, ``max_steps`` is on its axis."""
    path = tmp_path / "run-x.wandb"
    path.write_bytes(_file(_config(max_steps=1000, epochs=4, lr=0.1), _row(**first)))
    hparams = dict(read(path).hparams)
    assert hparams.get("max_steps") == planned_steps
    assert (hparams["epochs"], hparams["lr"]) == (4.0, 0.1)
    plan = plan_of(hparams)
    assert plan is not None and plan.steps == planned_steps and plan.epochs == 4.0


def test_the_config_waits_for_the_first_row(tmp_path: Path) -> None:
    """Until a row with numbers says what steps the run, its config is not given out (a
    step count given too soon could not be taken back); then it is, whole."""
    path = tmp_path / "run-x.wandb"
    loader = WandbLoader(path)
    path.write_bytes(_file(_config(max_steps=1000, lr=0.1)))
    assert dict(loader.load().hparams) == {}
    path.write_bytes(_file(_config(max_steps=1000, lr=0.1), _row(_step=0, val_loss=3.0)))
    assert dict(loader.load().hparams) == {"lr": 0.1}


# -- the Hugging Face Trainer reporting to W&B (fixtures/gen_wandb_hf.py) ------------------

HF_RUN = next((ROOT / "fixtures" / "wandb_hf").glob("run-*"))
HF_FILE = next(HF_RUN.glob("*.wandb"))


def test_a_trainer_run_is_read_on_its_global_steps_with_its_plan() -> None:
    """transformers 5.24's W&B callback: every key against ``train/global_step``, the
    TrainingArguments as the config (``num_train_epochs`` is the plan)."""
    from advisor.core.planned import plan_of

    batch = read(HF_FILE)
    assert batch.problems == ()
    tags = by_tag(batch)
    assert [s for s, _ in tags["eval/loss"]] == list(range(12, 73, 12))  # 12 steps an epoch
    assert [s for s, _ in tags["train/loss"]] == list(range(4, 73, 4))
    assert [v for _, v in tags["train/epoch"]][-1] == 6.0
    lr = [v for _, v in tags["train/learning_rate"]]
    assert lr == sorted(lr, reverse=True) and lr[0] < 1e-3  # linear decay from 1e-3
    hparams = dict(batch.hparams)
    assert (hparams["learning_rate"], hparams["weight_decay"]) == (1e-3, 0.01)
    assert hparams["per_device_train_batch_size"] == 32.0
    plan = plan_of(hparams)
    assert plan is not None and plan.epochs == 6.0


def test_the_first_block_alone_reads_as_the_first_rows(tmp_path: Path) -> None:
    """Until the run is closed wandb writes whole 32 KiB blocks only: a reader then sees a
    block that ends inside a record. Its whole records are read, nothing is misread."""
    path = tmp_path / "run-x.wandb"
    path.write_bytes(HF_FILE.read_bytes()[:BLOCK])
    batch = WandbLoader(path).load()
    assert batch.problems == ()
    got, whole = points(batch), points(read(HF_FILE))
    assert 0 < len(got) < len(whole) and got == whole[: len(got)]
