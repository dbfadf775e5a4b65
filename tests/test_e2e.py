"""The end-to-end proof: bad run in, diagnosis and advice out, better run after.

Fast here: the recommendation → trainer mapping, ``advisor lr-range PATH`` on a range
test made by the trainer, the demo on the 0.4-second ``overfit`` preset, and one seed of
the e2e check on ``overfit`` and a shortened ``lr-too-low``. The full check (every bad
preset, 3 seeds, the 1cycle headline; about 4 minutes) is marked slow.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from advisor.model import Diagnosis
from advisor.model import Recommendation
from advisor.trainer.apply import NotApplicableError
from advisor.trainer.apply import apply_recommendation
from advisor.trainer.config import TrainConfig
from advisor.trainer.presets import PRESETS
from advisor.trainer.records import Evaluation

pytest.importorskip("torch")

BASE = TrainConfig(lr=0.01, weight_decay=0.0, epochs=40)


Value = float | str | None


def _rec(
    param: str, action: str, current: Value, suggested: Value, factor: float | None = None
) -> Recommendation:
    return Recommendation(param, action, current, suggested, "", "", factor)


def _ev(step: int, epoch: float) -> Evaluation:
    return Evaluation(step, epoch, 1.0, 0.5, 1.0, 0.5, 0.01, 0.9, 0.0, 32)


# --- recommendation → trainer settings --------------------------------------------------


def test_numeric_suggestions_are_used_as_given() -> None:
    """A suggested value is applied as is; the change is described for a person."""
    got = apply_recommendation(BASE, _rec("lr", "raise", 0.01, 0.03, 3.0))
    assert got.config.lr == 0.03
    assert got.change == "lr 0.01 → 0.03"
    got = apply_recommendation(BASE, _rec("weight_decay", "raise", 0.0, 1e-3))
    assert got.config.weight_decay == 1e-3
    got = apply_recommendation(BASE, _rec("batch_size", "raise", 32.0, 64.0, 2.0))
    assert got.config.batch_size == 64


def test_a_factor_applies_when_no_value_is_suggested() -> None:
    """With no current value in the log the rule gives a factor; the config's value scales."""
    got = apply_recommendation(BASE, _rec("lr", "lower", None, None, 0.3))
    assert math.isclose(got.config.lr, 0.003)
    with pytest.raises(NotApplicableError):
        apply_recommendation(BASE, _rec("weight_decay", "raise", None, None, 10.0))  # 0 x 10


def test_stop_training_becomes_the_epoch_of_the_best_step() -> None:
    """``stop at step 156`` with 13 iterations per epoch: 12 epochs."""
    history = [_ev(13 * k, float(k)) for k in range(1, 41)]
    got = apply_recommendation(BASE, _rec("training", "stop", None, 156.0), history)
    assert got.config.epochs == 12
    got = apply_recommendation(BASE, _rec("training", "stop", None, 160.0), history)
    assert got.config.epochs == 12  # the last evaluation at or before the step


def test_one_cycle_and_cyclical_momentum() -> None:
    """1cycle keeps the LR as its maximum, a tenth of it as the minimum, momentum 0.95→0.85."""
    rec = _rec("schedule", "set", "constant", "1cycle: max LR from a range test, min = max/10")
    got = apply_recommendation(BASE, rec).config
    assert (got.schedule, got.lr, got.min_lr, got.momentum, got.min_momentum) == (
        "1cycle", 0.01, 0.001, 0.95, 0.85,
    )  # fmt: skip
    rec = _rec("momentum", "set", 0.9, "cyclical 0.95 -> 0.85")
    assert apply_recommendation(BASE, rec).config.schedule == "1cycle"
    raised = apply_recommendation(got, _rec("lr", "raise", 0.01, 0.03)).config
    assert math.isclose(raised.start_lr(), 0.003)  # the minimum keeps its ratio


def test_what_the_trainer_cannot_do_is_refused() -> None:
    """A warm-up (the trainer has none), or a value the config refuses."""
    with pytest.raises(NotApplicableError, match="no setting"):
        apply_recommendation(BASE, _rec("warmup", "raise", None, "longer"))
    with pytest.raises(NotApplicableError, match="momentum"):
        apply_recommendation(BASE, _rec("momentum", "raise", 0.9, 1.5))


# --- advisor lr-range PATH --------------------------------------------------------------


