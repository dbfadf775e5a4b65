"""The alert lifecycle in throttle.py: opened, updated, resolved, cooldown, rate limit."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from advisor.model import Alert
from advisor.model import AlertEvent
from advisor.model import Diagnosis
from advisor.model import Finding
from advisor.model import Recommendation
from advisor.model import Severity
from advisor.throttle import Firing
from advisor.throttle import RateLimiter
from advisor.throttle import RateState
from advisor.throttle import Status
from advisor.throttle import ThrottleParams
from advisor.throttle import ThrottleState
from advisor.throttle import forget_run
from advisor.throttle import prune
from advisor.throttle import step

W, C, INFO = Severity.WARNING, Severity.CRITICAL, Severity.INFO
P = ThrottleParams(cooldown=100.0)


@pytest.fixture(autouse=True)
def no_thread_leak() -> Iterator[None]:
    before = threading.active_count()
    yield
    assert threading.active_count() == before


def finding(sev: Severity = W, s: int = 10, **evidence: float) -> Finding:
    return Finding(Diagnosis.OVERFITTING, sev, 0.9, s, "val loss rises", evidence)


def rec(param: str = "weight_decay", action: str = "raise", cur: float = 1e-4) -> Recommendation:
    return Recommendation(param, action, cur, cur * 10, "regularise more", "Smith 2018, 4.4")


def events(alerts: list[Alert]) -> list[tuple[str, str, str]]:
    return [(a.event.value, a.run, a.rule) for a in alerts]


def run_calls(
    calls: list[tuple[float, list[Firing]]], params: ThrottleParams = P, run: str = "r"
) -> list[list[tuple[str, str, str]]]:
    state = ThrottleState()
    out = []
    for now, fs in calls:
        state, alerts = step(state, run, fs, now, params)
        out.append(events(alerts))
    return out


def test_opens_once_while_the_rule_keeps_firing() -> None:
    """A finding seen at every step is alerted once, not at every step."""
    f = Firing("OVF", finding())
    got = run_calls([(0, [f]), (1, [f]), (500, [f])])
    assert got == [[("opened", "r", "OVF")], [], []]


def test_resolves_when_the_rule_stops_firing() -> None:
    """A rule missing from the findings resolves, with the run's step and the time."""
    state, _ = step(ThrottleState(), "r", [("OVF", finding(s=10))], 0.0, P)
    state, alerts = step(state, "r", [], 50.0, P, at_step=42, at_epoch=4.2)
    assert events(alerts) == [("resolved", "r", "OVF")]
    assert alerts[0].finding.step == 42 and alerts[0].wall_time == 50.0
    assert alerts[0].epoch == 4.2
    assert alerts[0].recommendations == ()
    assert state.open_rules("r") == ()


def test_flapping_rule_is_not_reopened_within_the_cooldown() -> None:
    """Resolved at t=10: firing again at 50 is held; at 111 it opens."""
    f = ("OVF", finding())
    got = run_calls([(0, [f]), (10, []), (50, [f]), (109, [f]), (111, [f]), (112, [f])])
    assert got == [
        [("opened", "r", "OVF")],
        [("resolved", "r", "OVF")],
        [],
        [],
        [("opened", "r", "OVF")],
        [],
    ]


def test_reopens_within_the_cooldown_when_more_severe() -> None:
    """A critical finding after a resolved warning is not held back."""
    got = run_calls([(0, [Firing("X", finding(W))]), (10, []), (20, [Firing("X", finding(C))])])
    assert got[2] == [("opened", "r", "X")]


def test_severity_rise_updates_at_once_and_a_fall_waits_for_the_cooldown() -> None:
    """Rise: immediate update. Fall: held until cooldown after the last alert sent."""
    calls = [
        (0, [Firing("X", finding(W))]),
        (5, [Firing("X", finding(C))]),
        (10, [Firing("X", finding(W))]),
        (104, [Firing("X", finding(W))]),
        (106, [Firing("X", finding(W))]),
        (300, [Firing("X", finding(W))]),
    ]
    got = run_calls(calls)
    assert got == [
        [("opened", "r", "X")],
        [("updated", "r", "X")],
        [],
        [],
        [("updated", "r", "X")],
        [],
    ]


