"""The one path from a run's curves to alerts: core → rules → throttle.

``watch`` and ``replay`` both call ``Pipeline.advance`` with a run's curves as they
stand; it analyses every validation evaluation it has not seen yet, in logged order, as
if live: the debounced diagnosis (``core.timeline.hold_step``), the rules engine's
ranked recommendations for it, and the alert lifecycle (``throttle.step``). Replay is
one call over the whole log; watching is one call per change. So an alert's step is
the step at which the advisor would have said it, in both.

Time: each evaluation happens at its logged wall time; where a format logs none (CSV),
at the ``clock`` the caller passes (the wall clock when watching), or, replaying, at
its step (the cooldown then counts steps).

Pure: no I/O, no clock. The state (per run, and the throttle's) serialises to JSON so
that the daemon can persist it and resume without alerting twice.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from typing import Any

from advisor import throttle
from advisor.alertjson import finding_from_dict
from advisor.alertjson import finding_to_dict
from advisor.core.analysis import Analysis
from advisor.core.features import view_of
from advisor.core.timeline import RULES
from advisor.core.timeline import Hold
from advisor.core.timeline import ReplayParams
from advisor.core.timeline import hold_step
from advisor.core.timeline import raw_timeline
from advisor.core.timeline import when_of
from advisor.engine import Advice
from advisor.engine import advise
from advisor.hparams import HParamOverride
from advisor.hparams import context_at
from advisor.hparams import overrides_for
from advisor.model import Alert
from advisor.model import Diagnosis
from advisor.model import Finding
from advisor.model import RunCurves
from advisor.model import Severity
from advisor.ruleset import RuleBook
from advisor.throttle import Firing
from advisor.throttle import ThrottleParams
from advisor.throttle import ThrottleState

_STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class RunTrack:
    """What the pipeline remembers of one run.

    Attributes:
        evaluated: validation evaluations analysed so far.
        last_step: the step of the last one.
        hold: the debounced diagnosis.
        rule: the rule id of the held alert, kept while it stays open so that a change
            of context (and so of the top rule) updates the alert instead of replacing it.
        advice: the advice for the held finding (not persisted: recomputed).
        advised_for: the finding ``advice`` was computed for (not persisted).
        last: the analysis of the last evaluation (not persisted).
    """

    evaluated: int = 0
    last_step: int | None = None
    hold: Hold = field(default_factory=Hold)
    rule: str | None = None
    advice: Advice | None = None
    advised_for: Finding | None = None
    last: Analysis | None = None


@dataclass
class Pipeline:
    """Runs' curves in, alerts out. Owned by one thread.

    Args:
        book: the rule book.
        hparams: configured hyper-parameters per run glob.
        params: detector and debouncing parameters.
        throttle_params: cooldown and minimum severity.
    """

    book: RuleBook
    hparams: tuple[HParamOverride, ...] = ()
    params: ReplayParams = field(default_factory=ReplayParams)
    throttle_params: ThrottleParams = field(default_factory=ThrottleParams)
    runs: dict[str, RunTrack] = field(default_factory=dict)
    throttle_state: ThrottleState = field(default_factory=ThrottleState)

    def advance(self, rc: RunCurves, clock: float | None = None) -> list[Alert]:
        """Analyse the evaluations of ``rc`` not seen yet; return the alerts they cause.

        Args:
            rc: the run's curves as they stand (every point so far).
            clock: the time now, for evaluations whose format logs no wall time; None
                when replaying. Such evaluations then have no time at all, so the
                throttle's cooldown (in seconds) does not apply to them: counted in steps
                (or epochs), it silenced an alert that reopened in the same run, which
                ``watch`` sends once the cooldown has passed. The core's own debouncing
                (``ReplayParams.resolve_patience``) still damps flapping.
        """
        track = self.runs.get(rc.run, RunTrack())
        overrides = overrides_for(rc.run, self.hparams)
        if overrides:
            # Configured values (e.g. the planned ``epochs``) reach the core as if logged.
            rc = replace(rc, hparams={**rc.hparams, **overrides})
        view = view_of(rc)
        if view is None or len(view.val) == 0:
            self.runs[rc.run] = track
            return []
        steps = view.val.step
        start = track.evaluated
        before = track.last  # the analysis of evaluation start - 1, if still valid
        if track.last_step is not None and (start > steps.size or
                                            int(steps[start - 1]) != track.last_step):  # fmt: skip
            # The log was rewritten (a restart purged steps): continue after the last
            # step seen, whatever its index is now.
            start = int((steps <= track.last_step).sum())
            before = None
        alerts: list[Alert] = []
        # For evaluations that have no time: the throttle without its cooldown.
        untimed = replace(self.throttle_params, cooldown=0.0)
        timeline = raw_timeline(view, self.params, start, before)
        for i, analysis in enumerate(timeline, start=start):
            hold, _ = hold_step(track.hold, analysis, self.params)
            track = replace(track, hold=hold, evaluated=i + 1, last_step=int(steps[i]),
                            last=analysis)  # fmt: skip
            track, firing = self._firing(rc, track, overrides)
            epoch, wall = when_of(rc, int(steps[i]))
            timeless = wall is None and clock is None
            now = wall if wall is not None else clock if clock is not None else float(steps[i])
            self.throttle_state, out = throttle.step(
                self.throttle_state, rc.run, firing, now,
                untimed if timeless else self.throttle_params, at_step=int(steps[i]),
                at_epoch=epoch,
            )  # fmt: skip
            if timeless:
                # Replaying a log without wall times: its "now" was a step, not a time.
                out = [replace(a, wall_time=None) for a in out]
            alerts.extend(out)
        self.runs[rc.run] = track
        return alerts

    def _firing(
        self, rc: RunCurves, track: RunTrack, overrides: Mapping[str, Any]
    ) -> tuple[RunTrack, list[Firing]]:
        finding = track.hold.finding
        if track.hold.key is None or finding is None:
            return replace(track, rule=None, advice=None, advised_for=None), []
        if track.advice is None or track.advised_for is not finding:
            advice = advise(self.book, finding, context_at(rc, finding.step, overrides))
            # Keep the open alert's rule while its diagnosis stays: the lifecycle is per
            # (run, rule), and a new top rule for the same problem is an update.
            keep = track.rule is not None and (
                track.advised_for is None or track.advised_for.diagnosis is finding.diagnosis
            )
            rule = track.rule if keep else advice.top_rule or RULES[finding.diagnosis]
            track = replace(track, rule=rule, advice=advice, advised_for=finding)
        assert track.rule is not None and track.advice is not None
        epoch, wall = when_of(rc, finding.step)
        return track, [Firing(track.rule, finding, track.advice.recommendations, epoch, wall)]

    def summary_advice(self, rc: RunCurves) -> Advice | None:
        """Advice for the run's state at its end: the open alert's, else for the last
        analysis (healthy, range test)."""
        track = self.runs.get(rc.run)
        if track is None or track.last is None or track.last.finding is None:
            return None
        if track.hold.key is not None and track.advice is not None:
            return track.advice
        finding = track.last.finding
        ctx = context_at(rc, finding.step, overrides_for(rc.run, self.hparams))
        return advise(self.book, finding, ctx)

    def forget(self, run: str) -> None:
        """Drop a run whose logs were deleted."""
        self.runs.pop(run, None)
        self.throttle_state = throttle.forget_run(self.throttle_state, run)

    def state_to_json(self) -> str:
        """The persistent state: per run what was analysed and held, and the throttle."""
        runs = {
            run: {
                "evaluated": t.evaluated,
                "last_step": t.last_step,
                "hold": _hold_to_dict(t.hold),
                "rule": t.rule,
            }
            for run, t in sorted(self.runs.items())
        }
        return json.dumps(
            {"version": _STATE_VERSION, "runs": runs,
             "throttle": self.throttle_state.to_dict()},
            allow_nan=False,
        )  # fmt: skip

    def load_state(self, text: str) -> None:
        """Restore what ``state_to_json`` wrote.

        Raises:
            ValueError: the text is not a state this version wrote.
        """
        self.runs, self.throttle_state = parse_state(text)


def parse_state(text: str) -> tuple[dict[str, RunTrack], ThrottleState]:
    """What ``Pipeline.state_to_json`` wrote: per run what was analysed and held, and
    the throttle (what was said).

    Raises:
        ValueError: the text is not a state this version wrote.
    """
    try:
        data = json.loads(text)
        if data.get("version") != _STATE_VERSION:
            raise ValueError(f"unsupported version {data.get('version')!r}")
        runs = {
            str(run): RunTrack(
                evaluated=int(t["evaluated"]),
                last_step=None if t["last_step"] is None else int(t["last_step"]),
                hold=_hold_from_dict(t["hold"]),
                rule=t["rule"],
            )
            for run, t in data["runs"].items()
        }
        state = ThrottleState.from_dict(data["throttle"])
    except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
        raise ValueError(f"invalid pipeline state: {exc}") from None
    return runs, state


def _hold_to_dict(h: Hold) -> dict[str, Any]:
    return {
        "key": None if h.key is None else [h.key[0].value, h.key[1].value if h.key[1] else None],
        "finding": None if h.finding is None else finding_to_dict(h.finding),
        "streak": h.streak,
        "streak_key": None if h.streak_key is None else [
            h.streak_key[0].value, h.streak_key[1].value if h.streak_key[1] else None],
        "clear": h.clear,
        "level": None if math.isnan(h.level) else h.level,
    }  # fmt: skip


def _key_from(raw: Any) -> Any:
    if raw is None:
        return None
    return (Diagnosis(raw[0]), None if raw[1] is None else Severity(raw[1]))


def _hold_from_dict(d: Mapping[str, Any]) -> Hold:
    return Hold(
        key=_key_from(d["key"]),
        finding=None if d["finding"] is None else finding_from_dict(d["finding"]),
        streak=int(d["streak"]),
        streak_key=_key_from(d["streak_key"]),
        clear=int(d["clear"]),
        level=math.nan if d.get("level") is None else float(d["level"]),
    )
