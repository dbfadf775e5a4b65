"""The command line: one clear line on stderr and exit code 2 for bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BAD_RULES = Path(__file__).parent / "bad_rules"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from advisor.cli import main; main()", *args],
        check=False, capture_output=True, text=True, timeout=60, cwd=cwd,
    )  # fmt: skip


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in lines[0]


def test_scalars_missing_path(tmp_path: Path) -> None:
    """A path that does not exist: one line naming it, exit 2."""
    assert_one_line_error(run("scalars", str(tmp_path / "nope")), "nope", "no such file")


def test_scalars_unknown_file(tmp_path: Path) -> None:
    """A file that is not a log: one line naming it, exit 2."""
    f = tmp_path / "model.pt"
    f.write_bytes(b"\x00\x01\x02")
    assert_one_line_error(run("scalars", str(f)), "model.pt", "not a training log")


def test_scalars_bad_config(tmp_path: Path) -> None:
    """A bad advisor.toml: one line naming file and key, exit 2."""
    cfg = tmp_path / "advisor.toml"
    cfg.write_text('[roles]\n"x" = "nope"\n')
    assert_one_line_error(run("scalars", str(tmp_path), "--config", str(cfg)), "roles.x")


def test_usage_error_exit_2() -> None:
    """A bad option is a usage error with exit code 2."""
    proc = run("scalars", "--format", "xml", ".")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr


def test_rules_list_and_explain() -> None:
    """The rule book lists every rule and explains one with its source."""
    listing = run("rules", "list")
    assert listing.returncode == 0
    assert "SMITH-OVF-01" in listing.stdout
    explain = run("rules", "explain", "SMITH-OVF-01")
    assert explain.returncode == 0
    for field in ("symptom:", "why:", "what to do:", "source: Smith 2018"):
        assert field in explain.stdout


def test_rules_explain_unknown_id() -> None:
    """An unknown rule id is one clear line."""
    assert_one_line_error(run("rules", "explain", "NOPE-01"), "no rule 'NOPE-01'")


@pytest.mark.parametrize("name", ["bad_param", "duplicate_id", "toml_syntax"])
def test_rules_validate_names_file_rule_field(name: str) -> None:
    """rules validate fails with the file, rule and field on one line."""
    path = BAD_RULES / f"{name}.toml"
    assert_one_line_error(run("rules", "validate", str(path)), str(path))


def test_rules_validate_builtin_ok() -> None:
    """The built-in book validates."""
    proc = run("rules", "validate", str(Path(__file__).parents[1] / "rules" / "smith2018.toml"))
    assert proc.returncode == 0
    assert "rules ok" in proc.stdout


def test_replay_of_a_directory_without_logs_says_so(tmp_path: Path) -> None:
    """Nothing to replay is a warning naming the path, not silence (exit 0: no finding)."""
    proc = run("replay", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert (
        proc.stderr.strip()
        == f"advisor: warning: no training log with scalars found in {tmp_path}"
    )
