"""A labelled suite on disk: a directory of run logs and the ``labels.json`` that says
what each run is (written by ``fixtures/scenarios/generate.py`` and ``gen_trainer.py``).

The logs are read as ``advisor replay`` reads them (every loader, hyper-parameters
included), so what the benchmarks and tests score is what a user's replay would see.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from advisor.api import load_store
from advisor.config import Settings
from advisor.errors import InputError
from advisor.model import Diagnosis
from advisor.model import RunCurves


@dataclass(frozen=True, slots=True)
class LabelledRun:
    """One run of a suite with its label.

    Attributes:
        name: the run's key in ``labels.json`` (its directory under the suite).
        label: the diagnosis the run should get.
        visible_from: fraction of the run from which the condition can be seen.
        truth: the label's numbers (``min_frac``, ``first_bad``, ``max_lr``...).
        curves: the run's curves and hyper-parameters as the loaders read them (empty
            when no log of the run could be read).
    """

    name: str
    label: Diagnosis
    visible_from: float
    truth: Mapping[str, float]
    curves: RunCurves


def read_suite(root: Path, settings: Settings | None = None) -> list[LabelledRun]:
    """The runs under ``root``, sorted by name, with their labels.

    A labelled run whose logs the store splits into several runs (an MLflow run is a
    sub-directory, ``name/<id>``) gets all their curves and hyper-parameters merged.

    Raises:
        InputError: ``root`` cannot be read, or has no readable ``labels.json``.
    """
    settings = settings or Settings()
    where = root / "labels.json"
    try:
        labels = json.loads(where.read_text())
    except OSError as exc:
        raise InputError(f"{where}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise InputError(f"{where}: not JSON: {exc}") from None
    if not isinstance(labels, dict):
        raise InputError(f"{where}: expected an object of run names, got {type(labels).__name__}")
    store = load_store([root], settings)
    merged: dict[str, RunCurves] = {}
    for run in store.runs():
        rc = store.curves(run, settings.roles)
        key = run.split("/")[0]
        prev = merged.get(key)
        if prev is not None:
            rc = RunCurves(key, {**prev.curves, **rc.curves}, {**prev.hparams, **rc.hparams})
        merged[key] = RunCurves(key, rc.curves, rc.hparams)
    return [_labelled(where, name, meta, merged.get(name, RunCurves(name, {})))
            for name, meta in sorted(labels.items())]  # fmt: skip


def _labelled(where: Path, name: str, meta: Any, curves: RunCurves) -> LabelledRun:
    try:
        return LabelledRun(
            name,
            Diagnosis(meta["label"]),
            float(meta["visible_from"]),
            {k: float(v) for k, v in meta.get("truth", {}).items()},
            curves,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        problem = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        raise InputError(f"{where}: run {name!r}: {problem}") from None
