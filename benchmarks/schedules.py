"""Real runs under common schedules and optimizers: what the advisor says about each.

Usage: python benchmarks/schedules.py --out DIR [--seeds 8-13] [--only cosine,adamw]
                                      [--jobs 2]

Trains every family below once per seed with the reference trainer (``advisor train``
with the family's options; runs already in ``DIR`` are reused, so delete it to train
again), replays each log as if live (every evaluation analysed, as
``benchmarks/diagnosis.py`` does), and prints a Markdown table per group: accuracy at
the end, the alerts opened (diagnosis, how many runs, at which epochs, how many
resolved later) and the diagnosis at the end of the log. A family's ``expected``
diagnosis, where it has one, is checked: the last line counts the families where every
run ended with it and opened no other alert (exit code 1 when one did not). A row
without ``--preset`` starts from ``good`` (the CNN on MNIST-1D); "digits MLP" is
``--dataset digits --model mlp``. About 11 s per 40-epoch run on one core.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from advisor.api import load_store
from advisor.config import Settings
from advisor.core.timeline import ReplayParams
from advisor.core.timeline import replay_run
from advisor.model import AlertEvent
from advisor.model import Diagnosis
from advisor.trainer.presets import parse_seeds


@dataclass(frozen=True, slots=True)
class Family:
    """Runs of one preset with some options changed.

    Attributes:
        group: the table it is printed in.
        name: its row, the options as ``advisor train`` flags.
        preset: the preset it starts from.
        options: ``TrainConfig`` fields changed.
        expected: the diagnosis every run should end with, alerting nothing else (None:
            not checked).
    """

    group: str
    name: str
    preset: str
    options: dict[str, Any] = field(default_factory=dict)
    expected: Diagnosis | None = None


HEALTHY, UNDER, OVER, UNSTABLE = (
    Diagnosis.HEALTHY,
    Diagnosis.UNDERFITTING,
    Diagnosis.OVERFITTING,
    Diagnosis.INSTABILITY,
)
_MLP = {"dataset": "digits", "model": "mlp"}
_COS = {"schedule": "cosine"}
_LIN = {"schedule": "linear"}
_LIN_WU = {"schedule": "linear", "warmup_frac": 0.1}
_COS_WU = {"schedule": "cosine", "warmup_frac": 0.05}
_ADAM = {"optimizer": "adamw"}
_E25 = {"eval_every": 25}  # 5 evaluations per epoch of the CNN at batch 32

FAMILIES: tuple[Family, ...] = (
    Family("cosine", "--preset good", "good", _COS, HEALTHY),
    Family("cosine", "--lr 0.07", "good", _COS | {"lr": 0.07}, HEALTHY),
    Family("cosine", "--lr 0.1", "good", _COS | {"lr": 0.1}),
    Family("cosine", "--lr 0.1 --batch-size 128", "good", _COS | {"lr": 0.1, "batch_size": 128}),
    Family("cosine", "--lr 0.1 --width 64", "good", _COS | {"lr": 0.1, "width": 64}),
    Family("cosine", "--lr 0.1 --epochs 80", "good", _COS | {"lr": 0.1, "epochs": 80}),
    Family("cosine", "--preset lr-too-low", "lr-too-low", _COS, UNDER),
    Family("cosine", "--lr 0.004", "good", _COS | {"lr": 0.004}, UNDER),
    Family("cosine", "--preset overfit", "overfit", _COS, OVER),
    Family("cosine", "digits MLP --lr 0.04", "good", _COS | _MLP | {"lr": 0.04}, HEALTHY),
    Family("cosine", "digits MLP --lr 0.1", "good", _COS | _MLP | {"lr": 0.1}, HEALTHY),
    Family("cosine", "digits MLP --lr 0.002", "good", _COS | _MLP | {"lr": 0.002}, UNDER),
    Family("linear", "--preset good", "good", _LIN),
    Family("linear", "--lr 0.1", "good", _LIN | {"lr": 0.1}, HEALTHY),
    Family("linear", "--preset lr-too-low", "lr-too-low", _LIN, UNDER),
    Family("linear", "--lr 0.004", "good", _LIN | {"lr": 0.004}, UNDER),
    Family("linear", "--preset overfit", "overfit", _LIN, OVER),
    Family("linear", "digits MLP --lr 0.04", "good", _LIN | _MLP | {"lr": 0.04}),
    Family("warm-up", "linear, 10%: --preset good", "good", _LIN_WU, HEALTHY),
    Family("warm-up", "linear, 10%: --lr 0.1", "good", _LIN_WU | {"lr": 0.1}, HEALTHY),
    Family("warm-up", "linear, 10%: --preset lr-too-low", "lr-too-low", _LIN_WU, UNDER),
    Family("warm-up", "linear, 10%: --preset overfit", "overfit", _LIN_WU, OVER),
    Family("warm-up", "cosine, 5%: --preset good", "good", _COS_WU, HEALTHY),
    Family("warm-up", "cosine, 5%: --lr 0.1", "good", _COS_WU | {"lr": 0.1}, HEALTHY),
    Family("warm-up", "cosine, 5%: --preset lr-too-low", "lr-too-low", _COS_WU, UNDER),
    Family("warm-up", "cosine, 5%: --preset overfit", "overfit", _COS_WU, OVER),
    Family("adamw", "AdamW --lr 0.00001", "good", _ADAM | {"lr": 1e-5}, UNDER),
    Family("adamw", "AdamW --lr 0.001", "good", _ADAM | {"lr": 1e-3}),
    Family("adamw", "AdamW --lr 0.003", "good", _ADAM | {"lr": 3e-3}, OVER),
    Family("adamw", "SGD --lr 0.3", "good", {"lr": 0.3}, UNSTABLE),
    Family("eval-every", "--preset good", "good", _E25, HEALTHY),
    Family("eval-every", "--preset one-cycle", "one-cycle", _E25, HEALTHY),
    Family("eval-every", "--preset lr-too-low", "lr-too-low", _E25, UNDER),
    Family("eval-every", "--preset overfit", "overfit", _E25, OVER),
    Family("eval-every", "--preset lr-too-high", "lr-too-high", _E25, UNSTABLE),
    # Hugging Face's default: linear decay, here after a 10% warm-up (warmup_ratio 0.1).
    Family("eval-every", "linear, 10%: --preset good", "good", _E25 | _LIN_WU, HEALTHY),
    Family("eval-every", "linear, 10%: --preset lr-too-low", "lr-too-low", _E25 | _LIN_WU, UNDER),
    Family("eval-every", "linear, 10%: --preset overfit", "overfit", _E25 | _LIN_WU, OVER),
    # Not checked: the warm-up and the decay let some of these runs train well.
    Family("eval-every", "linear, 10%: --preset lr-too-high", "lr-too-high", _E25 | _LIN_WU),
)


@dataclass(frozen=True, slots=True)
class Run:
    """What the advisor said about one run."""

    accuracy: float
    opened: tuple[tuple[Diagnosis, float], ...]  # (diagnosis, epoch) of each opened alert
    resolved: tuple[Diagnosis, ...]
    end: Diagnosis


def _slug(family: Family) -> str:
    text = f"{family.group}-{family.name}".lower()
    return "".join(c if c.isalnum() or c == "." else "-" for c in text).strip("-")


def _train(family: Family, seed: int, logdir: Path) -> None:
    from advisor.trainer.presets import PRESETS
    from advisor.trainer.train import train

    config = PRESETS[family.preset].config.replace(seed=seed, **family.options)
    train(config, logdir, quiet=True)


def _read(logdir: Path) -> Run:
    settings = Settings()
    store = load_store([logdir], settings)
    (name,) = store.runs()
    alerts, summary = replay_run(
        store.curves(name, settings.roles), ReplayParams(max_analyses=1 << 30)
    )
    with (logdir / "metrics.csv").open() as f:
        accuracy = float(list(csv.DictReader(f))[-1]["val_accuracy"])
    return Run(
        accuracy,
        tuple(
            (a.finding.diagnosis, a.epoch if a.epoch is not None else float("nan"))
            for a in alerts
            if a.event is AlertEvent.OPENED
        ),
        tuple(a.finding.diagnosis for a in alerts if a.event is AlertEvent.RESOLVED),
        summary.diagnosis,
    )


def _alerts(runs: list[Run]) -> str:
    parts = []
    for diagnosis in Diagnosis:
        epochs = [e for r in runs for d, e in r.opened if d is diagnosis]
        if not epochs:
            continue
        alerted = sum(any(d is diagnosis for d, _ in r.opened) for r in runs)
        lo, hi = _epoch(min(epochs)), _epoch(max(epochs))
        at = f"epoch {lo}" if lo == hi else f"epochs {lo}-{hi}"
        resolved = sum(d is diagnosis for r in runs for d in r.resolved)
        parts.append(
            f"{diagnosis.value} {alerted}, at {at}"
            + (f" ({resolved} resolved)" if resolved else "")
        )
    return "; ".join(parts) or "none"


def _epoch(epoch: float) -> str:
    """An epoch to one decimal: evaluations within an epoch fall between whole ones."""
    return f"{epoch:.1f}".removesuffix(".0")


def _ends(runs: list[Run]) -> str:
    counts = Counter(r.end.value for r in runs)
    return ", ".join(f"{name} {n}" for name, n in counts.most_common())


def _as_expected(want: Diagnosis, runs: list[Run]) -> bool:
    return all(r.end is want and all(d is want for d, _ in r.opened) for r in runs)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="where the runs go")
    parser.add_argument("--seeds", default="8-13", help="e.g. 8-13, 8,9 or a mix")
    parser.add_argument("--only", default="", help="comma-separated groups (default: all)")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    groups = {f.group for f in FAMILIES}
    only = set(args.only.split(",")) if args.only else groups
    if only - groups:
        parser.error(f"unknown groups: {', '.join(sorted(only - groups))}")
    try:
        seeds = parse_seeds(args.seeds)
    except ValueError:
        parser.error(f"--seeds: expected e.g. 8-13, 8,9 or a mix but got {args.seeds!r}")
    families = [f for f in FAMILIES if f.group in only]
    todo = [
        (f, s, args.out / _slug(f) / f"s{s}")
        for f in families
        for s in seeds
        if not (args.out / _slug(f) / f"s{s}" / "metrics.csv").exists()
    ]
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for future in [pool.submit(_train, *job) for job in todo]:
            future.result()
    good = 0
    for group in sorted({f.group for f in families}, key=[f.group for f in FAMILIES].index):
        print(f"\n{group}, seeds {args.seeds}:\n")
        print("| runs | accuracy % | alerts opened | end of the log | expected |")
        print("|---|---:|---|---|---|")
        for family in (f for f in families if f.group == group):
            runs = [_read(args.out / _slug(family) / f"s{s}") for s in seeds]
            acc = [100 * r.accuracy for r in runs]
            mark = "-"
            if family.expected is not None:
                ok = _as_expected(family.expected, runs)
                good += ok
                mark = f"{family.expected.value}: {'yes' if ok else 'NO'}"
            print(
                f"| {family.name} | {min(acc):.1f}-{max(acc):.1f} | {_alerts(runs)} | "
                f"{_ends(runs)} | {mark} |"
            )
    checked = sum(f.expected is not None for f in families)
    print(f"\nfamilies as expected: {good}/{checked}")
    return 0 if good == checked else 1


if __name__ == "__main__":
    sys.exit(main())
