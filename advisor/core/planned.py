"""The planned length of training, when the logs state it, and how much of it has elapsed.

Real writers store it with the run: HF's ``trainer_state.json`` has ``max_steps`` and
``num_train_epochs``; Lightning's ``hparams.yaml``, MLflow params and TensorBoard's
hparams plugin hold whatever the user logged (``epochs``, ``max_epochs``, ``max_steps``,
detectron2's ``SOLVER.MAX_ITER``...); ``[[hparams]]`` in advisor.toml can state it too.
It reaches the core as ``RunCurves.hparams``.

A name is matched by its words (split on separators and camelCase, as
``advisor.roles`` does for tags), looking only at its last dotted or slashed part (the
flattened ``trainer.max_epochs`` of a Lightning config): a unit word (``steps``,
``iters``, ``iterations``; ``epochs``), possibly singular after ``max``/``num``/``total``,
and otherwise only words that say "the whole run" (``max``, ``num``, ``total``,
``train``...). ``warmup_steps``, ``eval_steps``, ``steps_per_epoch`` or ``epoch`` (the
current epoch) do not match.

Steps are on the logged step axis and count from 0, so the elapsed fraction at step s
is s / max_steps. Epochs need the logged epoch curve to be placed on that axis (an
integer index starting at 0 counts the epoch that just ended); without
one, a planned number of epochs is not used (guessing one evaluation per epoch would
overstate the fraction of a run that validates more often, and make the underfitting
detector alert early on a healthy run).

Pure: no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from advisor.model import F64
from advisor.model import I64
from advisor.model import HParamValue

_STEP_UNITS = frozenset({"steps", "iters", "iterations", "updates"})
_EPOCH_UNITS = frozenset({"epochs"})
_SINGULAR = {"step": "steps", "iter": "iters", "iteration": "iterations", "epoch": "epochs"}
# Words that may qualify the unit and still mean "the length of the whole run".
_WHOLE = frozenset({"max", "num", "n", "nb", "number", "total", "train", "training",
                    "trainer", "of"})  # fmt: skip
_COUNTING = frozenset({"max", "num", "n", "nb", "number", "total"})
# A log that runs this far past its planned length was extended (resumed with more
# epochs): the planned length no longer says where the run ends (our choice).
OVERRUN = 1.05


@dataclass(frozen=True, slots=True)
class Plan:
    """The planned length of a run.

    Attributes:
        steps: the planned last step, on the logged step axis, or None.
        epochs: the planned number of epochs, or None.
    """

    steps: float | None = None
    epochs: float | None = None


def _words(name: str) -> tuple[str, ...]:
    """Lower-case words of the last dotted or slashed part of a name."""
    last = name.replace("/", ".").split(".")[-1]
    out: list[str] = []
    cur = ""
    for i, ch in enumerate(last):
        if not ch.isalnum():
            if cur:
                out.append(cur)
            cur = ""
            continue
        prev = last[i - 1] if i else ""
        if cur and ch.isupper() and (prev.islower() or prev.isdigit()):
            out.append(cur)
            cur = ""
        cur += ch
    if cur:
        out.append(cur)
    return tuple(w.lower() for w in out)


def unit_of(name: str) -> str | None:
    """``"steps"`` or ``"epochs"`` when ``name`` states the planned length, else None."""
    ws = _words(name)
    if not ws:
        return None
    unit = ws[-1]
    quals = set(ws[:-1])
    if unit in _SINGULAR:
        if not quals & _COUNTING:
            return None  # "epoch" alone is the current epoch
        unit = _SINGULAR[unit]
    if not quals <= _WHOLE:
        return None
    if unit in _STEP_UNITS:
        return "steps"
    if unit in _EPOCH_UNITS:
        return "epochs"
    return None


def plan_of(hparams: Mapping[str, HParamValue]) -> Plan | None:
    """The planned length stated in the hyper-parameters, or None.

    Positive finite numbers only (booleans and strings that are not numbers are
    ignored); among several names for one unit, the largest value.
    """
    found: dict[str, float] = {}
    for name, value in hparams.items():
        unit = unit_of(name)
        if unit is None or isinstance(value, bool):
            continue
        try:
            number = float(value)
        except ValueError:
            continue
        if math.isfinite(number) and number > 0:
            found[unit] = max(found.get(unit, 0.0), number)
    if not found:
        return None
    return Plan(found.get("steps"), found.get("epochs"))


def elapsed(
    plan: Plan | None, step: int, epoch_step: I64 | None = None, epoch: F64 | None = None
) -> float | None:
    """Fraction of the planned run done at ``step`` (None when it cannot be known).

    Args:
        plan: the planned length.
        step: the current step.
        epoch_step: steps of the logged epoch curve (up to ``step``), if any.
        epoch: its values.

    Returns:
        The fraction in (0, ``OVERRUN``]; None without a usable plan, or when the log
        has run past the plan by more than ``OVERRUN``.
    """
    if plan is None:
        return None
    frac = None
    if plan.steps is not None and step > 0:
        frac = step / plan.steps
    elif plan.epochs is not None and epoch_step is not None and epoch is not None:
        ok = np.isfinite(epoch)
        if bool(ok.any()):
            es, ev = epoch_step[ok], epoch[ok]
            now = float(np.interp(float(step), es.astype(np.float64), ev))
            if ev[0] == 0 and bool(np.all(ev == np.round(ev))):
                # A 0-based epoch index (Keras CSVLogger, Lightning's "epoch"), logged
                # when the epoch ends: index + 1 epochs are done. HF logs progress (1.0
                # after the first epoch) and is taken as it is.
                now += 1.0
            if now > 0:
                frac = now / plan.epochs
    if frac is None or frac > OVERRUN:
        return None
    return frac
