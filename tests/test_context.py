"""Hyper-parameter files beside the logs reach the run's context, and follow changes."""

from __future__ import annotations

from pathlib import Path

from advisor.api import load_store
from advisor.config import Settings


def test_lightning_and_mlflow_params_reach_the_store(tmp_path: Path) -> None:
    """hparams.yaml and MLflow params become the run's hyper-parameters."""
    v0 = tmp_path / "lightning_logs/version_0"
    v0.mkdir(parents=True)
    (v0 / "metrics.csv").write_text("epoch,step,val_loss\n0,9,1.0\n")
    (v0 / "hparams.yaml").write_text("lr: 0.1\nweight_decay: 0.0001\nbatch_size: 64\n")
    run = tmp_path / "mlruns/0/abc"
    (run / "params").mkdir(parents=True)
    (run / "metrics").mkdir()
    (run / "meta.yaml").write_text("run_name: demo\n")
    (run / "params/momentum").write_text("0.9")
    (run / "metrics/val_loss").write_text("1700000000000 0.5 1\n")
    store = load_store([tmp_path], Settings())
    assert store.hparams("lightning_logs/version_0") == {
        "lr": 0.1, "weight_decay": 0.0001, "batch_size": 64
    }  # fmt: skip
    assert store.hparams("mlruns/0/abc") == {"momentum": 0.9}


def test_context_file_reread_only_when_changed(tmp_path: Path) -> None:
    """A context file is parsed again only after it changes."""
    from advisor.sources.context import lightning_hparams_loader

    f = tmp_path / "hparams.yaml"
    f.write_text("lr: 0.1\n")
    loader = lightning_hparams_loader(f)
    assert loader.load().hparams == {"lr": 0.1}
    assert loader.load().hparams == {}
    f.write_text("lr: 0.2\nmomentum: 0.9\n")
    assert loader.load().hparams == {"lr": 0.2, "momentum": 0.9}
