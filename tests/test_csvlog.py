"""CsvLoader: Keras CSVLogger, Lightning metrics.csv, fastai history.csv, any metrics CSV."""

from __future__ import annotations

import builtins
import collections
import csv
import math
import os
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from loader_helpers import FAST
from loader_helpers import Point
from loader_helpers import append_in_chunks
from loader_helpers import drain
from loader_helpers import points

from advisor.errors import InputError
from advisor.model import Problem
from advisor.sources.csvlog import CsvLoader
from advisor.sources.csvlog import read_lightning_hparams
from advisor.sources.csvlog import sniff


def keras_csv_logger(path: Path, epochs: list[dict[str, Any]], sep: str = ",") -> None:
    """What keras.callbacks.CSVLogger writes (keys sorted, NA for missing, excel dialect)."""
    keys = sorted(epochs[0])
    append_header = not (path.exists() and path.stat().st_size)

    class Dialect(csv.excel):
        delimiter = sep

    with open(path, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["epoch", *keys], dialect=Dialect)
        if append_header:
            writer.writeheader()
        for epoch, logs in enumerate(epochs):
            row = collections.OrderedDict({"epoch": epoch})
            row.update((k, logs.get(k, "NA")) for k in keys)
            writer.writerow(row)


class LightningWriter:
    """What lightning's CSVLogger (_ExperimentWriter.save) does, without torch."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.keys: list[str] = []

    def save(self, rows: list[dict[str, float]]) -> None:
        new = set().union(*rows) - set(self.keys)
        self.keys = sorted([*self.keys, *new])
        exists = self.path.is_file()
        if new and exists:
            with open(self.path, newline="") as fh:
                old = list(csv.DictReader(fh))
            with open(self.path, "w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=self.keys)
                writer.writeheader()
                writer.writerows(old)
        with open(self.path, "a" if exists else "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.keys)
            if not exists:
                writer.writeheader()
            writer.writerows(rows)


def test_keras_csv_logger_any_separator(tmp_path: Path) -> None:
    """Every Keras separator is sniffed; NA is no point, nan and inf are points."""
    for sep in (",", ";", "\t", "|"):
        path = tmp_path / f"training{ord(sep)}.log"
        keras_csv_logger(
            path,
            [
                {"loss": 1.5, "val_loss": "NA", "accuracy": 0.25},
                {"loss": math.nan, "val_loss": 0.75, "accuracy": math.inf},
                {"loss": -math.inf, "val_loss": 1e-8, "accuracy": 0.5},
            ],
            sep,
        )
        assert path.read_bytes().startswith(b"epoch" + sep.encode() + b"accuracy")
        assert b"\r\n" in path.read_bytes()
        batch = CsvLoader(path).load()
        assert batch.problems == ()
        got = [(t, s, float(v)) for t, s, _, v in points(batch)]
        assert got[:4] == [
            ("epoch", 0, 0.0), ("accuracy", 0, 0.25), ("loss", 0, 1.5), ("epoch", 1, 1.0),
        ]  # fmt: skip
        by_tag = {(t, s): v for t, s, v in got}
        assert ("val_loss", 0) not in by_tag
        assert math.isnan(by_tag[("loss", 1)]) and by_tag[("accuracy", 1)] == math.inf
        assert by_tag[("loss", 2)] == -math.inf and by_tag[("val_loss", 2)] == 1e-8
        assert all(math.isnan(float(w)) for _, _, w, _ in points(batch))


def test_keras_appended_runs_emit_in_file_order(tmp_path: Path) -> None:
    """Runs appended to one file (epoch restarting, header repeated or not) keep file order."""
    path = tmp_path / "log.csv"
    keras_csv_logger(path, [{"loss": 3.0}, {"loss": 2.0}])
    keras_csv_logger(path, [{"loss": 9.0}])  # append=True: no second header
    with open(path, "a", newline="") as fh:
        fh.write("epoch,loss\r\n0,7.0\r\n")  # a tool that repeats the header
    got = [(s, float(v)) for t, s, _, v in points(CsvLoader(path).load()) if t == "loss"]
    assert got == [(0, 3.0), (1, 2.0), (0, 9.0), (0, 7.0)]


def test_lightning_rewrite_with_new_header_resets(tmp_path: Path) -> None:
    """A new metric makes Lightning rewrite the file; the loader starts over with reset."""
    path = tmp_path / "metrics.csv"
    writer = LightningWriter(path)
    loader = CsvLoader(path)
    writer.save(
        [{"epoch": 0, "step": 9, "train_loss": 2.0}, {"epoch": 0, "step": 19, "train_loss": 1.5}]
    )
    first = loader.load()
    assert not first.reset and len(points(first)) == 4
    writer.save([{"epoch": 0, "step": 19, "val_loss": 1.7}])
    second = loader.load()
    assert second.reset
    writer.save([{"epoch": 1, "step": 29, "train_loss": 1.2}])
    third = loader.load()
    assert not third.reset
    final = [(t, s, float(v)) for t, s, _, v in points(second) + points(third)]
    assert final == [
        ("epoch", 9, 0.0), ("train_loss", 9, 2.0), ("epoch", 19, 0.0), ("train_loss", 19, 1.5),
        ("epoch", 19, 0.0), ("val_loss", 19, 1.7), ("epoch", 29, 1.0), ("train_loss", 29, 1.2),
    ]  # fmt: skip


def test_lightning_rewrite_seen_half_written(tmp_path: Path) -> None:
    """A rewrite caught mid-way (file truncated, new header, some rows) ends up exact."""
    path = tmp_path / "metrics.csv"
    old = "epoch,step,train_loss\r\n0,0,1.0\r\n0,1,0.9\r\n0,2,0.8\r\n"
    new = "epoch,step,train_loss,val_loss\r\n0,0,1.0,\r\n0,1,0.9,\r\n0,2,0.8,\r\n0,2,,0.95\r\n"
    path.write_bytes(old.encode())
    loader = CsvLoader(path)
    seen = drain(loader)
    for cut in (0, 10, 40, 41, len(new)):
        with open(path, "r+b") as fh:  # "w" truncates, then the writer writes a part
            fh.truncate(0)
            fh.write(new[:cut].encode())
        drain(loader, seen)
    whole = drain(CsvLoader(path))
    assert seen == whole and len(whole) == 8


def test_real_lightning_csv_logger(tmp_path: Path) -> None:
    """The real lightning CSVLogger writer, rewriting its file as metrics appear."""
    pytest.importorskip("torch")
    logs = pytest.importorskip("lightning.fabric.loggers.csv_logs")
    writer = logs._ExperimentWriter(str(tmp_path / "version_0"))
    loader = CsvLoader(tmp_path / "version_0" / "metrics.csv")
    seen: list[Point] = []
    for step in range(6):
        metrics: dict[str, float] = {"epoch": step // 3, "train_loss": 1.0 / (step + 1)}
        if step % 3 == 2:
            metrics["val_loss"] = 2.0 / (step + 1)
        if step == 4:
            metrics["lr-Adam"] = 1e-3
        writer.log_metrics(metrics, step)
        writer.save()
        drain(loader, seen)
    assert seen == drain(CsvLoader(loader.path))
    tags = {t for t, *_ in seen}
    assert tags == {"epoch", "train_loss", "val_loss", "lr-Adam"}
    assert len(seen) == 6 * 2 + 2 + 1


def test_fastai_history_csv(tmp_path: Path) -> None:
    """fastai: #na# is missing, the mm:ss time column is not a tag, step = epoch."""
    path = tmp_path / "history.csv"
    path.write_text(
        "epoch,train_loss,valid_loss,accuracy,time\n"
        "0,0.912345,#na#,#na#,00:05\n"
        "1,0.512345,0.612345,0.801000,00:04\n"
    )
    got = [(t, s, float(v)) for t, s, _, v in points(CsvLoader(path).load())]
    assert got == [
        ("epoch", 0, 0.0), ("train_loss", 0, 0.912345), ("epoch", 1, 1.0),
        ("train_loss", 1, 0.512345), ("valid_loss", 1, 0.612345), ("accuracy", 1, 0.801),
    ]  # fmt: skip


