"""Values passed between the advisor's modules.

Every value is a frozen dataclass. Point data travels in columnar form (numpy arrays),
never as one Python object per point: a run can hold millions of scalars and the
advisor keeps every one of them at under 40 bytes each.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]

HParamValue = float | str | bool


class Role(str, enum.Enum):
    """What a logged tag means to the advisor."""

    VAL_LOSS = "val_loss"
    TRAIN_LOSS = "train_loss"
    VAL_METRIC = "val_metric"
    TRAIN_METRIC = "train_metric"
    LR = "lr"
    MOMENTUM = "momentum"
    WEIGHT_DECAY = "weight_decay"
    BATCH_SIZE = "batch_size"
    EPOCH = "epoch"
    OTHER = "other"


class Direction(str, enum.Enum):
    """Which way a metric improves."""

    MIN = "min"
    MAX = "max"


@dataclass(frozen=True, slots=True)
class TagRole:
    """The role of one tag, with the direction in which its value improves."""

    role: Role
    direction: Direction = Direction.MIN


@dataclass(frozen=True, slots=True)
class Scalars:
    """A columnar block of scalar points, in the order they were logged.

    Attributes:
        tags: the tag table; ``tag_index`` points into it.
        tag_index: per point, the index of its tag in ``tags``.
        step: per point, the training step.
        wall_time: per point, seconds since the epoch (NaN when the format has none).
        value: per point, the value (NaN and inf are kept as logged).
    """

    tags: tuple[str, ...]
    tag_index: I32
    step: I64
    wall_time: F64
    value: F64

    def __len__(self) -> int:
        return int(self.step.shape[0])

    @staticmethod
    def empty() -> Scalars:
        return Scalars(
            tags=(),
            tag_index=np.zeros(0, np.int32),
            step=np.zeros(0, np.int64),
            wall_time=np.zeros(0, np.float64),
            value=np.zeros(0, np.float64),
        )


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong with an input, reported once, as one line.

    Attributes:
        path: the file.
        position: where in it, e.g. ``byte 1234`` or ``line 7``.
        message: what is wrong, in a few words.
    """

    path: str
    position: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.position}: {self.message}"


@dataclass(frozen=True, slots=True)
class Restart:
    """A training restart marker inside a batch (e.g. TensorBoard's SessionLog START).

    Every point already seen with ``step >= self.step`` is orphaned and purged, for
    the listed tags or for all tags of the run when ``tags`` is None.

    Attributes:
        position: how many of the batch's points precede the marker.
        step: the step the training restarted from.
        tags: the tags it applies to, or None for all.
    """

    position: int
    step: int
    tags: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Batch:
    """What one ``Loader.load()`` call found since the previous call.

    Attributes:
        scalars: the new points, in logged order.
        restarts: restart markers, ordered by position.
        problems: input problems found in this call (each reported once per loader).
        hparams: hyper-parameters found in this call (e.g. TensorBoard's hparams plugin).
        reset: the file shrank or was replaced, and was read again from its start.
        more: the loader stopped at the caller's byte budget; call again for the rest.
    """

    scalars: Scalars = field(default_factory=Scalars.empty)
    restarts: tuple[Restart, ...] = ()
    problems: tuple[Problem, ...] = ()
    hparams: Mapping[str, HParamValue] = field(default_factory=dict)
    reset: bool = False
    more: bool = False


@dataclass(frozen=True, slots=True)
class Curve:
    """One tag's series in a run, sorted by step, after restart purges.

    Attributes:
        tag: the logged name.
        role: what it means.
        step: steps, non-decreasing (equal steps are possible when logged twice).
        wall_time: seconds since the epoch, NaN where unknown.
        value: values, NaN and inf kept.
    """

    tag: str
    role: TagRole
    step: I64
    wall_time: F64
    value: F64

    def __len__(self) -> int:
        return int(self.step.shape[0])


