"""The notebook API: every scalar of a log root as one long DataFrame."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
import numpy.typing as npt

from advisor.config import Settings
from advisor.config import load_settings
from advisor.memory import release_free_memory
from advisor.model import Problem
from advisor.sources.discovery import discover
from advisor.sources.discovery import root_labels
from advisor.sources.discovery import unique_roots
from advisor.sources.registry import make_loader
from advisor.store import Store

if TYPE_CHECKING:
    import pandas as pd


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
    roots = unique_roots(list(paths))
    for root, label in zip(roots, root_labels(roots), strict=True):
        for logfile in discover(root, label):
            loader = make_loader(logfile, settings)
            while True:
                batch = loader.load(final=True)
                store.add(logfile.run, batch)
                if on_problem is not None:
                    for problem in batch.problems:
                        on_problem(problem)
                if not batch.more:
                    break
                # Between two parts of a large file: give the last part's pages back.
                release_free_memory()
    release_free_memory()
    return store


def to_frame(store: Store, settings: Settings) -> pd.DataFrame:
    """Drain a Store into a long DataFrame (run, tag, role, step, wall_time, value).

    Columns are built one at a time and the store's copy of each is freed as soon as it
    is joined, so the peak is the store plus one column, not the store plus the result.
    """
    import pandas as pd

    keys = [(run, tag) for run in store.runs() for tag in store.tags(run)]
    series = [store.series(run, tag) for run, tag in keys]
    lengths = np.array([len(s) for s in series], np.int64)
    columns: dict[str, np.ndarray] = {}
    for name, dtype in (("step", np.int64), ("wall_time", np.float64), ("value", np.float64)):
        parts = [chunk for s in series for chunk in s.take_column(name)]
        columns[name] = np.concatenate(parts) if parts else np.zeros(0, dtype)
        del parts
        release_free_memory()
    for run, _ in keys:
        store.drop(run)
    runs = [run for run, _ in keys]
    tags = [tag for _, tag in keys]
    roles = [settings.roles.role(tag).role.value for tag in tags]
    return pd.DataFrame(
        {
            "run": _categorical(runs, lengths),
            "tag": _categorical(tags, lengths),
            "role": _categorical(roles, lengths),
            **columns,
        },
        copy=False,
    )


def _categorical(labels: list[str], lengths: np.ndarray) -> pd.Categorical[str]:
    import pandas as pd

    categories = sorted(set(labels))
    code_of = {c: i for i, c in enumerate(categories)}
    dtype = np.int8 if len(categories) < 127 else np.int16 if len(categories) < 32767 else np.int32
    per_key = np.array([code_of[label] for label in labels], dtype=dtype)
    codes: npt.NDArray[np.integer[Any]] = np.repeat(per_key, lengths)
    return pd.Categorical.from_codes(codes, categories=pd.Index(categories))


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