def test_step_column_priority_and_wall_time(tmp_path: Path) -> None:
    """step beats iteration and epoch; a numeric time column is the wall time, not a tag."""
    path = tmp_path / "train_log.csv"
    path.write_text(
        "time,epoch,iteration,global_step,loss\n1700000000.5,0,7,100,0.5\n12.5,0,8,200,0.4\n"
    )
    got = points(CsvLoader(path).load())
    assert [(t, s) for t, s, _, _ in got] == [
        ("epoch", 100), ("iteration", 100), ("loss", 100),
        ("epoch", 200), ("iteration", 200), ("loss", 200),
    ]  # fmt: skip
    assert got[0][2] == "1700000000.5" and got[3][2] == "nan"  # 12.5 s is a duration


def test_pandas_index_column_is_the_step(tmp_path: Path) -> None:
    """pd.DataFrame(history.history).to_csv() writes an unnamed index column: the step."""
    path = tmp_path / "training_history.csv"
    path.write_text(",loss,val_loss\n0,1.0,1.1\n1,0.9,1.0\n")
    got = [(t, s) for t, s, _, _ in points(CsvLoader(path).load())]
    assert got == [("loss", 0), ("val_loss", 0), ("loss", 1), ("val_loss", 1)]


def test_a_phase_column_names_the_tags_of_its_rows(tmp_path: Path) -> None:
    """A long-format log (one row per phase and epoch, as ``pandas.DataFrame.to_csv``
    writes a list of dicts) keeps each phase's metrics apart: ``val/loss`` is the
    validation loss, not every other point of one ``loss``. Written by the csv module."""
    path = tmp_path / "log.csv"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, ["epoch", "phase", "loss", "acc"])
        writer.writeheader()
        for epoch in range(2):
            writer.writerow({"epoch": epoch, "phase": "train", "loss": 1.0 - 0.2 * epoch})
            writer.writerow(
                {"epoch": epoch, "phase": "val", "loss": 1.1 - 0.2 * epoch, "acc": 0.5}
            )
        writer.writerow({"epoch": 2, "phase": "not a phase", "loss": 0.5})  # free text
    loader = CsvLoader(path)
    got = [(t, s, v) for t, s, _, v in points(loader.load())]
    assert got == [
        ("epoch", 0, "0.0"), ("train/loss", 0, "1.0"),
        ("epoch", 0, "0.0"), ("val/loss", 0, "1.1"), ("val/acc", 0, "0.5"),
        ("epoch", 1, "1.0"), ("train/loss", 1, "0.8"),
        ("epoch", 1, "1.0"), ("val/loss", 1, "0.9000000000000001"), ("val/acc", 1, "0.5"),
        ("epoch", 2, "2.0"), ("loss", 2, "0.5"),
    ]  # fmt: skip
    with path.open("a", newline="") as fh:  # a column of ever new values is no phase
        fh.writelines(f"{3 + k},run{k},0.4,\n" for k in range(40))
    tags = {t for t, _, _, _ in points(loader.load())}
    # 16 phases at most: train, val and the first 14 of these.
    assert tags == {"epoch", "loss"} | {f"run{k}/loss" for k in range(14)}


