"""Hyper-parameter files written beside the logs: Lightning's hparams.yaml (DVCLive's
params.yaml), MLflow params. (JSON configs: ``seriesjson.JsonConfigLoader``.)

They hold no points, only the run's context; each is read again whenever it changes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from advisor.model import Batch
from advisor.model import HParamValue
from advisor.sources.csvlog import read_lightning_hparams
from advisor.sources.mlflow import read_mlflow_params


class ContextLoader:
    """Reads a hyper-parameter file (or MLflow params directory) when it changes.

    Args:
        path: the file or directory.
        read: parses it into name → value.
    """

    def __init__(self, path: Path, read: Callable[[Path], dict[str, HParamValue]]) -> None:
        self.path = path
        self._read = read
        self._signature: tuple[int, int, int] | None = None

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        if self.path.is_dir():
            # A new params file changes the directory's mtime; an edited one does not,
            # but MLflow never edits a logged param.
            return (st.st_ino, st.st_mtime_ns, sum(1 for _ in os.scandir(self.path)))
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def load(self, *, final: bool = False) -> Batch:
        """The hyper-parameters, when the file changed since the previous call
        (``final`` changes nothing: the files are read whole)."""
        signature = self._stat()
        if signature is None or signature == self._signature:
            return Batch()
        self._signature = signature
        return Batch(hparams=self._read(self.path))


def lightning_hparams_loader(path: Path) -> ContextLoader:
    """Lightning's ``hparams.yaml``."""
    return ContextLoader(path, read_lightning_hparams)


def mlflow_params_loader(params_dir: Path) -> ContextLoader:
    """An MLflow run's ``params/`` directory."""
    return ContextLoader(params_dir, lambda p: read_mlflow_params(p.parent))
