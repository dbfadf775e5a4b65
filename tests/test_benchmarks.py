"""The benchmark scripts keep running: a smoke run at 10x smaller sizes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run_ingest(*args: str) -> str:
    """Run ingest.py --quick; it exits non-zero when a reader misses a generated point."""
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "ingest.py"), "--quick", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_ingest_quick_reads_every_generated_scalar() -> None:
    """--quick --only ours: read_scalars reads every generated point, tailing is timed."""
    pytest.importorskip("tensorboard")
    pytest.importorskip("advisor.sources.tfevents")
    out = run_ingest("--only", "ours")
    assert sum(line.startswith("read_scalars ") for line in out.splitlines()) == 3
    assert "1,000 appended scalars picked up" in out
    assert "idle poll" in out


@pytest.mark.slow
def test_ingest_quick_with_every_reference_reader() -> None:
    """--quick with EventAccumulator, tbparse and the Rust data server as well."""
    pytest.importorskip("tbparse")
    pytest.importorskip("tensorboard_data_server")
    pytest.importorskip("advisor.sources.tfevents")
    out = run_ingest()
    for name in ("EventAccumulator", "tbparse", "Rust data server"):
        assert sum(line.startswith(name + " ") for line in out.splitlines()) == 3, name
    assert "PASS" in out or "FAIL" in out


def test_ingest_rejects_unknown_readers() -> None:
    """--only with an unknown reader name is a usage error."""
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / "ingest.py"), "--only", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "unknown readers" in proc.stderr


def _schedules(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / "schedules.py"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_schedules_reports_runs_already_trained(tmp_path: Path) -> None:
    """Runs already in --out are replayed, not trained again: real runs of the trainer
    suite stand in for two families' seeds 5-6 (the adamw group: its SGD LR 0.3 family
    expects instability, its AdamW LR 1e-5 family underfitting)."""
    import shutil

    suite = BENCHMARKS.parent / "fixtures" / "scenarios" / "trainer"
    slugs = {
        "adamw-adamw---lr-0.00001": "lr-too-low",
        "adamw-adamw---lr-0.001": "good",
        "adamw-adamw---lr-0.003": "overfit",
        "adamw-sgd---lr-0.3": "lr-too-high",
    }
    for slug, preset in slugs.items():
        for seed in (5, 6):
            shutil.copytree(suite / f"{preset}-s{seed}", tmp_path / slug / f"s{seed}")
    proc = _schedules("--out", str(tmp_path), "--seeds", "5-6", "--only", "adamw")
    lines = proc.stdout.splitlines()
    row = {line.split(" | ")[0].lstrip("| "): line for line in lines if line.startswith("| ")}
    assert "underfitting 2, at epochs" in row["AdamW --lr 0.00001"]
    assert row["AdamW --lr 0.00001"].endswith("| underfitting 2 | underfitting: yes |")
    assert row["AdamW --lr 0.001"].endswith("| healthy 2 | - |")
    assert row["AdamW --lr 0.003"].endswith("| overfitting 2 | overfitting: yes |")
    assert row["SGD --lr 0.3"].endswith("| instability 2 | instability: yes |")
    assert lines[-1] == "families as expected: 3/3"
    assert proc.returncode == 0, proc.stderr
    # A family that does not end as expected fails the run.
    shutil.rmtree(tmp_path / "adamw-sgd---lr-0.3")
    for seed in (5, 6):
        shutil.copytree(suite / f"good-s{seed}", tmp_path / "adamw-sgd---lr-0.3" / f"s{seed}")
    proc = _schedules("--out", str(tmp_path), "--seeds", "5-6", "--only", "adamw")
    assert "| healthy 2 | instability: NO |" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "families as expected: 2/3"
    assert proc.returncode == 1


def test_schedules_rejects_unknown_groups(tmp_path: Path) -> None:
    """--only with a group that does not exist, or --seeds that are not seeds, is a usage
    error before any training."""
    proc = _schedules("--out", str(tmp_path), "--only", "nope")
    assert proc.returncode == 2
    assert "unknown groups: nope" in proc.stderr
    proc = _schedules("--out", str(tmp_path), "--seeds", "8-x")
    assert proc.returncode == 2
    assert "--seeds: expected e.g. 8-13, 8,9 or a mix but got '8-x'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not any(tmp_path.iterdir())
