"""``advisor replay --report``: one PNG per run and an index that links them."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from advisor.api import load_store
from advisor.config import load_settings
from advisor.model import Role
from advisor.model import RunCurves
from advisor.replay import replay
from advisor.report import slug_of
from advisor.report import write_report
from advisor.ruleset import load_rulebook
from advisor.trendband import trend_band

TUNE = Path(__file__).parent.parent / "fixtures" / "scenarios" / "tune"
HOSTILE = "<script>alert(1)</script>"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (which must come first)."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_MAGIC, path
    assert head[12:16] == b"IHDR", path
    width, height = struct.unpack(">II", head[16:24])
    return int(width), int(height)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three runs under one root: overfitting (under a hostile name), healthy, unstable."""
    base = tmp_path_factory.mktemp("runs")
    for src, dst in [("overfit_00", f"grp/{HOSTILE}"), ("healthy_00", "grp/healthy"),
                     ("diverge_01", "diverge")]:  # fmt: skip
        shutil.copytree(TUNE / src, base / dst)
    return base


@pytest.fixture(scope="module")
def report(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    results = replay([root], load_settings(None), load_rulebook(()))
    return write_report(results, out)


def test_one_png_per_run(report: Path) -> None:
    """Every run gets a valid PNG of a readable size."""
    pngs = sorted(report.parent.glob("*.png"))
    assert len(pngs) == 3
    for png in pngs:
        width, height = png_size(png)
        assert 600 <= width <= 3000 and 400 <= height <= 2000, (png, width, height)
        assert png.stat().st_size > 10_000


def test_index_links_every_png_and_escapes(report: Path) -> None:
    """The index links each PNG, escapes run names and lists problems first."""
    assert report.name == "index.html"
    page = report.read_text(encoding="utf-8")
    for png in report.parent.glob("*.png"):
        assert f'href="{png.name}"' in page
    assert "<script>" not in page
    assert "grp/&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.index("instability") < page.index("overfitting") < page.index("healthy</td>")
    assert "weight_decay" in page


def test_slugs_are_safe_and_unique() -> None:
    """Names that differ only in unsafe characters or case still get distinct files."""
    taken: set[str] = set()
    names = ["a/b", "a_b", "a:b", "A_B", "../..", "", HOSTILE, "plain"]
    slugs = [slug_of(n, taken) for n in names]
    assert len({s.casefold() for s in slugs}) == len(names)
    assert slugs[-1] == "plain"
    for s in slugs:
        assert s and s[0] not in "._-" and all(c.isalnum() or c in "._-" for c in s)


def test_cli_report(root: Path, tmp_path: Path) -> None:
    """``advisor replay PATH --report DIR`` writes the report and names the index."""
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-c", "from advisor.cli import main; main()",
         "replay", str(root / "diverge"), "--report", str(out)],
        check=False, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert str(out / "index.html") in proc.stderr
    assert "instability" in proc.stdout
    assert png_size(out / "diverge.png")[0] > 0


def load_run(name: str) -> RunCurves:
    settings = load_settings(None)
    store = load_store([TUNE / name], settings, None)
    (run,) = store.runs()
    return store.curves(run, settings.roles)


def test_trend_band_extrapolates_half_the_run() -> None:
    """The band starts at the last fitted step, reaches half the run further, and holds its
    trend; a validation accuracy stays in accuracy units."""
    for name in ("overfit_00", "step_decay_00"):
        rc = load_run(name)
        band = trend_band(rc)
        assert band is not None
        assert band.step[0] == band.fit_step[-1]
        assert band.step[-1] == pytest.approx(1.5 * band.fit_step[-1], rel=0.05)
        assert np.all(band.lo <= band.mid + 1e-12) and np.all(band.mid <= band.hi + 1e-12)
        assert band.mid[0] == pytest.approx(band.fit[-1])
    val = rc.first(Role.VAL_METRIC)
    assert val is not None
    assert band.mid[0] == pytest.approx(float(val.value[-1]), abs=0.02)


def test_import_does_not_load_matplotlib() -> None:
    """``advisor.report`` imports matplotlib only when it draws."""
    code = "import sys, advisor.cli, advisor.report; assert 'matplotlib' not in sys.modules"
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
