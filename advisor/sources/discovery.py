"""Finding the runs and log files under a root.

A run is the directory that holds a log, named by its path relative to the root
(DESIGN.md section 3), with these folds:

- Keras/TF2's ``train/`` and ``validation/`` sub-directories fold into their parent run;
  their tags get the sub-directory as a prefix (``validation/epoch_loss``): always for
  event files, for other formats where two such sub-directories sit side by side.
- DVCLive's ``<run>/plots/metrics/<name>.tsv`` files (one metric each, ``eval/loss``
  in ``plots/metrics/eval/loss.tsv``) belong to ``<run>``, prefixed with the directories
  below ``metrics/``; ``<run>/params.yaml`` holds the hyper-parameters.
- torch's ``SummaryWriter.add_hparams`` writes a sub-directory named by a timestamp;
  it folds into its parent run.
- Hugging Face ``checkpoint-N/`` directories fold into their parent; only the newest
  ``trainer_state.json`` of a run is read (each holds the whole history so far).
- MLflow's file store: ``mlruns/<exp>/<run>/metrics/<key>`` is one tag of the run
  ``mlruns/<exp>/<run>``. MLflow's SQLite store (``mlflow.db``, the default since MLflow
  3.7) holds many runs in one file: each run not deleted is a ``LogFile`` of its own
  (``part`` = its run id), named ``mlflow.db/<exp>/<run>`` after the file store's layout.
- Weights & Biases: ``wandb/run-<time>-<id>/run-<id>.wandb`` holds the whole run; the
  ``files/``, ``logs/`` and ``tmp/`` directories beside it are W&B's own copies and
  logs (the script's stdout is ``files/output.log``), not runs of their own. The run is
  named ``run-<id>``: a resumed run (``wandb.init(resume=...)``, a preempted job) writes
  a new ``run-<time>-<id>`` directory, read after the earlier one into the same run.
- Ray Tune: a trial directory (``progress.csv``, ``result.json``, an event file) is a
  run; its ``params.json`` is the hyper-parameters.
- Sacred's ``FileStorageObserver``: a run directory holds ``run.json``, ``metrics.json``
  (read), ``config.json`` (the hyper-parameters) and ``cout.txt`` (the captured stdout,
  not read: its metric lines would be read twice).

CSV, JSON Lines and plain-text logs are recognised by content, whatever their name, and
so are Keras histories saved as ``.json``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from advisor.errors import InputError

TFEVENTS = "tfevents"
CSV = "csv"
HFSTATE = "hfstate"
JSONL = "jsonl"
MLFLOW = "mlflow"
TEXT = "text"
LIGHTNING_HPARAMS = "lightning_hparams"
MLFLOW_PARAMS = "mlflow_params"
MLFLOW_DB = "mlflow_db"
WANDB = "wandb"
SERIES_JSON = "series_json"
JSON_CONFIG = "json_config"

_KERAS_SUBDIRS = frozenset({"train", "validation", "eval", "evaluation", "val", "valid", "test"})
_TIMESTAMP_DIR = re.compile(r"^\d{9,}(\.\d+)?$")
_CHECKPOINT_DIR = re.compile(r"^checkpoint-(\d+)$")
_WANDB_RUN_DIR = re.compile(r"^(?P<mode>offline-)?run-\d{8}_\d{6}-(?P<id>[0-9a-z]+)$")
_SKIP_DIRS = frozenset(
    {".git", ".venv", "venv", "__pycache__", "node_modules", ".ipynb_checkpoints"}
)
# Files with these endings are never logs; skipping them saves a read of their head.
_BINARY_SUFFIXES = frozenset(
    {".pt", ".pth", ".ckpt", ".bin", ".safetensors", ".h5", ".keras", ".pkl", ".npy", ".npz",
     ".onnx", ".png", ".jpg", ".jpeg", ".gif", ".pdf", ".zip", ".gz", ".tar", ".pb", ".yaml",
     ".yml", ".py", ".md", ".html", ".js", ".css", ".index", ".meta", ".lock"}
)  # fmt: skip
# Beside a ``.wandb`` file: W&B's copies of the run's files (stdout among them), its
# debug logs and scratch space, all of it also in the .wandb file or not metrics.
_WANDB_SIDE_DIRS = frozenset({"files", "logs", "tmp"})
# Beside Sacred's run.json: how each file is read ("": not read).
_SACRED_FILES = {"metrics.json": SERIES_JSON, "config.json": JSON_CONFIG, "cout.txt": ""}
_SNIFF_SUFFIXES = frozenset({"", ".csv", ".tsv", ".log", ".txt", ".out", ".jsonl", ".ndjson"})
DB_SUFFIXES = frozenset({".db", ".sqlite", ".sqlite3"})
# How much of a text file's start is read to recognise its format: a stdout log often
# opens with the model's printout (torch's repr of a ResNet is 10-30 KB) or a config
# dump before its first metric line, and 4 KiB missed those.
SNIFF_BYTES = 64 << 10
_FIRST_SNIFF = 4096


@dataclass(frozen=True, slots=True)
class LogFile:
    """One log file and how to read it.

    Attributes:
        path: the file.
        run: the run it belongs to.
        format: one of the format names above.
        tag_prefix: prepended to its tags (Keras sub-directories).
        tag: for formats with one tag per file (MLflow), the tag.
        part: for files that hold several runs (an MLflow database), the one read
            (its run id); files of one run have none.
    """

    path: Path
    run: str
    format: str
    tag_prefix: str = ""
    tag: str = ""
    part: str = ""


def root_labels(roots: Sequence[Path]) -> list[str]:
    """A name per root, to put before its runs' names when there are several roots.

    One root needs none (""). Several get the fewest trailing path components that tell
    them apart (``a/runs`` and ``b/runs`` → ``a/runs``, ``b/runs``), so that a run
    ``exp1`` under each stays two runs instead of one with both logs merged. A root given
    twice gets the same label (the callers read each root once).
    """
    if len(roots) < 2:
        return [""] * len(roots)
    parts = [Path(os.path.abspath(r)).parts[1:] for r in roots]
    distinct = len({os.path.abspath(r) for r in roots})
    for k in range(1, max(len(p) for p in parts) + 1):
        labels = ["/".join(p[-k:]) or "/" for p in parts]
        if len(set(labels)) == distinct:
            return labels
    return ["/".join(p) or "/" for p in parts]


def unique_roots(roots: Sequence[Path]) -> list[Path]:
    """``roots`` without repeats of the same directory, in order."""
    seen: set[str] = set()
    out: list[Path] = []
    for r in roots:
        key = os.path.abspath(r)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def discover(root: Path, label: str = "") -> list[LogFile]:
    """Every log file under ``root`` (a directory or one file), in reading order.

    Files of a run are ordered by name, which for TensorBoard is their creation time.

    Args:
        root: a directory or one log file.
        label: put before every run name (see ``root_labels``); a run that is the root
            itself is called by the label alone.

    Raises:
        InputError: ``root`` does not exist or cannot be read.
    """
    if not root.exists():
        raise InputError(f"{root}: no such file or directory")
    if root.is_file():
        run = label or root.parent.name or str(root.parent)
        if root.suffix.lower() in DB_SUFFIXES:
            runs = _mlflow_db_files(root, root.parent, run, label)
            if runs is None:
                raise InputError(f"{root}: not a training log this tool can read")
            return runs
        found = _classify(root, root.parent, run, label)
        if found is None:
            raise InputError(f"{root}: not a training log this tool can read")
        return [found]
    if not root.is_dir():
        raise InputError(f"{root}: not a regular file or directory")
    if not os.access(root, os.R_OK | os.X_OK):
        raise InputError(f"{root}: permission denied")
    files = [f for f in _walk(root, label)]
    return _newest_hf_states(sorted(files, key=lambda f: (f.run, f.tag_prefix, f.path.name)))


def _walk(root: Path, label: str) -> Iterator[LogFile]:
    for dirpath, dirnames, filenames in os.walk(root, onerror=None):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        if any(name.endswith(".wandb") for name in filenames):
            dirnames[:] = [d for d in dirnames if d not in _WANDB_SIDE_DIRS]
        here = Path(dirpath)
        run = _run_name(root, here, label)
        for name in sorted(filenames):
            if not (here / name).is_file():
                continue  # a FIFO or socket: opening it could block forever
            if os.path.splitext(name)[1].lower() in DB_SUFFIXES:
                yield from _mlflow_db_files(here / name, root, run, label) or ()
                continue
            found = _classify(here / name, root, run, label)
            if found is not None:
                yield found


def _dvclive_metrics(parts: Sequence[str]) -> int:
    """The index of ``plots`` in ``.../plots/metrics/...`` (DVCLive's layout), else -1."""
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "plots" and parts[i + 1] == "metrics":
            return i
    return -1


def _run_name(root: Path, directory: Path, label: str) -> str:
    rel = directory.relative_to(root).parts
    parts = list(rel)
    dvclive = _dvclive_metrics(parts)
    if dvclive >= 0:
        del parts[dvclive:]  # DVCLive: every metric's file belongs to the run above plots/
    while parts and (
        _TIMESTAMP_DIR.match(parts[-1]) or _CHECKPOINT_DIR.match(parts[-1])
    ):  # fmt: skip
        parts.pop()
    if parts and parts[-1] in _KERAS_SUBDIRS and len(parts) >= 1:
        parts.pop()
    wandb = _WANDB_RUN_DIR.match(parts[-1]) if parts else None
    if wandb is not None:
        parts[-1] = f"{wandb['mode'] or ''}run-{wandb['id']}"
    if not parts:
        return label or root.resolve().name or "."
    return "/".join([label, *parts] if label else parts)


def _tag_prefix(path: Path, root: Path, *, alone: bool = False) -> str:
    """What a log's tags are prefixed with: the sub-directory that a fold into the parent
    run loses (``validation/`` of Keras, ``eval/`` of DVCLive's ``plots/metrics/eval/``),
    so that ``train/loss.tsv`` and ``eval/loss.tsv`` stay two tags of one run.

    A Keras-style sub-directory with no sibling of its kind (YOLO's ``runs/detect/train/``
    holds one ``results.csv`` of train and val columns) prefixes nothing unless ``alone``
    (TF2's event files, prefixed always): there is nothing to keep apart, and a run
    directory named ``test`` would turn its training loss into ``test/loss``, a
    validation loss by its words."""
    if path.parent == root:
        return ""
    parts = path.parent.relative_to(root).parts
    dvclive = _dvclive_metrics(parts)
    if dvclive >= 0:
        return "".join(f"{p}/" for p in parts[dvclive + 2 :])
    if parts[-1] not in _KERAS_SUBDIRS:
        return ""
    if not alone:
        try:
            siblings = {e.name for e in os.scandir(path.parent.parent) if e.is_dir()}
        except OSError:
            return ""
        if len(siblings & _KERAS_SUBDIRS) < 2:
            return ""
    return f"{parts[-1]}/"


def _classify(path: Path, root: Path, run: str, label: str) -> LogFile | None:
    name = path.name
    if "tfevents" in name:
        return LogFile(path, run, TFEVENTS, tag_prefix=_tag_prefix(path, root, alone=True))
    if name == "trainer_state.json":
        return LogFile(path, run, HFSTATE)
    if name.endswith(".wandb"):
        return LogFile(path, run, WANDB)
    if name == "params.json" and (path.parent / "progress.csv").is_file():
        # A Ray Tune trial: its config (its metrics are in progress.csv and, as the
        # same numbers, in result.json, which is not read, and an event file).
        return LogFile(path, run, JSON_CONFIG)
    if name in _SACRED_FILES and (path.parent / "run.json").is_file():
        # A Sacred run (FileStorageObserver): its metrics and config; cout.txt is the
        # script's captured stdout, whose metric lines would be read a second time.
        sacred = _SACRED_FILES[name]
        return LogFile(path, run, sacred) if sacred else None
    if name == "hparams.yaml" or (name == "params.yaml" and (path.parent / "plots").is_dir()):
        # Lightning's hparams.yaml; DVCLive's params.yaml, beside its plots/ directory.
        return LogFile(path, run, LIGHTNING_HPARAMS)
    if name == "meta.yaml" and (path.parent / "params").is_dir():
        # An MLflow run: its params directory holds the hyper-parameters.
        return LogFile(path.parent / "params", run, MLFLOW_PARAMS)
    mlflow = _mlflow_tag(path)
    if mlflow is not None:
        run_dir, tag = mlflow
        return LogFile(
            path, _run_name(root, run_dir, label) if run_dir != root else run, MLFLOW, tag=tag
        )
    suffix = path.suffix.lower()
    if suffix == ".json":
        if not _is_keras_history(path):
            return None
        return LogFile(path, run, SERIES_JSON, tag_prefix=_tag_prefix(path, root))
    if suffix in _BINARY_SUFFIXES or suffix not in _SNIFF_SUFFIXES:
        return None
    fmt = sniff(path)
    return LogFile(path, run, fmt, tag_prefix=_tag_prefix(path, root)) if fmt else None


def _is_keras_history(path: Path) -> bool:
    """Whether a ``.json`` file is a saved Keras history (``json.dump(history.history)``)."""
    from advisor.sources import seriesjson

    try:
        with path.open("rb") as fh:
            return seriesjson.sniff(fh.read(_FIRST_SNIFF))
    except OSError:
        return False


def in_wandb_side_dir(path: Path, root: Path) -> bool:
    """Whether ``path`` lies in the ``files/``, ``logs/`` or ``tmp/`` directory beside a
    W&B run's ``.wandb`` file (never a log of its own: see the module docstring).

    Only directories below the watched ``root`` count: a root under ``/tmp`` is not a
    W&B side directory because of a ``.wandb`` file in ``/``.
    """
    for parent in path.parents:
        if parent == root or root not in parent.parents:
            break
        if parent.name in _WANDB_SIDE_DIRS:
            try:
                if any(n.endswith(".wandb") for n in os.listdir(parent.parent)):
                    return True
            except OSError:
                pass
    return False


def _mlflow_db_files(path: Path, root: Path, run: str, label: str) -> list[LogFile] | None:
    """A LogFile per run of an MLflow SQLite store; None when ``path`` is none.

    A run is listed unless it or its experiment is deleted. Its name is the database's
    run name (the directory's, or the label alone at the root) and
    ``<file name>/<experiment id>/<run id>``.
    """
    from advisor.sources.mlflow import mlflow_db_runs

    runs = mlflow_db_runs(path)
    if runs is None:
        return None
    base = run if path.parent != root else label
    return [
        LogFile(path, "/".join(filter(None, (base, path.name, exp, uuid))), MLFLOW_DB, part=uuid)
        for exp, uuid in runs
    ]


def _mlflow_tag(path: Path) -> tuple[Path, str] | None:
    """(run directory, tag) when ``path`` is a metric file of an MLflow file store."""
    parts = path.parts
    for i in range(len(parts) - 2, 0, -1):
        if parts[i] == "metrics":
            run_dir = Path(*parts[:i])
            if (run_dir / "meta.yaml").is_file():
                return run_dir, "/".join(parts[i + 1 :])
            return None
    return None


def sniff(path: Path) -> str | None:
    """The format of a text log by its first bytes: CSV, JSON Lines, plain text or None."""
    from advisor.sources import csvlog
    from advisor.sources import jsonl
    from advisor.sources import textlog

    def of(head: bytes) -> str | None:
        if not head or b"\x00" in head:
            return None
        if jsonl.sniff(head):
            return JSONL
        if csvlog.sniff(head):
            return CSV
        return TEXT if textlog.sniff(head) else None

    try:
        with path.open("rb") as fh:
            # The first lines decide nearly every log: only a file they do not decide
            # is read further (each rescan sniffs every candidate file again).
            head = fh.read(_FIRST_SNIFF)
            found = of(head)
            if found is None and len(head) == _FIRST_SNIFF:
                found = of(head + fh.read(SNIFF_BYTES - _FIRST_SNIFF))
    except OSError:
        return None
    return found


def _newest_hf_states(files: list[LogFile]) -> list[LogFile]:
    """Keep only the most recently written trainer_state.json of each run."""
    newest: dict[str, LogFile] = {}
    for f in files:
        if f.format == HFSTATE:
            best = newest.get(f.run)
            if best is None or _mtime(f.path) >= _mtime(best.path):
                newest[f.run] = f
    return [f for f in files if f.format != HFSTATE or newest.get(f.run) is f]


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return -1
