"""TextLogLoader: key=value and key: value pairs in plain stdout logs."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from loader_helpers import FAST
from loader_helpers import append_in_chunks

from advisor.errors import ConfigError
from advisor.model import Batch
from advisor.sources.textlog import TextLogLoader
from advisor.sources.textlog import sniff

# (tag, step, repr(value)): a text log has no wall times, so they are read times.
Point = tuple[str, int, str]


def points(batch: Batch) -> list[Point]:
    s = batch.scalars
    return [
        (s.tags[int(t)], int(st_), repr(float(v)))
        for t, st_, v in zip(s.tag_index, s.step, s.value, strict=True)
    ]


def read(tmp_path: Path, text: str, pattern: str | None = None) -> list[Point]:
    path = tmp_path / "train.log"
    path.write_text(text)
    return points(TextLogLoader(path, pattern).load())


def test_epoch_bracket_form(tmp_path: Path) -> None:
    """Epoch [k/N] gives the step and an epoch point; key=value pairs are tags."""
    got = read(tmp_path, "Epoch [3/30] TrainLoss=1.52 | ValLoss=1.18 | LR=1e-4\n")
    assert got == [
        ("epoch", 3, "3.0"),
        ("TrainLoss", 3, "1.52"),
        ("ValLoss", 3, "1.18"),
        ("LR", 3, "0.0001"),
    ]


def test_step_word_and_colon_pairs(tmp_path: Path) -> None:
    """'step N' and 'key: value' forms; step beats epoch, which stays a tag."""
    got = read(
        tmp_path,
        "step 100: loss=0.52, val_loss=0.61\n"
        "epoch: 3 loss: 0.41 val_loss: 0.55\n"
        "Iter [200/5000] epoch=4 lr: -3.2E+05, loss=nan grad=inf\n",
    )
    assert got == [
        ("loss", 100, "0.52"), ("val_loss", 100, "0.61"),
        ("epoch", 3, "3.0"), ("loss", 3, "0.41"), ("val_loss", 3, "0.55"),
        ("epoch", 200, "4.0"), ("lr", 200, "-320000.0"), ("loss", 200, "nan"),
        ("grad", 200, "inf"),
    ]  # fmt: skip


def test_keras_stdout_with_progress_redraws(tmp_path: Path) -> None:
    """Keras prints 'Epoch k/N' on its own line and redraws progress with carriage returns."""
    got = read(
        tmp_path,
        "Epoch 1/2\n"
        "1/9 [==>...] - ETA: 0:01:23 - loss: 2.3\r9/9 [=====] - 5s 3ms/step - loss: 0.2973"
        " - accuracy: 0.9134 - val_loss: 0.1000\n"
        "Epoch 2/2\n"
        "9/9 [=====] - 5s 3ms/step - loss: 0.25\n",
    )
    assert got == [
        ("epoch", 1, "1.0"), ("loss", 1, "0.2973"), ("accuracy", 1, "0.9134"),
        ("val_loss", 1, "0.1"), ("epoch", 2, "2.0"), ("loss", 2, "0.25"),
    ]  # fmt: skip


def test_without_step_counts_metric_lines(tmp_path: Path) -> None:
    """Lines without a metric are ignored; without a step the metric line count is used."""
    got = read(
        tmp_path,
        "2024-01-01 12:30:45,123 INFO starting, version 1.2.3\n"
        "loss=0.9 acc=0.1\n"
        "time: 12:30:45 x=1.2.3\n"
        "loss = 0.8\n",
    )
    assert got == [("loss", 0, "0.9"), ("acc", 0, "0.1"), ("loss", 1, "0.8")]


def test_printed_dicts_and_tensors(tmp_path: Path) -> None:
    """The Hugging Face Trainer prints each log as a Python dict, its epoch as progress
    (fractional): such a file is stepped by its metric lines, the epoch kept as a tag.
    Dicts with whole epochs keep epochs as steps; a printed tensor is its number."""
    trainer = (
        "***** Running training *****\n"
        "  Num examples = 1,000\n"  # a metric line too: the count starts at 1 below
        "  Num Epochs = 3\n"  # the planned length, not a second epoch curve
        "{'loss': 0.6916, 'grad_norm': 1.27, 'learning_rate': 4.8e-05, 'epoch': 0.5}\n"
        "\r 25%|##5       | 50/200 [00:05<00:15,  9.85it/s]\r 50%|#####     | 100/200\n"
        "{'eval_loss': 0.6612, 'eval_accuracy': 0.62, 'eval_runtime': 1.03, 'epoch': 1.0}\n"
        "{'loss': 0.51, 'grad_norm': 0.9, 'learning_rate': 2.4e-05, 'epoch': 1.5}\n"
        "{'eval_loss': 0.58, 'eval_accuracy': 0.7, 'eval_runtime': 1.01, 'epoch': 2.0}\n"
    )
    (tmp_path / "trainer.log").write_text(trainer)
    assert TextLogLoader(tmp_path / "trainer.log").load().hparams == {"epochs": 3.0}
    got = read(tmp_path, trainer)
    assert "Epochs" not in {p[0] for p in got}
    assert [p for p in got if p[0] in ("epoch", "loss", "eval_loss")] == [
        ("epoch", 1, "0.5"), ("loss", 1, "0.6916"),
        ("epoch", 2, "1.0"), ("eval_loss", 2, "0.6612"),
        ("epoch", 3, "1.5"), ("loss", 3, "0.51"),
        ("epoch", 4, "2.0"), ("eval_loss", 4, "0.58"),
    ]  # fmt: skip
    assert ("learning_rate", 3, "2.4e-05") in got
    assert sniff(trainer.encode())

    loop = (
        '{"epoch": 1, "val_loss": 0.9}\n'
        "epoch 2 loss: tensor(0.6100, grad_fn=<NllLossBackward0>) 'val_loss': tensor([0.81])\n"
        "epoch 3 loss: tensor(0.5, device='cuda:0') val_loss: tensor(0.7200)\n"
    )
    assert read(tmp_path, loop) == [
        ("epoch", 1, "1.0"), ("val_loss", 1, "0.9"),
        ("epoch", 2, "2.0"), ("loss", 2, "0.61"), ("val_loss", 2, "0.81"),
        ("epoch", 3, "3.0"), ("loss", 3, "0.5"), ("val_loss", 3, "0.72"),
    ]  # fmt: skip


def test_epoch_k_of_n_states_the_planned_epochs(tmp_path: Path) -> None:
    """Keras prints ``Epoch k/N``: N is the planned number of epochs (hyper-parameter
    ``epochs``), given once, and again when a resumed run states another."""
    path = tmp_path / "train.log"
    path.write_text("Epoch 1/30\n9/9 - loss: 0.5 - val_loss: 0.6\nEpoch 2/30\n")
    loader = TextLogLoader(path)
    assert loader.load().hparams == {"epochs": 30.0}
    with path.open("a") as fh:
        fh.write("9/9 - loss: 0.4 - val_loss: 0.5\nEpoch 3/30\n")
    assert loader.load().hparams == {}
    with path.open("a") as fh:
        fh.write("Epoch 4/50 loss: 0.3\nepoch: 5/60 loss=0.2\nEpoch 70/60 loss=0.1\n")
    assert loader.load().hparams == {"epochs": 60.0}  # not 70/60: a count past its total
    # Lightning's RichProgressBar counts from 0: "Epoch 0/9" to "Epoch 9/9" are 10 epochs.
    path.write_text("".join(f"Epoch {k}/9 ━━━━ 50/50 0:00:01 train_loss: 0.5\n" for k in range(3)))
    assert TextLogLoader(path).load().hparams == {"epochs": 10.0}


def bar(epoch: int) -> str:
    """fastprogress's console bar for one epoch, as it draws it (redrawn after a CR)."""
    head = f"\rEpoch {epoch}/3 : "
    return (
        f"\u2588\r{head}|----| 0.00% [0/5 00:00<?]{head}|\u2588\u2588--| 40.00% [2/5 00:00<00:00]"
        f"{head}|\u2588\u2588\u2588\u2588| 100.00% [5/5 00:00<00:00]{head}{' ' * 20}\r"
    )


