"""The alert lifecycle: (state, findings, now) → (state, alerts). Pure: no clock, no I/O.

For each (run, rule) an alert is *opened* when the rule's finding appears, *updated*
when its severity or its top recommendation changes, and *resolved* when the rule no
longer fires. Between these events nothing is sent, however often the rule fires.

Flapping is damped by one ``cooldown``:

* a (run, rule) resolved less than ``cooldown`` seconds ago is not opened again, unless
  the new finding is more severe than the one that resolved;
* an open alert is updated at most once per ``cooldown``, unless its severity rises.

A change held back by the cooldown is not lost: the state keeps what was last sent, so
the next call after the cooldown that still sees the change sends it.

``RateLimiter`` caps how many alerts one sink receives per window; what happens to the
alerts over the cap is the dispatcher's business (``advisor.sinks.dispatcher``).
"""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from typing import Any

from advisor.alertjson import finding_from_dict
from advisor.alertjson import finding_to_dict
from advisor.model import Alert
from advisor.model import AlertEvent
from advisor.model import Finding
from advisor.model import Recommendation
from advisor.model import Severity

_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}
_STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class ThrottleParams:
    """How the lifecycle is damped.

    Attributes:
        cooldown: seconds; see the module docstring.
        min_severity: findings below it are treated as not firing.
    """

    cooldown: float = 600.0
    min_severity: Severity = Severity.INFO

    def __post_init__(self) -> None:
        if not (math.isfinite(self.cooldown) and self.cooldown >= 0):
            raise ValueError(f"cooldown must be a finite number >= 0 but got {self.cooldown}")


@dataclass(frozen=True, slots=True)
class Firing:
    """A rule firing for a run, as the rules engine passes it.

    Attributes:
        rule: the rule's (or detector's) stable id.
        finding: what it found.
        recommendations: ranked, best first.
        epoch: the epoch at ``finding.step``, when logged.
        wall_time: the logged wall time at ``finding.step``; ``now`` when None.
    """

    rule: str
    finding: Finding
    recommendations: tuple[Recommendation, ...] = ()
    epoch: float | None = None
    wall_time: float | None = None


FiringLike = Firing | tuple[str, Finding] | tuple[str, Finding, Sequence[Recommendation]]


def as_firing(item: FiringLike) -> Firing:
    """Accept ``Firing``, ``(rule, finding)`` or ``(rule, finding, recommendations)``."""
    if isinstance(item, Firing):
        return item
    if len(item) == 2:
        return Firing(item[0], item[1])
    return Firing(item[0], item[1], tuple(item[2]))


class Status(str, enum.Enum):
    OPEN = "open"
    RESOLVED = "resolved"


TopKey = tuple[str, str] | None


def top_key(recommendations: Sequence[Recommendation]) -> TopKey:
    """What makes the top recommendation "change": its parameter and its action.

    The current and suggested values are left out on purpose: a scheduled learning rate
    moves them at every step, and an update per step is noise.
    """
    if not recommendations:
        return None
    return (recommendations[0].param, recommendations[0].action)


@dataclass(frozen=True, slots=True)
class Track:
    """What was last said about one (run, rule).

    Attributes:
        status: open, or resolved (kept only for the cooldown, to damp flapping).
        finding: the finding of the last alert sent.
        top: ``top_key`` of the last alert sent.
        changed_at: when it was opened or resolved.
        sent_at: when its last opened or updated alert was sent.
    """

    status: Status
    finding: Finding
    top: TopKey
    changed_at: float
    sent_at: float