@dataclass(frozen=True, slots=True)
class RunCurves:
    """Everything the core sees of one run.

    Attributes:
        run: the run's name (its directory relative to the watched root).
        curves: every curve of the run, by tag.
        hparams: known hyper-parameters (from the logs or the configuration).
    """

    run: str
    curves: Mapping[str, Curve]
    hparams: Mapping[str, HParamValue] = field(default_factory=dict)

    def by_role(self, role: Role) -> list[Curve]:
        """The curves of one role, longest first."""
        found = [c for c in self.curves.values() if c.role.role is role]
        return sorted(found, key=lambda c: (-len(c), c.tag))

    def first(self, role: Role) -> Curve | None:
        """The main curve of one role (the longest), or None."""
        found = self.by_role(role)
        return found[0] if found else None


class Diagnosis(str, enum.Enum):
    """What the validation loss says about a run (DESIGN.md section 4)."""

    HEALTHY = "healthy"
    UNDERFITTING = "underfitting"
    OVERFITTING = "overfitting"
    INSTABILITY = "instability"
    LR_RANGE_TEST = "lr_range_test"
    UNKNOWN = "unknown"


class Severity(str, enum.Enum):
    """How urgently a finding needs attention."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class Finding:
    """A detector's conclusion about a run at one moment.

    Attributes:
        diagnosis: what was found.
        severity: how urgent it is.
        confidence: in [0, 1].
        step: the last step the detector saw.
        message: one readable sentence built from the evidence.
        evidence: named numbers behind the conclusion (slopes, p-values, steps).
    """

    diagnosis: Diagnosis
    severity: Severity
    confidence: float
    step: int
    message: str
    evidence: Mapping[str, float] = field(default_factory=dict)


class AlertEvent(str, enum.Enum):
    """Where an alert is in its lifecycle."""

    OPENED = "opened"
    UPDATED = "updated"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Recommendation:
    """One concrete change to make (filled by the rules engine).

    Attributes:
        param: ``lr``, ``weight_decay``, ``batch_size``, ``momentum``, ``schedule``,
            ``warmup``, ``epochs`` or ``training``.
        action: ``raise``, ``lower``, ``set`` or ``stop``.
        current: the current value, when known (never invented).
        suggested: the suggested value, when a value can be given.
        why: the reason, one sentence.
        source: where the rule comes from (paper section).
        factor: the relative change (suggested / current), given also when the current
            value is unknown and so no absolute value can be suggested.
    """

    param: str
    action: str
    current: float | str | None
    suggested: float | str | None
    why: str
    source: str
    factor: float | None = None


@dataclass(frozen=True, slots=True)
class Alert:
    """A change in what the advisor says about a run (DESIGN.md section 5).

    Attributes:
        event: opened, updated or resolved.
        run: the run's name.
        rule: the id of the rule (or detector) that raised it.
        finding: the finding behind it.
        epoch: the epoch at ``finding.step``, when logged.
        wall_time: the logged wall time at ``finding.step``, when logged.
        recommendations: ranked, best first.
    """

    event: AlertEvent
    run: str
    rule: str
    finding: Finding
    epoch: float | None = None
    wall_time: float | None = None
    recommendations: tuple[Recommendation, ...] = ()


@dataclass(frozen=True, slots=True)
class RunSummary:
    """What the advisor says about a run at the end of its log.

    Attributes:
        run: the run's name.
        diagnosis: the alert still open at the end of the log, else the diagnosis at
            the last point.
        points: validation-loss points seen.
        last_step: the last step seen.
        first_alert_step: per diagnosis, the step at which it was first alerted.
        recommendations: what the rules advise for the run as it ends, alert or not
            (e.g. 1cycle bounds for an LR range test, fewer epochs for an early plateau).
    """

    run: str
    diagnosis: Diagnosis
    points: int
    last_step: int
    first_alert_step: Mapping[str, int] = field(default_factory=dict)
    recommendations: tuple[Recommendation, ...] = ()