def test_fastai_console_table(tmp_path: Path) -> None:
    """fastai prints a table to the console (fastprogress 1.1.6 ``ConsoleMasterBar``,
    its output copied here with shorter bars): a header, then a row per epoch after the
    epoch's progress bar. The rows are read, the time column skipped."""
    text = "\u2588\repoch     train_loss  valid_loss  accuracy  time    \n" + "".join(
        bar(e + 1)
        + f"{e}         {1.2 - 0.2 * e:.6f}    {1.0 - 0.1 * e:.6f}    0.600000  00:05     \n"
        for e in range(3)
    )
    assert sniff(text.encode())
    got = read(tmp_path, text)
    assert [p for p in got if p[0] == "valid_loss"] == [
        ("valid_loss", 0, "1.0"), ("valid_loss", 1, "0.9"), ("valid_loss", 2, "0.8")
    ]  # fmt: skip
    assert {p[0] for p in got} == {"epoch", "train_loss", "valid_loss", "accuracy"}
    assert not sniff(b"epoch loss\nsomething else\n")
    assert read(tmp_path, "step  loss  acc\n10  0.5  #na#\nnot a row\n20  0.4  0.9\n") == [
        ("loss", 10, "0.5"), ("loss", 20, "0.4"), ("acc", 20, "0.9")
    ]  # fmt: skip


