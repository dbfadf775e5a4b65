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