@pytest.fixture(scope="module")
def range_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A range test by the trainer, shortened: 1,000 examples, 4 epochs (128 iterations)."""
    from advisor.trainer.train import train

    logdir = tmp_path_factory.mktemp("range") / "range-test"
    train(PRESETS["range-test"].config.replace(n_train=1000), logdir, quiet=True)
    return logdir


def test_lr_range_reads_the_bounds_and_plots_them(range_log: Path, tmp_path: Path) -> None:
    """Max and min LR for 1cycle, the other tools' suggestions, and a PNG."""
    from advisor.cli import cli

    plot = tmp_path / "range.png"
    res = CliRunner().invoke(cli, ["lr-range", str(range_log), "--plot", str(plot)])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0].startswith("LR range test: range-test (linear LR")
    bounds = lines[1].split()
    max_lr, min_lr = float(bounds[bounds.index("max") + 2]), float(bounds[bounds.index("min") + 2])
    assert 1e-3 < max_lr < 0.5  # inside the sweep
    assert math.isclose(min_lr, max_lr / 10, rel_tol=0.01)
    assert "fastai valley" in lines[2] and "Lightning" in lines[2]
    assert lines[-1] == f"plot: {plot}"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_lr_range_plot_goes_next_to_the_log_by_default(range_log: Path) -> None:
    from advisor.cli import cli

    res = CliRunner().invoke(cli, ["lr-range", str(range_log / "metrics.csv")])
    assert res.exit_code == 0, res.output
    assert (range_log / "lr-range.png").is_file()


def test_lr_range_warns_of_bad_input(range_log: Path, tmp_path: Path) -> None:
    """Input problems are one warning line each on stderr, as for replay: here a last
    line the writer never finished."""
    log = tmp_path / "cut"
    log.mkdir()
    whole = (range_log / "metrics.csv").read_bytes()
    (log / "metrics.csv").write_bytes(whole[: whole.rstrip(b"\n").rfind(b"\n") + 5])
    proc = subprocess.run(
        [sys.executable, "-c", "from advisor.cli import main; main()", "lr-range", str(log)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith(f"advisor: warning: {log / 'metrics.csv'}: line ")
    assert "last line has no line end" in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout.startswith("LR range test")


def test_lr_range_refuses_what_is_not_a_range_test(tmp_path: Path) -> None:
    """A constant-LR run is not a range test: one line saying why, exit 2."""
    from advisor.cli import cli

    log = tmp_path / "run"
    log.mkdir()
    rows = ["step,val_loss,lr"] + [f"{i},{1.0 / i},0.1" for i in range(1, 20)]
    (log / "metrics.csv").write_text("\n".join(rows) + "\n")
    proc = subprocess.run(
        [sys.executable, "-c", "from advisor.cli import main; main()", "lr-range", str(log)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "not an LR range test" in proc.stderr and "does not rise" in proc.stderr
    res = CliRunner().invoke(cli, ["lr-range", str(log), "--run"])
    assert res.exit_code == 2  # PATH and --run: one or the other


# --- the demo ---------------------------------------------------------------------------


def test_commands_import_without_torch() -> None:
    """``advisor demo --help`` (and e2e, lr-range) work without importing torch."""
    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom advisor.cli import cli\n"
        "for c in ('demo', 'e2e', 'lr-range', 'train'):\n"
        "    r = CliRunner().invoke(cli, [c, '--help'])\n"
        "    assert r.exit_code == 0 and 'Usage' in r.output, r.output\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def test_demo_watches_follows_the_advice_and_compares(tmp_path: Path) -> None:
    """The demo on the fast ``overfit`` preset: a live alert, a rerun, the table."""
    from advisor.cli import cli

    res = CliRunner().invoke(cli, ["demo", "--preset", "overfit", "--logdir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    out = res.output
    assert "▲ " in out and "opened  overfit-seed0" in out
    assert "Following the first alert's top recommendation" in out
    assert "| final val loss" in out and "| change applied" in out
    assert (tmp_path / "before" / "overfit-seed0" / "metrics.csv").is_file()
    assert (tmp_path / "after" / "overfit-seed0" / "metrics.csv").is_file()


# --- the e2e check ----------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["overfit", "lr-too-low"])
def test_e2e_fast(preset: str, tmp_path: Path) -> None:
    """One seed: the diagnosis is right and the applied advice lowers the val loss."""
    from advisor.config import load_settings
    from advisor.e2e import quick_configs
    from advisor.e2e import run_case
    from advisor.ruleset import load_rulebook

    cfg = quick_configs()[preset]
    case = run_case(preset, 0, tmp_path, load_settings(None), load_rulebook(()), config=cfg)
    assert case.diagnosed, case.before.timeline()
    assert case.after is not None, case.change
    assert case.loss_improved, (case.before.result.final_val_loss,
                                case.after.result.final_val_loss)  # fmt: skip


@pytest.mark.slow
def test_e2e_full(tmp_path: Path) -> None:
    """Every bad preset in 3 seeds, good, and the 1cycle headline meet issue 6's targets."""
    from advisor.e2e import run_e2e
    from advisor.e2e_report import targets

    report = run_e2e(range(3), tmp_path)
    assert all(h.run.summary.diagnosis is Diagnosis.HEALTHY for h in report.healthy)
    failed = [t.line() for t in targets(report) if not t.passed]
    assert failed == []