def test_no_step_column_counts_rows(tmp_path: Path) -> None:
    """Without a step column the step is the data row's number since the header."""
    path = tmp_path / "log.csv"
    path.write_text("loss;acc\n\n0.5;0.1\n0.4;0.2\n")
    assert [s for _, s, _, _ in points(CsvLoader(path).load())] == [0, 0, 1, 1]


def test_bom_crlf_quotes_blank_lines(tmp_path: Path) -> None:
    """A BOM, CRLF line ends, quoted fields and blank lines are tolerated."""
    path = tmp_path / "log.csv"
    path.write_bytes(
        b'\xef\xbb\xbf"epoch","loss","note"\r\n\r\n0,"0.5","a, b"\r\n1,0.25,"[1, 2]"\r\n'
    )
    batch = CsvLoader(path).load()
    assert batch.problems == ()
    assert [(t, s, float(v)) for t, s, _, v in points(batch)] == [
        ("epoch", 0, 0.0), ("loss", 0, 0.5), ("epoch", 1, 1.0), ("loss", 1, 0.25),
    ]  # fmt: skip


def test_half_written_line_waits(tmp_path: Path) -> None:
    """A row without its newline stays unread until it is complete."""
    path = tmp_path / "log.csv"
    path.write_bytes(b"epoch,loss\r\n0,0.5\r\n1,0.4")
    loader = CsvLoader(path)
    assert len(points(loader.load())) == 2
    with open(path, "ab") as fh:
        fh.write(b"5\r")
    assert points(loader.load()) == []
    with open(path, "ab") as fh:
        fh.write(b"\n")
    assert [float(v) for _, _, _, v in points(loader.load())] == [1.0, 0.45]