@dataclass(frozen=True, slots=True)
class ThrottleState:
    """Every tracked (run, rule). Treat as immutable; ``step`` returns a new one."""

    runs: Mapping[str, Mapping[str, Track]] = field(default_factory=dict)

    def open_rules(self, run: str) -> tuple[str, ...]:
        """The rules with an open alert for ``run``, sorted."""
        tracks = self.runs.get(run, {})
        return tuple(sorted(r for r, t in tracks.items() if t.status is Status.OPEN))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data, stable across versions of this module with the same
        ``version`` (the pipeline's state embeds it)."""
        runs = {
            run: {rule: _track_to_dict(t) for rule, t in sorted(tracks.items())}
            for run, tracks in sorted(self.runs.items())
        }
        return {"version": _STATE_VERSION, "runs": runs}

    def to_json(self) -> str:
        """``to_dict`` as JSON text."""
        return json.dumps(self.to_dict(), allow_nan=False)

    @staticmethod
    def from_dict(data: Any) -> ThrottleState:
        """Inverse of ``to_dict``.

        Raises:
            ValueError: the data is not a state this version wrote.
        """
        try:
            if data.get("version") != _STATE_VERSION:
                raise ValueError(f"unsupported version {data.get('version')!r}")
            runs = {
                str(run): {str(rule): _track_from_dict(t) for rule, t in tracks.items()}
                for run, tracks in data["runs"].items()
            }
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"invalid throttle state: {exc}") from None
        return ThrottleState(runs)

    @staticmethod
    def from_json(text: str) -> ThrottleState:
        """Inverse of ``to_json``.

        Raises:
            ValueError: the text is not a state this version wrote.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"invalid throttle state: {exc}") from None
        return ThrottleState.from_dict(data)


def _track_to_dict(t: Track) -> dict[str, Any]:
    return {
        "status": t.status.value,
        "finding": finding_to_dict(t.finding),
        "top": list(t.top) if t.top else None,
        "changed_at": t.changed_at,
        "sent_at": t.sent_at,
    }


def _track_from_dict(d: Mapping[str, Any]) -> Track:
    top = d["top"]
    return Track(
        status=Status(d["status"]),
        finding=finding_from_dict(d["finding"]),
        top=(str(top[0]), str(top[1])) if top else None,
        changed_at=float(d["changed_at"]),
        sent_at=float(d["sent_at"]),
    )


def step(
    state: ThrottleState,
    run: str,
    findings: Sequence[FiringLike],
    now: float,
    params: ThrottleParams,
    *,
    at_step: int | None = None,
    at_epoch: float | None = None,
) -> tuple[ThrottleState, list[Alert]]:
    """Advance one run's alerts to what its rules say now.

    Args:
        state: the previous state.
        run: the run these findings are about.
        findings: every rule firing for the run now; a tracked rule missing here has
            stopped firing. A rule listed twice counts once, at its highest severity.
        now: seconds (wall clock when watching, the log's clock when replaying).
        params: cooldown and minimum severity.
        at_step: the run's last step, given to resolved alerts; they keep the step of
            their last finding when None.
        at_epoch: the epoch at ``at_step``, when known, also given to resolved alerts.

    Returns:
        The new state, and the alerts to send: opened and updated in input order, then
        resolved by rule id.
    """
    current: dict[str, Firing] = {}
    floor = _RANK[params.min_severity]
    for item in findings:
        f = as_firing(item)
        rank = _RANK[f.finding.severity]
        seen = current.get(f.rule)
        if rank >= floor and (seen is None or rank > _RANK[seen.finding.severity]):
            current[f.rule] = f
    old = state.runs.get(run, {})
    tracks: dict[str, Track] = {}
    alerts: list[Alert] = []
    for rule, f in current.items():
        track, alert = _fire(old.get(rule), run, f, now, params)
        if track is not None:
            tracks[rule] = track
        if alert is not None:
            alerts.append(alert)
    for rule in sorted(set(old) - set(current)):
        t = old[rule]
        if t.status is Status.OPEN:
            finding = t.finding if at_step is None else replace(t.finding, step=at_step)
            alerts.append(
                Alert(AlertEvent.RESOLVED, run, rule, finding, epoch=at_epoch, wall_time=now)
            )
            tracks[rule] = replace(t, status=Status.RESOLVED, changed_at=now)
        elif now - t.changed_at < params.cooldown:
            tracks[rule] = t  # still damping; forgotten once the cooldown is over
    runs = dict(state.runs)
    if tracks:
        runs[run] = tracks
    else:
        runs.pop(run, None)
    return ThrottleState(runs), alerts


def _fire(
    t: Track | None, run: str, f: Firing, now: float, params: ThrottleParams
) -> tuple[Track | None, Alert | None]:
    """One rule that fires now: open, update or hold."""
    key = top_key(f.recommendations)
    wall = now if f.wall_time is None else f.wall_time

    def alert(event: AlertEvent) -> Alert:
        return Alert(event, run, f.rule, f.finding, f.epoch, wall, f.recommendations)

    if t is None or t.status is Status.RESOLVED:
        if (
            t is not None
            and now - t.changed_at < params.cooldown
            and _RANK[f.finding.severity] <= _RANK[t.finding.severity]
        ):
            return t, None  # hold the re-open until the cooldown is over
        return Track(Status.OPEN, f.finding, key, now, now), alert(AlertEvent.OPENED)
    rises = _RANK[f.finding.severity] > _RANK[t.finding.severity]
    changed = f.finding.severity is not t.finding.severity or key != t.top
    if changed and (rises or now - t.sent_at >= params.cooldown):
        track = replace(t, finding=f.finding, top=key, sent_at=now)
        return track, alert(AlertEvent.UPDATED)
    return t, None


def forget_run(state: ThrottleState, run: str) -> ThrottleState:
    """Drop a run (deleted from disk) without resolving its alerts."""
    if run not in state.runs:
        return state
    runs = dict(state.runs)
    del runs[run]
    return ThrottleState(runs)


def prune(state: ThrottleState, now: float, params: ThrottleParams) -> ThrottleState:
    """Forget resolved tracks whose cooldown is over, in every run (keeps state bounded)."""
    runs: dict[str, Mapping[str, Track]] = {}
    for run, tracks in state.runs.items():
        kept = {
            r: t
            for r, t in tracks.items()
            if t.status is Status.OPEN or now - t.changed_at < params.cooldown
        }
        if kept:
            runs[run] = kept
    return ThrottleState(runs)


@dataclass(frozen=True, slots=True)
class RateState:
    """When the last (at most ``limit``) alerts went out, oldest first."""

    sent: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class RateLimiter:
    """At most ``limit`` alerts per sliding ``window`` seconds. Pure.

    Example:
        >>> rl = RateLimiter(limit=2, window=60.0)
        >>> s, ok1 = rl.allow(RateState(), 0.0)
        >>> s, ok2 = rl.allow(s, 1.0)
        >>> s, ok3 = rl.allow(s, 2.0)
        >>> ok1, ok2, ok3, rl.next_allowed(s, 2.0)
        (True, True, False, 60.0)
    """

    limit: int
    window: float

    def __post_init__(self) -> None:
        if self.limit < 1:
            raise ValueError(f"limit must be >= 1 but got {self.limit}")
        if not (math.isfinite(self.window) and self.window > 0):
            raise ValueError(f"window must be a finite number > 0 but got {self.window}")

    def _recent(self, state: RateState, now: float) -> tuple[float, ...]:
        return tuple(t for t in state.sent if now - t < self.window)

    def allow(self, state: RateState, now: float) -> tuple[RateState, bool]:
        """Whether one more alert may go out at ``now``; records it when it may."""
        recent = self._recent(state, now)
        if len(recent) < self.limit:
            return RateState((*recent, now)), True
        return RateState(recent), False

    def next_allowed(self, state: RateState, now: float) -> float:
        """The earliest time at which ``allow`` says yes (``now`` if it does already)."""
        recent = self._recent(state, now)
        if len(recent) < self.limit:
            return now
        return recent[len(recent) - self.limit] + self.window
