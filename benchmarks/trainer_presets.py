"""Measure every trainer preset over several seeds: time, final numbers, regime seen.

Usage: python benchmarks/trainer_presets.py [--seeds 5] [--first-seed 0] [--only good,nan]
                                           [--per-seed]

Runs each preset once per seed, one after another, on one torch thread (the trainer's
default), into a temporary folder, and prints a Markdown table: the preset's dataset,
model, LR, WD and epochs; the median and maximum wall time; the median final and best
validation loss and final accuracy (with their range over seeds); and in how many
seeds the shape check of :mod:`advisor.trainer.regimes` saw the preset's regime.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from advisor.trainer.presets import PRESETS
from advisor.trainer.records import TrainResult
from advisor.trainer.regimes import regime_seen
from advisor.trainer.train import train


def _span(values: list[float], fmt: str) -> str:
    mid = format(statistics.median(values), fmt)
    if len(values) == 1:
        return mid
    return f"{mid} ({format(min(values), fmt)}-{format(max(values), fmt)})"


def _row(name: str, results: list[TrainResult], seen: int, label: str = "") -> str:
    c = PRESETS[name].config
    lr = f"{c.start_lr():g}-{c.lr:g}" if c.schedule in ("1cycle", "range") else f"{c.lr:g}"
    secs = [r.seconds for r in results]
    cells = [
        name + label,
        f"{c.dataset} {c.model}" + (f" n={c.n_train}" if c.n_train else ""),
        f"{lr} {c.schedule}",
        f"{c.weight_decay:g}",
        f"{statistics.median([r.epochs_run for r in results]):g}/{c.epochs}",
        f"{statistics.median(secs):.1f}" + (f" (max {max(secs):.1f})" if len(secs) > 1 else ""),
        _span([r.final_val_loss for r in results], ".3g"),
        _span([r.best_val_loss for r in results], ".3g"),
        _span([100 * r.final_val_accuracy for r in results], ".1f"),
        f"{seen}/{len(results)}",
    ]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="how many seeds")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--only", default=",".join(PRESETS))
    parser.add_argument("--per-seed", action="store_true", help="also a row per seed")
    args = parser.parse_args()
    print(
        "| preset | data, model | LR, schedule | WD | epochs run | seconds, median | "
        "final val loss | best val loss | final acc % | regime seen |"
    )
    print("|" + "---|" * 10)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only.split(","):
            results = []
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                config = PRESETS[name].config.replace(seed=seed)
                logdir = Path(tmp) / f"{name}-{seed}"
                results.append(train(config, logdir, quiet=True))
                if args.per_seed:
                    ok = int(regime_seen(name, results[-1]))
                    print(_row(name, results[-1:], ok, f" seed {seed}"), flush=True)
            seen = sum(regime_seen(name, r) for r in results)
            print(_row(name, results, seen), flush=True)


if __name__ == "__main__":
    main()
