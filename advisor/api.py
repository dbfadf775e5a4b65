"""The notebook API: every scalar of a log root as one long DataFrame."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from advisor.config import Settings
from advisor.config import load_settings
from advisor.model import Problem
from advisor.sources.discovery import discover
from advisor.sources.registry import make_loader
from advisor.store import Store

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ("run", "tag", "role", "step", "wall_time", "value")
# Each load() call reads at most about this much of a file, so that one call's batch
# and the store never both hold a whole large file.
_BATCH_BYTES = 8 << 20


def load_store(
    paths: Iterable[Path],
    settings: Settings,
    on_problem: Callable[[Problem], None] | None = None,
) -> Store:
    """Read every log under ``paths`` into a Store.

    Raises:
        InputError: a path does not exist or cannot be read.
    """
    store = Store()
    for root in paths:
        for logfile in discover(root):
            loader = make_loader(logfile, settings)
            while True:
                batch = loader.load()
                store.add(logfile.run, batch)
                if on_problem is not None:
                    for problem in batch.problems:
                        on_problem(problem)
                if not batch.more:
                    break
    return store


def to_frame(store: Store, settings: Settings) -> pd.DataFrame:
    """Drain a Store into a long DataFrame (run, tag, role, step, wall_time, value).

    Each tag's points are freed as they are copied out, so the peak memory is about
    that of the result alone.
    """
    import pandas as pd

    keys = [(run, tag) for run in store.runs() for tag in store.tags(run)]
    total = sum(len(store.series(run, tag)) for run, tag in keys)
    step = np.empty(total, np.int64)
    wall = np.empty(total, np.float64)
    value = np.empty(total, np.float64)
    key_index = np.empty(total, np.int32)
    at = 0
    for i, (run, tag) in enumerate(keys):
        s, w, v = store.pop_series(run, tag).arrays()
        n = s.size
        step[at : at + n] = s
        wall[at : at + n] = w
        value[at : at + n] = v
        key_index[at : at + n] = i
        at += n
    runs = [run for run, _ in keys]
    tags = [tag for _, tag in keys]
    roles = [settings.roles.role(tag).role.value for tag in tags]
    return pd.DataFrame(
        {
            "run": _categorical(runs, key_index),
            "tag": _categorical(tags, key_index),
            "role": _categorical(roles, key_index),
            "step": step,
            "wall_time": wall,
            "value": value,
        },
        copy=False,
    )


def _categorical(labels: list[str], key_index: np.ndarray) -> pd.Categorical:
    import pandas as pd

    categories = sorted(set(labels))
    code_of = {c: i for i, c in enumerate(categories)}
    dtype = np.int8 if len(categories) < 127 else np.int16 if len(categories) < 32767 else np.int32
    per_key = np.array([code_of[label] for label in labels], dtype=dtype)
    codes = per_key[key_index] if key_index.size else np.zeros(0, dtype)
    return pd.Categorical.from_codes(codes, categories=categories)


def read_scalars(
    path: str | Path,
    *,
    config: str | Path | None = None,
    on_problem: Callable[[Problem], None] | None = None,
) -> pd.DataFrame:
    """Every scalar under ``path``, long format: run, tag, role, step, wall_time, value.

    Every point of every log file is kept (no sampling), after purging steps orphaned
    by a training restart, as TensorBoard does.

    Args:
        path: a log root (directory) or one log file.
        config: an ``advisor.toml`` with role overrides; by default ./advisor.toml if any.
        on_problem: called with each input problem (corrupt record, bad line); by
            default problems are ignored here and the readable points returned.

    Raises:
        InputError: ``path`` does not exist or cannot be read.
        ConfigError: the configuration is invalid.

    Example:
        >>> df = read_scalars("runs/")  # doctest: +SKIP
        >>> df[df.role == "val_loss"].groupby("run").value.min()  # doctest: +SKIP
    """
    settings = load_settings(Path(config) if config is not None else None)
    store = load_store([Path(path)], settings, on_problem)
    return to_frame(store, settings)
