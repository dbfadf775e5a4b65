"""The one path from curves to alerts: replay and watch see the same alerts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from advisor.core import timeline
from advisor.core.timeline import ReplayParams
from advisor.core.timeline import replay_run
from advisor.model import AlertEvent
from advisor.model import Curve
from advisor.model import Role
from advisor.model import RunCurves
from advisor.model import TagRole
from advisor.pipeline import Pipeline
from advisor.replay import summarise
from advisor.ruleset import load_rulebook
from advisor.scenarios import suite
from advisor.throttle import ThrottleParams

BOOK = load_rulebook()
# Every evaluation analysed, so that chunked and whole walks are comparable exactly.
EXACT = ReplayParams(max_analyses=10_000)
NO_COOLDOWN = ThrottleParams(cooldown=0.0)
SCENARIOS = [s for s in suite("tune") if s.label.value != "lr_range_test"][::4]


def prefix(rc: RunCurves, upto: int) -> RunCurves:
    """The run as it stood when ``upto`` had just been logged."""
    curves = {}
    for tag, c in rc.curves.items():
        keep = c.step <= upto
        curves[tag] = Curve(tag, c.role, c.step[keep], c.wall_time[keep], c.value[keep])
    return RunCurves(rc.run, curves, rc.hparams)


def events(alerts: list) -> list[tuple[str, str, int]]:
    return [(a.event.value, a.finding.diagnosis.value, a.finding.step) for a in alerts]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_pipeline_matches_the_core_timeline(scenario) -> None:
    """Without a cooldown, the pipeline's lifecycle is the core's, step for step."""
    rc = scenario.run_curves()
    core_alerts, _ = replay_run(rc, EXACT)
    pipe = Pipeline(BOOK, params=EXACT, throttle_params=NO_COOLDOWN)
    assert events(pipe.advance(rc)) == events(core_alerts)


def _two_episodes(wall: np.ndarray) -> RunCurves:
    """Validation loss that oscillates twice (evaluations 20-33 and 60-73), calm between."""
    n = wall.size
    i = np.arange(1, n + 1, dtype=float)
    rng = np.random.default_rng(0)
    val = (0.4 + 2.0 * np.exp(-i / 3.0)) * (1 + 0.01 * rng.standard_normal(n))
    swing = 1 + 0.3 * np.where(np.arange(14) % 2 == 0, 1.0, -1.0)
    val[20:34] *= swing
    val[60:74] *= swing
    step = np.arange(1, n + 1, dtype=np.int64)
    return RunCurves("r", {"val_loss": Curve("val_loss", TagRole(Role.VAL_LOSS), step, wall, val)})


def test_a_log_without_wall_times_replays_without_the_cooldown() -> None:
    """Steps are not seconds: an alert that reopens 23 epochs after it resolved is sent
    when the log has no wall times (it was silenced for good: 600 "seconds" of epochs),
    and so is its resolution once the second episode is over. With wall times a second
    apart the cooldown still holds both back."""
    want = [("opened", "instability", 25), ("resolved", "instability", 43),
            ("opened", "instability", 66), ("resolved", "instability", 92)]  # fmt: skip
    core, _ = replay_run(_two_episodes(np.full(100, np.nan)), EXACT)
    assert events(core) == want
    untimed = Pipeline(BOOK, params=EXACT).advance(_two_episodes(np.full(100, np.nan)))
    assert events(untimed) == want
    assert all(a.wall_time is None for a in untimed)
    timed = Pipeline(BOOK, params=EXACT).advance(_two_episodes(1.7e9 + np.arange(100.0)))
    assert events(timed) == want[:2]


@pytest.mark.parametrize("scenario", SCENARIOS[:8], ids=lambda s: s.name)
def test_live_in_chunks_equals_replay(scenario) -> None:
    """Advancing as points arrive (in uneven chunks) gives exactly the replay's alerts."""
    rc = scenario.run_curves()
    whole = Pipeline(BOOK, params=EXACT).advance(rc)
    live = Pipeline(BOOK, params=EXACT)
    steps = scenario.step
    got = []
    for cut in sorted({*steps[:: max(1, steps.size // 7)].tolist(), int(steps[-1])}):
        got += live.advance(prefix(rc, cut))
    assert events(got) == events(whole)
    assert [a.rule for a in got] == [a.rule for a in whole]


@pytest.mark.parametrize("scenario", SCENARIOS[:8], ids=lambda s: s.name)
def test_restart_from_persisted_state_alerts_nothing_twice(scenario) -> None:
    """Stopping halfway and resuming from the saved state repeats and loses nothing."""
    rc = scenario.run_curves()
    whole = Pipeline(BOOK, params=EXACT).advance(rc)
    half = int(scenario.step[scenario.step.size // 2])
    first = Pipeline(BOOK, params=EXACT)
    got = first.advance(prefix(rc, half))
    resumed = Pipeline(BOOK, params=EXACT)
    resumed.load_state(first.state_to_json())
    got += resumed.advance(rc)
    assert events(got) == events(whole)


def test_every_alert_carries_the_epoch_of_its_step() -> None:
    """Opened and resolved alerts alike carry the logged epoch at their step, as the
    core's replay does (resolved ones came out of the throttle without it)."""
    val = 0.4 + 2 * np.exp(-np.arange(1, 61) / 3.0)
    val[30:33] = [1.2, 1.5, 1.7]
    step = np.arange(1, 61, dtype=np.int64) * 10
    wall = 1.7e9 + step.astype(float)
    rc = RunCurves("e", {
        "val_loss": Curve("val_loss", TagRole(Role.VAL_LOSS), step, wall, val),
        "epoch": Curve("epoch", TagRole(Role.EPOCH), step, wall, step / 100.0),
    })  # fmt: skip
    got = Pipeline(BOOK, params=EXACT, throttle_params=NO_COOLDOWN).advance(rc)
    core, _ = replay_run(rc, EXACT)
    assert events(got) == events(core) and got[-1].event is AlertEvent.RESOLVED
    assert [a.epoch for a in got] == [a.epoch for a in core]
    assert all(a.epoch == a.finding.step / 100.0 for a in got)


def test_restart_in_an_oscillation_pause_keeps_the_alert() -> None:
    """The level an oscillation alert must fall from to resolve is saved with the state
    (and a state written before it existed loads, with no level): resuming in the pause
    between two bouts of swings neither resolves nor reopens the alert."""
    swings = 1.0 + 0.2 * np.where(np.arange(20) % 2 == 0, 1.0, -1.0)
    calm = 1.0 + 0.01 * np.random.default_rng(1).standard_normal(10)
    val = np.concatenate([1.0 + 1.3 * np.exp(-np.arange(8) / 2.0), swings, calm, swings])
    step = np.arange(1, val.size + 1, dtype=np.int64) * 10
    wall = 1.7e9 + step.astype(float)
    rc = RunCurves("osc", {"val_loss": Curve("val_loss", TagRole(Role.VAL_LOSS), step, wall, val)})
    whole = Pipeline(BOOK, params=EXACT, throttle_params=NO_COOLDOWN).advance(rc)
    assert [a.event for a in whole] == [AlertEvent.OPENED]
    first = Pipeline(BOOK, params=EXACT, throttle_params=NO_COOLDOWN)
    got = first.advance(prefix(rc, int(step[8 + 20 + 5])))
    state = first.state_to_json()
    resumed = Pipeline(BOOK, params=EXACT, throttle_params=NO_COOLDOWN)
    resumed.load_state(state)
    assert events(got + resumed.advance(rc)) == events(whole)
    old = json.loads(state)
    for run in old["runs"].values():
        del run["hold"]["level"]
    Pipeline(BOOK, params=EXACT).load_state(json.dumps(old))


# What the daemon uses for a run already analysed: one analysis per batch, at its end.
LIVE = ReplayParams(max_analyses=1)


def _count_analyses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    real = timeline.analyze_view

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(timeline, "analyze_view", counted)
    return calls


def test_live_batch_whose_diagnosis_holds_costs_one_analysis(monkeypatch) -> None:
    """A batch of new evaluations is analysed at its end only, against the last analysis
    kept from before, so the cost of a run's turn does not grow with its wait."""
    rc = next(s for s in suite("tune") if s.name == "healthy_00").run_curves()
    steps = rc.first(Role.VAL_LOSS).step
    live = Pipeline(BOOK, params=LIVE)
    live.advance(prefix(rc, int(steps[20])))
    calls = _count_analyses(monkeypatch)
    cuts = steps[28::8]
    for cut in cuts:
        assert live.advance(prefix(rc, int(cut))) == []
    assert calls[0] == cuts.size


PROBLEMS = [s for s in suite("tune") if s.label.value not in ("healthy", "lr_range_test")]


@pytest.mark.parametrize("scenario", PROBLEMS[::4], ids=lambda s: s.name)
def test_live_batches_find_the_replay_alerts(scenario) -> None:
    """Analysed once per batch of 5 and refined where the diagnosis changed, the live
    walk opens the alerts the replay of every evaluation opens, each at its step or, if
    the diagnosis appeared and vanished inside a batch, within a batch after it."""
    rc = scenario.run_curves()
    whole = events(Pipeline(BOOK, params=EXACT).advance(rc))
    live = Pipeline(BOOK, params=LIVE)
    steps = scenario.step
    batch = 5
    got = []
    for cut in [*steps[: steps.size // 4].tolist(), *steps[steps.size // 4 :: batch].tolist(),
                int(steps[-1])]:  # fmt: skip
        got += events(live.advance(prefix(rc, int(cut))))
    assert whole and [e[:2] for e in got] == [e[:2] for e in whole]
    span = batch * int(np.median(np.diff(steps)))
    assert all(0 <= g[2] - w[2] <= span for g, w in zip(got, whole, strict=True))


def test_alerts_carry_rules_and_recommendations() -> None:
    """An opened alert names the top rule and its ranked recommendations."""
    over = next(s for s in suite("tune") if s.label.value == "overfitting")
    alerts = Pipeline(BOOK).advance(over.run_curves())
    opened = [a for a in alerts if a.event is AlertEvent.OPENED]
    assert opened and opened[0].rule.startswith("SMITH-OVF-")
    assert opened[0].recommendations[0].param == "weight_decay"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
def test_replay_summary_is_the_core_summary(scenario) -> None:
    """``advisor replay``'s end-of-log diagnosis is the core's (an alert still open at the
    end, else the last analysis), and an open alert's advice is the summary's."""
    rc = scenario.run_curves()
    _, core = replay_run(rc, EXACT)
    pipe = Pipeline(BOOK, params=EXACT, throttle_params=NO_COOLDOWN)
    alerts = pipe.advance(rc)
    summary = summarise(pipe, rc, alerts)
    assert summary.diagnosis is core.diagnosis
    track = pipe.runs[rc.run]
    if track.hold.key is not None:
        assert track.advice is not None
        assert summary.recommendations == track.advice.recommendations


def test_bad_state_is_a_clear_error() -> None:
    """A state file from elsewhere is rejected, not half-loaded."""
    with pytest.raises(ValueError, match="pipeline state"):
        Pipeline(BOOK).load_state('{"version": 1, "runs": {"a": {}}}')


def test_run_without_validation_signal_gives_nothing() -> None:
    """A run with only a training loss raises no alert."""
    c = Curve("loss", __import__("advisor.roles").roles.default_role("loss"),
              np.arange(5, dtype=np.int64), np.full(5, np.nan), np.ones(5))  # fmt: skip
    assert Pipeline(BOOK).advance(RunCurves("r", {"loss": c})) == []


SCENARIO_DIR = Path(__file__).parents[1] / "fixtures" / "scenarios" / "tune"


def test_replay_cli_json_and_fail_on() -> None:
    """replay --json writes strict JSON Lines; --fail-on exits 1 when matched."""
    run = SCENARIO_DIR / "overfit_00"
    proc = subprocess.run(
        [sys.executable, "-c", "from advisor.cli import main; main()", "replay", str(run),
         "--json", "--fail-on", "overfitting"],
        check=False, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    objs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert objs[-1]["type"] == "summary" and objs[-1]["diagnosis"] == "overfitting"
    first = objs[0]
    assert first["type"] == "alert" and first["event"] == "opened"
    for key in ("run", "rule", "diagnosis", "severity", "confidence", "step", "epoch",
                "wall_time", "message", "evidence", "recommendations"):  # fmt: skip
        assert key in first
    ok = subprocess.run(
        [sys.executable, "-c", "from advisor.cli import main; main()", "replay", str(run),
         "--fail-on", "instability"],
        check=False, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert ok.returncode == 0
    assert "end: overfitting" in ok.stdout


def test_configured_planned_length_reaches_the_core() -> None:
    """``[[hparams]]`` in advisor.toml (here ``epochs``) reaches the detectors as if logged:
    a JSON Lines run, whose logs cannot hold it, is flagged earlier with it, exactly as
    the core replays the run with that value among its hyper-parameters."""
    from advisor.hparams import HParamOverride

    under = next(s for s in suite("tune") if s.name == "underfit_13")
    assert under.fmt == "jsonl" and not under.hparams
    rc = under.run_curves()
    told = (HParamOverride("under*", {"epochs": float(under.n)}),)
    with_plan = Pipeline(BOOK, told, params=EXACT, throttle_params=NO_COOLDOWN).advance(rc)
    without = Pipeline(BOOK, params=EXACT, throttle_params=NO_COOLDOWN).advance(rc)
    assert with_plan[0].finding.step < without[0].finding.step
    assert with_plan[0].finding.evidence["elapsed_pct"] <= 30.0
    core, _ = replay_run(RunCurves(rc.run, rc.curves, {"epochs": float(under.n)}), EXACT)
    assert events(with_plan) == events(core)


def test_fixture_files_hold_the_planned_length_of_the_generator() -> None:
    """The committed scenario files give the loaders the same planned length as the
    generator gives the core in memory (HF, MLflow and TensorBoard runs; none for CSV,
    JSON Lines and plain text)."""
    from advisor.api import load_store
    from advisor.config import Settings

    store = load_store([SCENARIO_DIR], Settings())
    read: dict[str, dict[str, object]] = {}
    for run in store.runs():
        read.setdefault(run.split("/")[0], {}).update(store.hparams(run))
    for s in suite("tune"):
        assert read.get(s.name, {}) == s.hparams, s.name
