"""Hugging Face ``trainer_state.json``: the Trainer's ``log_history``.

The Trainer rewrites the whole file at each save (``json.dumps(asdict(state),
indent=2, sort_keys=True)``, opened with ``"w"``, not atomically), so a reader can see
it empty or cut short (:mod:`advisor.sources.rewritten` waits for a whole version). A
version is accepted only when it parses as JSON with a ``log_history`` list.

Entries are emitted by index: each call emits the entries after the last one emitted.
If the entries already emitted changed (training resumed from an earlier checkpoint
rewrites a shorter or different history), the batch says ``reset`` and holds the
whole history again. Every number of an entry is a point, NaN and infinity included
(bare, as the Trainer's ``json.dumps`` writes them, or quoted, ``"NaN"``, as any number
may be: ``"0.51"``).
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

from advisor.model import HParamValue
from advisor.sources._text import as_step
from advisor.sources._text import hparam_value
from advisor.sources._text import json_number
from advisor.sources.rewritten import RewrittenJson

__all__ = ["HF_HPARAMS", "HfStateLoader"]

# trainer_state.json field → hyper-parameter name.
HF_HPARAMS = {
    "train_batch_size": "batch_size",
    "max_steps": "max_steps",
    "num_train_epochs": "num_train_epochs",
    "logging_steps": "logging_steps",
    "eval_steps": "eval_steps",
    "save_steps": "save_steps",
}
_MAX_BYTES = 512 << 20

_Signature = tuple[int, int, int]


class HfStateLoader(RewrittenJson):
    """Reads a Hugging Face ``trainer_state.json`` (see the module docstring).

    Each entry of ``log_history`` gives points at its ``step``: one per other numeric
    key (``loss``, ``eval_loss``, ``learning_rate``, ``grad_norm``, ``epoch``, ...),
    with no wall time. Entries without a numeric step are skipped and reported.

    Args:
        path: the ``trainer_state.json`` file.
        max_bytes: a larger file is reported and not read.
    """

    def __init__(self, path: Path | str, **kwargs: int) -> None:
        super().__init__(path, **kwargs)
        self._emitted = 0  # log_history entries emitted
        self._digest = b""  # of those entries
        self._hparams: dict[str, HParamValue] = {}

    def _invalid(self, data: Any) -> str | None:
        if not isinstance(data, dict) or not isinstance(data.get("log_history"), list):
            return "no log_history list"
        return None

    def _take(self, data: Any) -> tuple[bool, dict[str, HParamValue]]:
        reset = self._emit(data["log_history"])
        return reset, self._new_hparams(data, reset)

    def _emit(self, history: list[Any]) -> bool:
        """Add the entries not emitted yet; True if the earlier ones changed (reset)."""
        start = self._emitted
        hasher = _fingerprint(history[:start])
        reset = bool(start) and (len(history) < start or hasher.digest() != self._digest)
        if reset:
            start = 0
            hasher = _fingerprint([])
            self._points.clear()
        tag_ids: list[int] = []
        steps: list[int] = []
        values: list[float] = []
        tag_id = self._points.tag_id
        for index in range(start, len(history)):
            entry = history[index]
            hasher.update(repr(entry).encode())
            step = _step_of(entry)
            if step is None:
                self._problems.add(f"log_history[{index}]", "no numeric step; skipped")
                continue
            for key, value in entry.items():
                number = json_number(value) if key != "step" else None
                if number is None:
                    continue
                tag_ids.append(tag_id(key))
                steps.append(step)
                values.append(number)
        self._points.add_lists(tag_ids, steps, [math.nan] * len(steps), values)
        self._emitted = len(history)
        self._digest = hasher.digest()
        return reset

    def _new_hparams(self, state: dict[str, Any], reset: bool) -> dict[str, HParamValue]:
        """The known hyper-parameters, when they are new or changed."""
        found: dict[str, HParamValue] = {}
        for field, name in HF_HPARAMS.items():
            value = hparam_value(state.get(field))
            if value is not None:
                found[name] = value
        if found == self._hparams and not reset:
            return {}
        self._hparams = found
        return found


def _step_of(entry: Any) -> int | None:
    if not isinstance(entry, dict):
        return None
    step = entry.get("step")
    if not isinstance(step, int | float) or isinstance(step, bool):
        return None
    try:
        return as_step(float(step))
    except OverflowError:
        return None


def _fingerprint(entries: list[Any]) -> hashlib.blake2b:
    """A running hash of log_history entries, to notice when emitted ones change."""
    hasher = hashlib.blake2b(digest_size=16)
    for entry in entries:
        hasher.update(repr(entry).encode())
    return hasher