def test_user_pattern(tmp_path: Path) -> None:
    """A pattern with named groups name and value replaces the default."""
    got = read(
        tmp_path,
        "iter 5 | metric loss is 0.5 | metric acc is 0.25 | other=3\n",
        r"metric (?P<name>\w+) is (?P<value>[-+.\deE]+)",
    )
    assert got == [("loss", 5, "0.5"), ("acc", 5, "0.25")]


def test_bad_user_pattern_is_a_config_error(tmp_path: Path) -> None:
    """A pattern that does not compile or lacks a group fails at construction."""
    with pytest.raises(ConfigError, match="lacks the named group"):
        TextLogLoader(tmp_path / "x.log", r"(?P<name>\w+)=(\d+)")
    with pytest.raises(ConfigError, match="not a regular expression"):
        TextLogLoader(tmp_path / "x.log", r"(?P<name>")


TEXT = (
    "\ufeffEpoch 1/3\r\nloss: 2.5 - val_loss: 3.0\r\nstep 7: loss=1e-4\n\n"
    "some noise\nEpoch [2/3] TrainLoss=-1.5E+02 | ValLoss=inf\n"
).encode()


@FAST
@given(cuts=st.lists(st.integers(0, len(TEXT)), max_size=12))
def test_appending_in_chunks_equals_reading_whole(tmp_path: Path, cuts: list[int]) -> None:
    """Appending in chunks of any size (down to one byte) gives the same points."""
    seen = append_in_chunks(TextLogLoader, tmp_path / "chunked.log", TEXT, cuts, points)
    whole = tmp_path / "whole.log"
    whole.write_bytes(TEXT)
    assert seen == points(TextLogLoader(whole).load()) and len(seen) == 8


@FAST
@given(data=st.binary(max_size=500))
def test_damaged_input_never_raises(tmp_path: Path, data: bytes) -> None:
    """Random bytes never raise; the only problems are over-long lines, by number."""
    path = tmp_path / "damaged.log"
    path.write_bytes(data + b"\n")
    batch = TextLogLoader(path, max_line=50).load()
    assert all(p.position.startswith("line ") for p in batch.problems)


@pytest.mark.parametrize(
    "text",
    [
        "Epoch 1/" + "9" * 5000 + " loss=1\n",  # past int()'s 4300 digits
        "epoch loss\n" + "9" * 5000 + " 0.5\n",
        "epoch loss\n\u00b2 0.5\n",  # a digit to str.isdigit(), not to int()
        "step loss\n99999999999999999999 0.5\n",  # past int64
        "Epoch " + "9" * 5000 + "/3 loss=1\n",  # an infinite epoch
        "loss=1 epoch=" + "9" * 400 + "\n",
    ],
)
def test_absurd_numbers_never_raise(tmp_path: Path, text: str) -> None:
    """Numbers no step or epoch can be are no step or epoch: no exception."""
    path = tmp_path / "train.log"
    path.write_text(text)
    batch = TextLogLoader(path).load()
    assert all(abs(int(s)) < 1 << 62 for s in batch.scalars.step)


def test_sniff() -> None:
    """Two lines or more with a loss-like pair make a text log."""
    assert sniff(b"Epoch [1/3] TrainLoss=1.5 | ValLoss=1.2\nEpoch [2/3] TrainLoss=1.4\n")
    assert sniff(b"Epoch 1/2\n9/9 - loss: 0.5 - accuracy: 0.9\n9/9 - loss: 0.4\n")
    assert not sniff(b"Epoch [1/3] TrainLoss=1.5\n")
    assert not sniff(b"starting\nworkers=4 threads=8\nport=80\n")
    assert not sniff(b"")
