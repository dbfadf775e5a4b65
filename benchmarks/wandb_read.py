"""How fast W&B run files are read: points and megabytes per second, per file.

Usage: python benchmarks/wandb_read.py FILE.wandb... [--repeat 3]

There is no reference reader to compare with on this machine: wandb 0.31 reads its
``.wandb`` files in its Go core, not in Python. The files are the user's (or written
with wandb in an environment of its own: the README says how the measured one was).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from advisor.sources.wandblog import WandbLoader


def read_once(path: Path) -> tuple[float, int]:
    """Seconds to read the whole file with a fresh loader, and the points read."""
    start = time.perf_counter()
    loader = WandbLoader(path)
    count = 0
    while True:
        batch = loader.load(final=True)
        count += len(batch.scalars)
        if not batch.more:
            return time.perf_counter() - start, count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    for path in args.files:
        runs = [read_once(path) for _ in range(args.repeat)]
        seconds = statistics.median(t for t, _ in runs)
        points = runs[0][1]
        mb = path.stat().st_size / 1e6
        print(
            f"{path}: {points:,} points, {mb:.1f} MB in {seconds:.2f} s "
            f"(median of {args.repeat}): {points / seconds:,.0f} points/s, {mb / seconds:.1f} MB/s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
