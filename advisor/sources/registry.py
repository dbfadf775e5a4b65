"""The explicit registry of log formats: format name → loader factory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from advisor.config import Settings
from advisor.model import Batch
from advisor.sources.base import Loader
from advisor.sources.discovery import CSV
from advisor.sources.discovery import HFSTATE
from advisor.sources.discovery import JSON_CONFIG
from advisor.sources.discovery import JSONL
from advisor.sources.discovery import LIGHTNING_HPARAMS
from advisor.sources.discovery import MLFLOW
from advisor.sources.discovery import MLFLOW_DB
from advisor.sources.discovery import MLFLOW_PARAMS
from advisor.sources.discovery import SERIES_JSON
from advisor.sources.discovery import TEXT
from advisor.sources.discovery import TFEVENTS
from advisor.sources.discovery import WANDB
from advisor.sources.discovery import LogFile

LoaderFactory = Callable[[LogFile, Settings], Loader]


def _tfevents(f: LogFile, settings: Settings) -> Loader:
    from advisor.sources.tfevents import TfEventsLoader

    return TfEventsLoader(f.path, tag_prefix=f.tag_prefix)


def _csv(f: LogFile, settings: Settings) -> Loader:
    from advisor.sources.csvlog import CsvLoader

    return CsvLoader(f.path)


def _hfstate(f: LogFile, settings: Settings) -> Loader:
    from advisor.sources.hfstate import HfStateLoader

    return HfStateLoader(f.path)


def _jsonl(f: LogFile, settings: Settings) -> Loader:
    from advisor.sources.jsonl import JsonlLoader

    return JsonlLoader(f.path)


def _mlflow(f: LogFile, settings: Settings) -> Loader:
    from advisor.sources.mlflow import MlflowMetricLoader

    return MlflowMetricLoader(f.path, f.tag)


def _mlflow_db(f: LogFile, settings: Settings) -> Loader:
    from advisor.sources.mlflow import MlflowDbLoader

    return MlflowDbLoader(f.path, f.part)


def _text(f: LogFile, settings: Settings) -> Loader:
    from advisor.sources.textlog import TextLogLoader

    return TextLogLoader(f.path, pattern=settings.text_pattern)


def _wandb(f: LogFile, settings: Settings) -> Loader:
    from advisor.sources.wandblog import WandbLoader

    return WandbLoader(f.path)


def _series_json(f: LogFile, settings: Settings) -> Loader:
    from advisor.sources.seriesjson import SeriesJsonLoader

    return SeriesJsonLoader(f.path)


def _json_config(f: LogFile, settings: Settings) -> Loader:
    from advisor.sources.seriesjson import JsonConfigLoader

    return JsonConfigLoader(f.path)


def _lightning_hparams(f: LogFile, settings: Settings) -> Loader:
    from advisor.sources.context import lightning_hparams_loader

    return lightning_hparams_loader(f.path)


def _mlflow_params(f: LogFile, settings: Settings) -> Loader:
    from advisor.sources.context import mlflow_params_loader

    return mlflow_params_loader(f.path)


LOADERS: dict[str, LoaderFactory] = {
    TFEVENTS: _tfevents,
    CSV: _csv,
    HFSTATE: _hfstate,
    JSONL: _jsonl,
    MLFLOW: _mlflow,
    TEXT: _text,
    LIGHTNING_HPARAMS: _lightning_hparams,
    MLFLOW_PARAMS: _mlflow_params,
    MLFLOW_DB: _mlflow_db,
    WANDB: _wandb,
    SERIES_JSON: _series_json,
    JSON_CONFIG: _json_config,
}


def make_loader(f: LogFile, settings: Settings) -> Loader:
    """A loader for one discovered file (its tags prefixed with ``f.tag_prefix``)."""
    loader = LOADERS[f.format](f, settings)
    if f.tag_prefix and f.format != TFEVENTS:  # the event reader prefixes as it decodes
        return Prefixed(loader, f.tag_prefix)
    return loader


class Prefixed:
    """A loader whose tags all get a prefix (a folded sub-directory's name)."""

    def __init__(self, loader: Loader, prefix: str) -> None:
        self.loader = loader
        self.path = loader.path
        self.prefix = prefix

    def load(self, *, final: bool = False) -> Batch:
        batch = self.loader.load(final=final)
        if not batch.scalars.tags and not batch.restarts:
            return batch
        tags = tuple(self.prefix + t for t in batch.scalars.tags)
        restarts = tuple(
            replace(r, tags=None if r.tags is None else tuple(self.prefix + t for t in r.tags))
            for r in batch.restarts
        )
        return replace(batch, scalars=replace(batch.scalars, tags=tags), restarts=restarts)