def test_top_recommendation_change_updates_but_its_values_do_not() -> None:
    """A new top (param, action) is an update; a moved current value is not."""
    calls = [
        (0, [("X", finding(), [rec(cur=1e-4)])]),
        (200, [("X", finding(), [rec(cur=2e-4)])]),
        (400, [("X", finding(), [rec("lr", "lower"), rec()])]),
        (401, [("X", finding(), [rec("lr", "lower")])]),
    ]
    assert run_calls(calls) == [[("opened", "r", "X")], [], [("updated", "r", "X")], []]


def test_update_carries_the_new_finding_and_recommendations() -> None:
    """The updated alert says what changed; wall_time and epoch come from the firing."""
    state, _ = step(ThrottleState(), "r", [("X", finding(W))], 0.0, P)
    new = Firing("X", finding(C, s=20), (rec("lr", "lower"),), epoch=3.0, wall_time=1e9)
    state, alerts = step(state, "r", [new], 1.0, P)
    (a,) = alerts
    assert a.event is AlertEvent.UPDATED and a.finding.severity is C and a.finding.step == 20
    assert a.recommendations == (rec("lr", "lower"),) and a.epoch == 3.0 and a.wall_time == 1e9


def test_min_severity_filters_and_a_drop_below_it_resolves() -> None:
    """INFO findings are ignored at min WARNING; an open alert falling to INFO resolves."""
    params = ThrottleParams(cooldown=0.0, min_severity=W)
    calls = [
        (0, [Firing("X", finding(INFO))]),
        (1, [Firing("X", finding(W))]),
        (2, [Firing("X", finding(INFO))]),
    ]
    assert run_calls(calls, params) == [[], [("opened", "r", "X")], [("resolved", "r", "X")]]


def test_alerts_are_per_run_and_per_rule() -> None:
    """Two runs and two rules are four independent alerts; a duplicated rule counts once."""
    state = ThrottleState()
    state, a1 = step(state, "a", [("X", finding(W)), ("Y", finding()), ("X", finding(C))], 0, P)
    state, a2 = step(state, "b", [("X", finding())], 0, P)
    assert events(a1) == [("opened", "a", "X"), ("opened", "a", "Y")]
    assert a1[0].finding.severity is C
    assert events(a2) == [("opened", "b", "X")]
    state, a3 = step(state, "a", [("Y", finding())], 1, P)
    assert events(a3) == [("resolved", "a", "X")]
    assert state.open_rules("a") == ("Y",) and state.open_rules("b") == ("X",)


def test_input_forms_are_equivalent() -> None:
    """(rule, finding), (rule, finding, recs) and Firing give the same alert."""
    f, r = finding(), (rec(),)
    outs = [
        step(ThrottleState(), "r", [x], 7.0, P)[1] for x in [("X", f, list(r)), Firing("X", f, r)]
    ]
    assert outs[0] == outs[1]
    (plain,) = step(ThrottleState(), "r", [("X", f)], 7.0, P)[1]
    assert plain.recommendations == () and plain.wall_time == 7.0


def test_resolved_tracks_are_forgotten_after_the_cooldown() -> None:
    """State stays bounded: a resolved track lives only as long as its cooldown."""
    state, _ = step(ThrottleState(), "r", [("X", finding())], 0, P)
    state, _ = step(state, "r", [], 10, P)
    assert state.runs["r"]["X"].status is Status.RESOLVED
    assert prune(state, 50, P) == state
    assert prune(state, 111, P).runs == {}
    state, _ = step(state, "r", [], 111, P)
    assert state.runs == {}


def test_forget_run_drops_without_resolving() -> None:
    """A deleted run is dropped from the state without a resolved alert."""
    state, _ = step(ThrottleState(), "r", [("X", finding())], 0, P)
    assert forget_run(state, "r").runs == {}
    assert forget_run(state, "other") is state


