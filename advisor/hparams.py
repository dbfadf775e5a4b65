"""A run's hyper-parameter context: what the rules need to know to give concrete values.

Sources, later ones overriding earlier ones: hyper-parameters written with the logs
(TensorBoard's hparams plugin, ``trainer_state.json``, Lightning's ``hparams.yaml``,
MLflow params), the last logged value of scalar tags (``lr``, ``momentum``...) at the
moment of a finding, and ``[[hparams]]`` overrides in ``advisor.toml`` per run glob.
A value that none of them gives stays unknown: the rules never invent a current value.

Pure: no I/O here; callers pass the curves and the configured overrides.
"""

from __future__ import annotations

import enum
import fnmatch
import math
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import numpy as np

from advisor.errors import ConfigError
from advisor.model import Curve
from advisor.model import HParamValue
from advisor.model import Role
from advisor.model import RunCurves
from advisor.roles import default_role


class Schedule(str, enum.Enum):
    """The shape of the logged learning rate."""

    CONSTANT = "constant"
    RISING = "rising"  # an LR range test
    STEP = "step"  # piecewise constant, dropping
    DECAYING = "decaying"  # smooth decrease (cosine, exponential, linear)
    CYCLIC = "cyclic"  # up then down (1cycle, CLR)
    WARMUP = "warmup"  # up then flat
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Context:
    """What is known of a run's hyper-parameters at one step.

    Attributes:
        lr: the current learning rate, if known.
        momentum: the current momentum (or Adam's beta1), if known.
        weight_decay: the weight decay, if known.
        batch_size: the total batch size, if known.
        max_lr: the largest learning rate logged so far, if any was logged.
        schedule: the shape of the logged learning rate.
        extra: every other known hyper-parameter, by name.
    """

    lr: float | None = None
    momentum: float | None = None
    weight_decay: float | None = None
    batch_size: float | None = None
    max_lr: float | None = None
    schedule: Schedule = Schedule.UNKNOWN
    extra: Mapping[str, HParamValue] = field(default_factory=dict)

    def get(self, name: str) -> float | str | bool | None:
        """A context value by the name rules use (``lr``, ``schedule``, ``wd``...)."""
        if name == "schedule":
            return self.schedule.value
        if hasattr(self, name) and name != "extra":
            value: float | None = getattr(self, name)
            return value
        return self.extra.get(name)


_ROLE_FIELDS = {
    Role.LR: "lr",
    Role.MOMENTUM: "momentum",
    Role.WEIGHT_DECAY: "weight_decay",
    Role.BATCH_SIZE: "batch_size",
}


def _as_number(value: HParamValue) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    try:
        return float(value)
    except ValueError:
        return None


def classify_schedule(lr: Curve | None, upto_step: int | None = None) -> Schedule:
    """The shape of a learning-rate curve (up to a step).

    Ratios: a change under 1% is constant; a rise to 10x or more over most of the run
    is a range test (paper-notes §4: range tests sweep one or more orders of magnitude).
    """
    if lr is None or len(lr) == 0:
        return Schedule.UNKNOWN
    values = lr.value if upto_step is None else lr.value[lr.step <= upto_step]
    values = values[np.isfinite(values) & (values > 0)]
    if values.size < 2:
        return Schedule.CONSTANT if values.size == 1 else Schedule.UNKNOWN
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo * 1.01:
        return Schedule.CONSTANT
    peak = int(np.argmax(values))
    first, last = float(values[0]), float(values[-1])
    n = values.size
    ratios = values[1:] / values[:-1]
    if peak >= n - 2 and last >= first * 10 and np.mean(ratios >= 0.999) > 0.9:
        return Schedule.RISING
    if peak > 0 and first < hi * 0.99:
        # It went up first: a warm-up if it then stays high, else a cycle.
        return Schedule.WARMUP if last >= hi * 0.99 else Schedule.CYCLIC
    changes = np.flatnonzero(np.abs(ratios - 1.0) > 0.01)
    if changes.size <= max(3, n // 20):
        return Schedule.STEP
    return Schedule.DECAYING


def _last_at(curve: Curve, step: int | None) -> float | None:
    mask = np.isfinite(curve.value)
    if step is not None:
        mask &= curve.step <= step
    idx = np.flatnonzero(mask)
    return float(curve.value[idx[-1]]) if idx.size else None


def context_at(
    rc: RunCurves,
    step: int | None = None,
    overrides: Mapping[str, HParamValue] | None = None,
) -> Context:
    """The run's context at ``step`` (the end of the log when None)."""
    known: dict[str, float | None] = {f: None for f in _ROLE_FIELDS.values()}
    extra: dict[str, HParamValue] = {}
    for name, value in rc.hparams.items():
        _put(known, extra, name, value)
    for role, fieldname in _ROLE_FIELDS.items():
        curve = rc.first(role)
        if curve is not None:
            latest = _last_at(curve, step)
            if latest is not None:
                known[fieldname] = latest
    for name, value in (overrides or {}).items():
        _put(known, extra, name, value)
    lr_curve = rc.first(Role.LR)
    max_lr = None
    if lr_curve is not None:
        vals = lr_curve.value if step is None else lr_curve.value[lr_curve.step <= step]
        vals = vals[np.isfinite(vals)]
        max_lr = float(vals.max()) if vals.size else None
    return Context(
        lr=known["lr"],
        momentum=known["momentum"],
        weight_decay=known["weight_decay"],
        batch_size=known["batch_size"],
        max_lr=max_lr,
        schedule=classify_schedule(lr_curve, step),
        extra=extra,
    )


def _put(known: dict[str, float | None], extra: dict[str, HParamValue], name: str,
         value: HParamValue) -> None:  # fmt: skip
    fieldname = _ROLE_FIELDS.get(default_role(name).role)
    number = _as_number(value)
    if fieldname is not None and number is not None:
        known[fieldname] = number
    else:
        extra[name] = value


@dataclass(frozen=True, slots=True)
class HParamOverride:
    """``[[hparams]]`` in advisor.toml: known values for runs matching a glob."""

    runs: str
    values: Mapping[str, HParamValue]


def parse_overrides(raw: Any, where: str) -> tuple[HParamOverride, ...]:
    """Validate the ``[[hparams]]`` array of tables.

    Raises:
        ConfigError: naming ``where``, the entry and the field.
    """
    if raw is None:
        return ()
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise ConfigError(f"{where}: hparams: expected [[hparams]] tables with a 'runs' glob")
    out = []
    for i, entry in enumerate(raw):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("runs"), str):
            raise ConfigError(f"{where}: hparams[{i}].runs: expected a glob string")
        values: dict[str, HParamValue] = {}
        for key, value in entry.items():
            if key == "runs":
                continue
            if not isinstance(value, int | float | str | bool):
                raise ConfigError(f"{where}: hparams[{i}].{key}: expected a number or string")
            values[key] = float(value) if isinstance(value, int) and not isinstance(
                value, bool) else value  # fmt: skip
        out.append(HParamOverride(entry["runs"], values))
    return tuple(out)


def overrides_for(run: str, overrides: Sequence[HParamOverride]) -> dict[str, HParamValue]:
    """The configured values that apply to ``run`` (later entries win)."""
    merged: dict[str, HParamValue] = {}
    for o in overrides:
        if fnmatch.fnmatchcase(run, o.runs):
            merged.update(o.values)
    return merged
