"""The committed fixtures: they regenerate byte for byte, and the advisor reads them exactly.

TensorBoard fixtures are compared with tensorboard's own EventAccumulator, every other
format with a plain parse written here (csv and json modules, a regex), point for
point: (tag, step, wall_time, value), NaN equal to NaN. Where TensorBoard keeps steps
that a restart orphaned (it purges only on a SessionLog START in files of version 2),
the expected purge is applied here explicitly: a tag's points at steps >= a newly
logged lower step are dropped.
"""

from __future__ import annotations

import csv
import json
import math
import re
import struct
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
DATA_DIRS = ("tb", "csv", "hf", "jsonl", "json", "mlflow", "text", "damaged")
KERAS_SUBDIRS = ("train", "validation")
TIMESTAMP_DIR = re.compile(r"^\d{9,}(\.\d+)?$")
NAN = math.nan

Point = tuple[int, float, float]  # step, wall_time, value
Points = dict[str, list[Point]]


# ---------------------------------------------------------------- comparison helpers


def same_float(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def assert_same_points(actual: Points, expected: Points) -> None:
    """Equal tags, and per tag the same (step, wall_time, value) sequence."""
    assert sorted(actual) == sorted(expected)
    for tag, want in expected.items():
        got = actual[tag]
        assert len(got) == len(want), f"{tag}: {len(got)} points, expected {len(want)}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            ok = g[0] == w[0] and same_float(g[1], w[1]) and same_float(g[2], w[2])
            assert ok, f"{tag}[{i}]: got {g}, expected {w}"


def purge_restarts(points: Points) -> Points:
    """Drop the points that a later, lower step of the same tag orphaned."""
    out: Points = {}
    for tag, seq in points.items():
        kept: list[Point] = []
        for p in seq:
            if kept and p[0] < kept[-1][0]:
                kept = [k for k in kept if k[0] < p[0]]
            kept.append(p)
        out[tag] = kept
    return out


def read(path: Path, problems: list[Any] | None = None) -> dict[str, Points]:
    """read_scalars(path) as run → tag → points, in the frame's order."""
    from advisor import read_scalars

    frame = read_scalars(path, on_problem=None if problems is None else problems.append)
    runs: dict[str, Points] = defaultdict(lambda: defaultdict(list))
    for run, tag, step, wall, value in zip(
        frame["run"], frame["tag"], frame["step"], frame["wall_time"], frame["value"], strict=True
    ):
        runs[str(run)][str(tag)].append((int(step), float(wall), float(value)))
    return {run: dict(tags) for run, tags in runs.items()}


def read_one_run(path: Path, problems: list[Any] | None = None) -> Points:
    runs = read(path, problems)
    assert len(runs) <= 1, f"expected one run, got {sorted(runs)}"
    return next(iter(runs.values()), {})


# ---------------------------------------------------------------- (a) regeneration


def test_regenerating_writes_the_committed_bytes(tmp_path: Path) -> None:
    """fixtures/generate.py writes, into an empty folder, exactly the committed files."""
    pytest.importorskip("torch")
    pytest.importorskip("tensorboardX")
    subprocess.run(
        [sys.executable, str(FIXTURES / "generate.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    try:
        import lightning  # noqa: F401
    except ImportError:
        lightning_installed = False
    else:
        lightning_installed = True
    for d in DATA_DIRS:
        committed = {p.relative_to(FIXTURES) for p in (FIXTURES / d).rglob("*") if p.is_file()}
        fresh = {p.relative_to(tmp_path) for p in (tmp_path / d).rglob("*") if p.is_file()}
        assert fresh == committed
        for rel in sorted(committed):
            # Without Lightning the script writes the documented layout by hand, which
            # differs from what Lightning itself writes (e.g. its header rewrite).
            if "lightning_logs" in rel.parts and not lightning_installed:
                continue
            assert (tmp_path / rel).read_bytes() == (FIXTURES / rel).read_bytes(), rel


# ---------------------------------------------------------------- (b) TensorBoard


def accumulator_points(directory: Path, prefix: str = "") -> Points:
    """What EventAccumulator keeps of one directory: scalars, and 'scalars' tensors."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray

    acc = EventAccumulator(str(directory), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    out: Points = {}
    for tag in tags["scalars"]:
        out[prefix + tag] = [(e.step, e.wall_time, e.value) for e in acc.Scalars(tag)]
    for tag in tags["tensors"]:
        if acc.SummaryMetadata(tag).plugin_data.plugin_name != "scalars":
            continue
        out[prefix + tag] = [
            (e.step, e.wall_time, float(make_ndarray(e.tensor_proto).item()))
            for e in acc.Tensors(tag)
        ]
    return out


def expected_tb_run(run_dir: Path) -> Points:
    """EventAccumulator over every directory of a run (Keras train/ and validation/ as
    tag prefixes, torch add_hparams' timestamp directory folded in), then the purge."""
    merged: Points = {}
    dirs = sorted({p.parent for p in run_dir.rglob("*tfevents*")})
    for d in dirs:
        prefix = f"{d.name}/" if d != run_dir and d.name in KERAS_SUBDIRS else ""
        assert d == run_dir or prefix or TIMESTAMP_DIR.match(d.name), d
        for tag, points in accumulator_points(d, prefix).items():
            assert tag not in merged, f"{tag} in two directories of {run_dir}"
            merged[tag] = points
    return purge_restarts(merged)


TB_RUNS = sorted(p.name for p in (FIXTURES / "tb").iterdir() if p.is_dir())


@pytest.mark.parametrize("name", TB_RUNS)
def test_tensorboard_fixture_matches_event_accumulator(name: str) -> None:
    """Every TensorBoard fixture reads as EventAccumulator reads it, point for point."""
    pytest.importorskip("tensorboard")
    pytest.importorskip("advisor.sources.tfevents")
    run_dir = FIXTURES / "tb" / name
    assert_same_points(read_one_run(run_dir), expected_tb_run(run_dir))


def test_restart_fixtures_do_purge() -> None:
    """The restart fixtures hold orphaned steps, so the purge above is really tested."""
    pytest.importorskip("tensorboard")
    multi = FIXTURES / "tb" / "torch_multi_file"
    kept = accumulator_points(multi)
    assert len(kept["Loss/train"]) == 50  # TensorBoard keeps the orphaned 20..29
    assert len(purge_restarts(kept)["Loss/train"]) == 40
    restarted = accumulator_points(FIXTURES / "tb" / "session_log_restart")
    assert [p[0] for p in restarted["loss"]] == list(range(41))  # purged on START


def test_tensorboard_root_names_runs_by_directory() -> None:
    """Reading fixtures/tb as one root gives one run per fixture directory."""
    pytest.importorskip("advisor.sources.tfevents")
    assert sorted(read(FIXTURES / "tb")) == TB_RUNS


# ---------------------------------------------------------------- (b) other formats


def csv_points(path: Path, step_column: str) -> Points:
    """A plain parse of a CSV log: numbers are points, at the row's ``step_column``.

    ``epoch`` is a tag even when it is the step; ``time`` (fastai's mm:ss) and a
    ``step`` column are not; a repeated header (runs appended) is skipped; an
    unterminated last line is not read.
    """
    text = path.read_bytes().decode("utf-8-sig")
    lines = text.splitlines()
    if text and not text.endswith(("\n", "\r")):
        lines = lines[:-1]
    header = lines[0]
    sep = ";" if header.count(";") > header.count(",") else ","
    rows = list(csv.reader(lines, delimiter=sep))
    names = rows[0]
    points: Points = defaultdict(list)
    for row in rows[1:]:
        if row == names:
            continue
        step = int(float(row[names.index(step_column)]))
        for name, cell in zip(names, row, strict=False):
            if name in ("time", "step"):
                continue
            try:
                value = float(cell)
            except ValueError:
                continue
            points[name].append((step, NAN, value))
    return purge_restarts(dict(points))


CSV_CASES = {
    "csv/keras/training.log": "epoch",
    "csv/keras_semicolon/train_log.csv": "epoch",
    "csv/keras_appended/training_history.csv": "epoch",
    "csv/lightning/lightning_logs/version_0/metrics.csv": "step",
    "csv/fastai/history.csv": "epoch",
    "damaged/csv_half_line/training.log": "epoch",
    "damaged/csv_bom/training.log": "epoch",
    "damaged/csv_crlf/history.csv": "epoch",
    "damaged/csv_nan_inf/training.log": "epoch",
}


@pytest.mark.parametrize("rel", sorted(CSV_CASES))
def test_csv_fixture_matches_plain_parse(rel: str) -> None:
    """Each CSV fixture reads as the csv module parses it."""
    pytest.importorskip("advisor.sources.csvlog")
    path = FIXTURES / rel
    assert_same_points(read_one_run(path.parent), csv_points(path, CSV_CASES[rel]))


def test_appended_keras_runs_keep_the_last_run() -> None:
    """Two fits appended to one CSV: the second (epoch from 0 again) replaces the first."""
    points = csv_points(FIXTURES / "csv/keras_appended/training_history.csv", "epoch")
    assert [p[0] for p in points["loss"]] == list(range(8))


def test_hf_trainer_state_matches_json_parse() -> None:
    """trainer_state.json: every numeric key of each log_history entry, at its step."""
    pytest.importorskip("advisor.sources.hfstate")
    state = json.loads((FIXTURES / "hf/run1/trainer_state.json").read_text())
    points: Points = defaultdict(list)
    for entry in state["log_history"]:
        for key, value in entry.items():
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                points[key].append((entry["step"], NAN, float(value)))
    assert_same_points(read_one_run(FIXTURES / "hf/run1"), purge_restarts(dict(points)))


def test_jsonl_matches_json_parse() -> None:
    """JSON Lines: every number but step and timestamp is a tag, at the line's step."""
    pytest.importorskip("advisor.sources.jsonl")
    points: Points = defaultdict(list)
    for line in (FIXTURES / "jsonl/run1/metrics.jsonl").read_text().splitlines():
        obj = json.loads(line)
        for key, value in obj.items():
            if key not in ("step", "timestamp"):
                points[key].append((obj["step"], obj["timestamp"], float(value)))
    assert_same_points(read_one_run(FIXTURES / "jsonl/run1"), purge_restarts(dict(points)))


def test_mlflow_matches_plain_parse() -> None:
    """MLflow: one tag per metric file, lines ``timestamp_ms value step``."""
    pytest.importorskip("advisor.sources.mlflow")
    points: Points = {}
    for metric in sorted((FIXTURES / "mlflow").rglob("metrics/*")):
        rows = [line.split() for line in metric.read_text().splitlines()]
        points[metric.name] = [(int(s), int(ts) / 1000, float(v)) for ts, v, s in rows]
    assert_same_points(read_one_run(FIXTURES / "mlflow"), purge_restarts(points))


def test_text_log_matches_regex_parse() -> None:
    """stdout: the ``Epoch [k/N] TrainLoss=.. | ValLoss=.. | LR=..`` lines, at step k."""
    pytest.importorskip("advisor.sources.textlog")
    line_re = re.compile(r"^Epoch \[(\d+)/\d+\] TrainLoss=(\S+) \| ValLoss=(\S+) \| LR=(\S+)$")
    points: Points = defaultdict(list)
    for line in (FIXTURES / "text/run1/stdout.log").read_text().splitlines():
        m = line_re.match(line)
        if m:
            epoch = int(m.group(1))
            for tag, text in zip(("epoch", "TrainLoss", "ValLoss", "LR"), m.groups(), strict=True):
                points[tag].append((epoch, NAN, float(text)))
    assert len(points["TrainLoss"]) == 30
    assert_same_points(read_one_run(FIXTURES / "text/run1"), dict(points))


# ---------------------------------------------------------------- damaged files


def record_spans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each complete record of a TFRecord file."""
    spans = []
    at = 0
    while at + 12 <= len(data):
        (length,) = struct.unpack_from("<Q", data, at)
        end = at + 12 + length + 4
        if end > len(data):
            break
        spans.append((at, end))
        at = end
    return spans


def _intact_and_damaged() -> tuple[Points, Points, Points]:
    """The source of the damaged tfevents cases, split around its middle record (the one
    the generator damages): points before it, the record's own, and those after."""
    from tensorboard.compat.proto import event_pb2

    source = next((FIXTURES / "tb/torch_legacy").glob("*tfevents*")).read_bytes()
    spans = record_spans(source)
    middle = len(spans) // 2
    parts: tuple[Points, Points, Points] = ({}, {}, {})
    for i, (start, end) in enumerate(spans):
        event = event_pb2.Event.FromString(source[start + 12 : end - 4])
        part = parts[0] if i < middle else parts[1] if i == middle else parts[2]
        for v in event.summary.value:
            part.setdefault(v.tag, []).append((event.step, event.wall_time, v.simple_value))
    return parts


def _contains(actual: Points, expected: Points) -> bool:
    for tag, want in expected.items():
        got = actual.get(tag, [])
        for w in want:
            if not any(g[0] == w[0] and same_float(g[2], w[2]) for g in got):
                return False
    return True


def _merge(*parts: Points) -> Points:
    out: Points = defaultdict(list)
    for part in parts:
        for tag, points in part.items():
            out[tag].extend(points)
    return dict(out)


def test_truncated_event_file_matches_event_accumulator() -> None:
    """A file cut mid-record reads as TensorBoard reads it: every complete record."""
    pytest.importorskip("advisor.sources.tfevents")
    run = FIXTURES / "damaged/tb_truncated"
    assert_same_points(read_one_run(run), expected_tb_run(run))


def test_flipped_data_bit_loses_at_most_that_record() -> None:
    """A bit flipped in one record's data: the framing holds, so every other point is read."""
    pytest.importorskip("advisor.sources.tfevents")
    before, middle, after = _intact_and_damaged()
    actual = read_one_run(FIXTURES / "damaged/tb_bitflip_data")
    assert _contains(actual, _merge(before, after))
    extra = sum(map(len, actual.values())) - sum(map(len, _merge(before, after).values()))
    assert 0 <= extra <= sum(map(len, middle.values()))


@pytest.mark.parametrize("case", ["tb_bitflip_length", "tb_absurd_length"])
def test_broken_length_keeps_what_precedes_it(case: str) -> None:
    """A corrupt or absurd length field: points before it are read, nothing is invented,
    nothing huge is allocated, and the problem is reported."""
    pytest.importorskip("advisor.sources.tfevents")
    before, _, after = _intact_and_damaged()
    problems: list[Any] = []
    actual = read_one_run(FIXTURES / "damaged" / case, problems)
    assert _contains(actual, before)
    assert _contains(_merge(before, after), actual)
    assert problems


@pytest.mark.parametrize("case", ["tb_empty", "tb_zeros"])
def test_empty_and_zero_filled_event_files_hold_no_points(case: str) -> None:
    """An empty or zero-filled event file gives no point and no exception."""
    pytest.importorskip("advisor.sources.tfevents")
    assert sum(map(len, read_one_run(FIXTURES / "damaged" / case).values())) == 0


def test_truncated_trainer_state_gives_no_points() -> None:
    """A trainer_state.json cut mid-write is not a version to read."""
    pytest.importorskip("advisor.sources.hfstate")
    assert read_one_run(FIXTURES / "damaged/hf_truncated") == {}


def test_fixtures_stay_small() -> None:
    """Each fixture file is tens of KB at most, the whole folder well under 2 MB."""
    files = [p for d in DATA_DIRS for p in (FIXTURES / d).rglob("*") if p.is_file()]
    assert files
    assert max(p.stat().st_size for p in files) < 64 * 1024
    assert sum(p.stat().st_size for p in files) < 1024 * 1024


@pytest.mark.parametrize(
    ("rel", "problem"),
    [
        ("damaged/csv_half_line", "line 21: last line has no line end (cut off mid-write?)"),
        ("damaged/tb_truncated", "byte 5394: last record incomplete after 15 bytes"),
        ("tb/tensorboardx_cut", "byte 4239: last record incomplete after 40 bytes"),
    ],
)
def test_reading_saved_logs_reports_a_last_record_cut_off(rel: str, problem: str) -> None:
    """Saved logs are read as final: a last line or record the writer never finished is
    reported, with its file and position, and skipped (a live tail waits for it
    silently instead: the loaders' own tests)."""
    problems: list[Any] = []
    read_one_run(FIXTURES / rel, problems)
    assert len(problems) == 1
    assert str(problems[0]).startswith(f"{FIXTURES / rel}/")
    assert f": {problem}" in str(problems[0])
    assert str(problems[0]).endswith("; skipped")


@pytest.mark.parametrize("rel", ["tb/torch_legacy", "csv/keras", "hf/run1", "jsonl"])
def test_reading_whole_logs_reports_nothing(rel: str) -> None:
    """Whole files read as final raise no problem."""
    problems: list[Any] = []
    read(FIXTURES / rel, problems)
    assert problems == []