def test_state_json_keeps_non_finite_evidence_as_nan() -> None:
    """NaN and inf evidence is stored as null and read back as NaN (strict JSON)."""
    state, _ = step(ThrottleState(), "r", [("X", finding(a=math.nan, b=math.inf, c=1.5))], 0, P)
    text = state.to_json()
    assert "NaN" not in text and "Infinity" not in text
    ev = ThrottleState.from_json(text).runs["r"]["X"].finding.evidence
    assert math.isnan(ev["a"]) and math.isnan(ev["b"]) and ev["c"] == 1.5


@pytest.mark.parametrize("text", ["", "[]", '{"version": 99, "runs": {}}', '{"runs": {"r": 3}}'])
def test_state_from_bad_json_raises_value_error(text: str) -> None:
    """A corrupt or foreign state file is one ValueError, not a KeyError."""
    with pytest.raises(ValueError):
        ThrottleState.from_json(text)


def test_params_are_validated() -> None:
    """Bad parameters fail at construction, naming the bad value."""
    with pytest.raises(ValueError, match=r"cooldown must be .* but got -1"):
        ThrottleParams(cooldown=-1)
    with pytest.raises(ValueError, match="limit must be >= 1 but got 0"):
        RateLimiter(limit=0, window=1)
    with pytest.raises(ValueError, match="window"):
        RateLimiter(limit=1, window=math.inf)


def test_rate_limiter_sliding_window() -> None:
    """Two per 60 s: the third waits until the first leaves the window."""
    rl = RateLimiter(limit=2, window=60.0)
    s = RateState()
    got = []
    for now in [0.0, 1.0, 2.0, 59.9, 60.0, 60.5, 61.0]:
        s, ok = rl.allow(s, now)
        got.append(ok)
    assert got == [True, True, False, False, True, False, True]
    assert rl.next_allowed(s, 61.5) == 120.0
    assert rl.next_allowed(RateState(), 5.0) == 5.0


# Property tests -----------------------------------------------------------------------

RULES = ["A", "B", "C"]
TOPS = [None, ("lr", "lower"), ("weight_decay", "raise")]
firing_st = st.builds(
    lambda rule, sev, top: Firing(
        rule, finding(sev), () if top is None else (rec(top[0], top[1]),)
    ),
    st.sampled_from(RULES),
    st.sampled_from(list(Severity)),
    st.sampled_from(TOPS),
)
call_st = st.tuples(
    st.sampled_from(["a", "b"]),
    st.lists(firing_st, max_size=4),
    st.floats(min_value=0, max_value=80, allow_nan=False),
)
params_st = st.builds(
    ThrottleParams, st.sampled_from([0.0, 30.0, 100.0]), st.sampled_from(list(Severity))
)


@settings(max_examples=150, deadline=None)
@given(st.lists(call_st, max_size=30), params_st)
def test_lifecycle_invariants(
    calls: list[tuple[str, list[Firing], float]], params: ThrottleParams
) -> None:
    """No two opens without a resolve between; resolves and updates only while open;
    every firing rule ends open unless the flapping guard holds it; JSON round-trips."""
    state = ThrottleState()
    is_open: dict[tuple[str, str], bool] = {}
    now = 0.0
    for run, firings, dt in calls:
        now += dt
        state, alerts = step(state, run, firings, now, params)
        keys = [(a.run, a.rule) for a in alerts]
        assert len(keys) == len(set(keys)), "one alert per (run, rule) per step"
        for a in alerts:
            key, was = (a.run, a.rule), is_open.get((a.run, a.rule), False)
            if a.event is AlertEvent.OPENED:
                assert not was, f"second open of {key} without a resolve"
                is_open[key] = True
            else:
                assert was, f"{a.event.value} of {key} that is not open"
                is_open[key] = a.event is AlertEvent.UPDATED
        floor = list(Severity).index(params.min_severity)
        firing = {f.rule for f in firings if list(Severity).index(f.finding.severity) >= floor}
        opened = {rule for (r, rule), o in is_open.items() if r == run and o}
        assert set(state.open_rules(run)) == opened
        assert opened <= firing
        for rule in firing - opened:
            track = state.runs[run][rule]
            assert track.status is Status.RESOLVED and now - track.changed_at < params.cooldown
        assert ThrottleState.from_json(state.to_json()) == state