def test_half_written_line_is_reported_when_final(tmp_path: Path) -> None:
    """Read as final (replayed logs), a row without its newline is reported with its line
    and skipped: it may be a number cut short ("0.45" cut to "0.4")."""
    path = tmp_path / "log.csv"
    path.write_bytes(b"epoch,loss\r\n0,0.5\r\n1,0.4")
    batch = CsvLoader(path).load(final=True)
    assert len(points(batch)) == 2
    assert [str(p) for p in batch.problems] == [
        f"{path}: line 3: last line has no line end (cut off mid-write?); skipped"
    ]
    path.write_bytes(b"epoch,loss\r\n0,0.5\r\n1,0.4\r\n  ")
    batch = CsvLoader(path).load(final=True)
    assert len(points(batch)) == 4 and batch.problems == ()  # blanks are no line


def test_unchanged_file_is_not_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An idle poll is one stat: the file is not opened."""
    path = tmp_path / "log.csv"
    path.write_text("epoch,loss\n0,1\n")
    loader = CsvLoader(path)
    loader.load()

    def no_open(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("opened")

    monkeypatch.setattr(builtins, "open", no_open)
    assert len(loader.load().scalars) == 0


def test_shrunk_or_replaced_file_is_read_again(tmp_path: Path) -> None:
    """A truncated file and a file replaced by rename are both read again, with reset."""
    path = tmp_path / "log.csv"
    path.write_text("epoch,loss\n0,1\n1,2\n")
    loader = CsvLoader(path)
    loader.load()
    path.write_text("epoch,loss\n0,5\n")
    batch = loader.load()
    assert batch.reset and [float(v) for t, _, _, v in points(batch) if t == "loss"] == [5.0]
    other = tmp_path / "new.csv"
    other.write_text("epoch,loss\n0,5\n1,6\n")
    os.replace(other, path)
    batch = loader.load()
    assert batch.reset and [float(v) for t, _, _, v in points(batch) if t == "loss"] == [5.0, 6.0]


def test_batch_budget_sets_more(tmp_path: Path) -> None:
    """A call stops near its byte budget and says more; the calls together read all."""
    path = tmp_path / "log.csv"
    keras_csv_logger(path, [{"loss": i / 7, "val_loss": i / 3} for i in range(500)])
    loader = CsvLoader(path, batch_bytes=1000)
    first = loader.load()
    assert first.more
    assert points(first) + drain(loader) == drain(CsvLoader(path))


def test_permission_denied_is_one_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unreadable file raises InputError naming it, in one line."""
    path = tmp_path / "log.csv"
    path.write_text("epoch,loss\n0,1\n")

    def denied(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(builtins, "open", denied)
    with pytest.raises(InputError) as err:
        CsvLoader(path).load()
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_missing_file_then_created_and_directory(tmp_path: Path) -> None:
    """A file not there yet gives nothing; a directory is an InputError."""
    path = tmp_path / "later.csv"
    loader = CsvLoader(path)
    assert len(loader.load().scalars) == 0
    path.write_text("epoch,loss\n0,1\n")
    assert len(points(loader.load())) == 2
    with pytest.raises(InputError, match="not a regular file"):
        CsvLoader(tmp_path).load()


def test_text_in_a_column_of_numbers_is_reported(tmp_path: Path) -> None:
    """A text cell after a number in its column is skipped and reported, by line and
    column, also when the numbers came in an earlier call; missing-value marks, a column
    of text alone (a note) and text before the first number are not problems."""
    path = tmp_path / "log.csv"
    path.write_text("epoch,val_loss,note\n0,1.5,start\n1,NA,x\n2,1.2,y\n")
    loader = CsvLoader(path)
    batch = loader.load()
    assert batch.problems == ()
    assert [(t, s) for t, s, _, _ in points(batch)] == [
        ("epoch", 0), ("val_loss", 0), ("epoch", 1), ("epoch", 2), ("val_loss", 2),
    ]  # fmt: skip
    with open(path, "a") as fh:
        fh.write("3,oops,z\n4,0.9,w\n5,a very long piece of text here,v\n")
    batch = loader.load()
    assert [str(p) for p in batch.problems] == [
        f"{path}: line 5: val_loss 'oops' is not a number; skipped",
        f"{path}: line 7: val_loss 'a very long piece...' is not a number; skipped",
    ]
    assert [(t, s) for t, s, _, _ in points(batch) if t == "val_loss"] == [("val_loss", 4)]
    # Text before the column's first number is not reported, read whole or in parts.
    path.write_text("epoch,val_loss\n0,warming\n1,1.0\n2,oops\n")
    whole = [str(p) for p in CsvLoader(path).load().problems]
    assert whole == [f"{path}: line 4: val_loss 'oops' is not a number; skipped"]
    path.write_text("epoch,val_loss\n0,warming\n")
    loader = CsvLoader(path)
    parts = list(loader.load().problems)
    with open(path, "a") as fh:
        fh.write("1,1.0\n2,oops\n")
    assert [str(p) for p in parts + list(loader.load().problems)] == whole


def test_wrong_width_rows_reported_once(tmp_path: Path) -> None:
    """A row with the wrong number of fields is skipped and reported once, by line."""
    path = tmp_path / "log.csv"
    path.write_text("epoch,loss\n0,1\n1,2,3\nabc\n2,3\n")
    loader = CsvLoader(path)
    batch = loader.load()
    assert [str(p) for p in batch.problems] == [
        f"{path}: line 3: 3 fields where the header has 2; skipped",
        f"{path}: line 4: 1 fields where the header has 2; skipped",
    ]
    path.write_text("epoch,loss\n0,1\n1,2,3\nabc\n2,3\n")  # same content, rewritten
    os.utime(path, ns=(1, 1))
    assert loader.load().problems == ()


CSV_TEXT = (
    "\ufeffepoch;loss;val_loss\r\n0;1.5;NA\r\n\r\n1;nan;0.75\r\n2;inf;-inf\r\n"
    "epoch;loss;val_loss\r\n0;9;8\r\n"
).encode()


@FAST
@given(cuts=st.lists(st.integers(0, len(CSV_TEXT)), max_size=12))
def test_appending_in_chunks_equals_reading_whole(tmp_path: Path, cuts: list[int]) -> None:
    """Appending the file in chunks of any size (one byte too) gives the same points."""
    seen = append_in_chunks(CsvLoader, tmp_path / "chunked.csv", CSV_TEXT, cuts)
    whole = tmp_path / "whole.csv"
    whole.write_bytes(CSV_TEXT)
    assert seen == drain(CsvLoader(whole))


def test_one_byte_at_a_time(tmp_path: Path) -> None:
    """The smallest chunks: every byte appended and loaded alone."""
    path = tmp_path / "bytes.csv"
    path.write_bytes(b"")
    loader = CsvLoader(path)
    seen: list[Point] = []
    for i in range(len(CSV_TEXT)):
        with open(path, "ab") as fh:
            fh.write(CSV_TEXT[i : i + 1])
        drain(loader, seen)
    assert seen == drain(CsvLoader(path)) and len(seen) == 11


@FAST
@given(data=st.binary(max_size=600), cut=st.integers(0, 600))
def test_damaged_input_never_raises(tmp_path: Path, data: bytes, cut: int) -> None:
    """Random bytes give points and problems, never an exception; problems name a line."""
    path = tmp_path / "damaged.csv"
    path.write_bytes(b"epoch,loss\n" + data[:cut])
    loader = CsvLoader(path, max_line=64)
    first = loader.load()
    with open(path, "ab") as fh:
        fh.write(data[cut:] + b"\n")
    second = loader.load()
    for problem in first.problems + second.problems:
        assert problem.path == str(path) and problem.position.startswith("line ")
    assert len(first.problems + second.problems) == len(set(first.problems + second.problems))


def test_huge_line_skipped_with_bounded_memory(tmp_path: Path) -> None:
    """A 24 MiB line (written in pieces) is skipped and reported once; memory stays small."""
    path = tmp_path / "huge.csv"
    path.write_bytes(b"epoch,loss\n0,1\n")
    loader = CsvLoader(path)
    loader.load()
    piece = b"7," + b"9" * (8 << 20)
    tracemalloc.start()
    problems: list[Problem] = []
    for _ in range(3):
        with open(path, "ab") as fh:
            fh.write(piece)
        problems += loader.load().problems
    with open(path, "ab") as fh:
        fh.write(b"\n1,2\n")
    batch = loader.load()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    problems += batch.problems
    assert [str(p) for p in problems] == [f"{path}: line 3: longer than 1048576 bytes; skipped"]
    assert [(t, s) for t, s, _, _ in points(batch)] == [("epoch", 1), ("loss", 1)]
    assert peak < 6 << 20  # a few read chunks, not the line


def test_sniff_by_content() -> None:
    """Headers naming losses or a step column are CSV logs; text and JSON logs are not."""
    assert sniff(b"epoch,accuracy,loss,val_accuracy,val_loss\r\n0,0.5,1.2,0.4,1.3\r\n")
    assert sniff(b"epoch;loss\n0;1\n")
    assert sniff(b"\xef\xbb\xbfepoch\tTrainLoss\n")
    assert sniff(b"epoch,step,lr-Adam\n0,9,0.001\n")
    assert sniff(b"epoch,train_loss,valid_loss,accuracy,time\n0,1,#na#,#na#,00:01\n")
    assert sniff(b",loss,val_loss\n0,1,2\n")
    assert not sniff(b"epoch: 3, loss: 0.5, val_loss: 0.6\nepoch: 4, loss: 0.4, val_loss: 0.5\n")
    assert not sniff(b"Epoch [3/30] TrainLoss=1.52 | ValLoss=1.18 | LR=1e-4\n")
    assert not sniff(b'{"loss": 1, "step": 2}\n')
    assert not sniff(b"name,address,phone\nbob,x,1\n")
    assert not sniff(b"epoch,loss\n0,1,2\n")
    assert not sniff(b"")


def test_lightning_hparams_yaml_matches_pyyaml(tmp_path: Path) -> None:
    """The small YAML reader agrees with PyYAML on what Lightning writes (flattened)."""
    yaml = pytest.importorskip("yaml")
    hparams = {
        "batch_size": 32, "lr": 1e-5, "model_name": "resnet18", "use_bn": True,
        "dropout": None, "weight_decay": 0.0005, "betas": [0.9, 0.999], "version": "1.10",
        "optimizer": {"name": "adam", "eps": 1e-8, "nested": {"k": 3}}, "max": float("inf"),
        "odd": "yes: no", "quote": "it's",
    }  # fmt: skip
    path = tmp_path / "hparams.yaml"
    with open(path, "w", newline="") as fh:
        yaml.dump(hparams, fh)
    expected: dict[str, Any] = {}

    def flatten(d: dict[str, Any], prefix: str) -> None:
        for k, v in d.items():
            if isinstance(v, dict):
                flatten(v, f"{prefix}{k}.")
            elif v is not None and not isinstance(v, list):
                expected[prefix + k] = float(v) if type(v) is int else v

    flatten(yaml.safe_load(path.read_text()), "")
    assert read_lightning_hparams(path) == expected
    assert read_lightning_hparams(tmp_path / "missing.yaml") == {}
