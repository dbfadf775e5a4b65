"""Named presets for the paper's regimes, each a frozen :class:`TrainConfig`.

All but ``overfit`` train the same small 1-D CNN on MNIST-1D (4,000 training and 1,000
validation sequences), so a bad preset and ``good`` differ in one knob and following a
recommendation leads from one to the other. Every number below was measured here (one
core, torch 2.13 CPU, seeds 0-4; see ``benchmarks/trainer_presets.py``), and each
preset's regime shows in 5 of 5 seeds by the shape checks in
:mod:`advisor.trainer.regimes`.
"""

from __future__ import annotations

from dataclasses import dataclass

from advisor.errors import InputError
from advisor.model import Diagnosis
from advisor.trainer.config import TrainConfig


@dataclass(frozen=True, slots=True)
class Preset:
    """A named configuration and the diagnosis the advisor should reach on it.

    Attributes:
        name: the name given to ``advisor train --preset``.
        config: the run.
        expected: the diagnosis of its log (DESIGN.md section 4).
        summary: one line on what the run shows.
    """

    name: str
    config: TrainConfig
    expected: Diagnosis
    summary: str


# The shared model: 3 stride-2 convolutions of 32 channels; 40 epochs of batch 32 is
# 5,000 iterations, 8-12 s on one core here.
_CNN = TrainConfig(
    dataset="mnist1d",
    model="cnn",
    width=32,
    depth=3,
    momentum=0.9,
    weight_decay=5e-4,
    batch_size=32,
    epochs=40,
)

_PRESETS = (
    Preset(
        "lr-too-low",
        # LR 1e-3, 40x below good: 53-55% accuracy after 40 epochs and the validation loss
        # still falling ~10% over the last quarter (prototype: 47.6%).
        _CNN.replace(lr=1e-3),
        Diagnosis.UNDERFITTING,
        "LR 40x too small: the validation loss is still falling when training ends",
    ),
    Preset(
        "good",
        # LR 0.04, WD 5e-4: 92.9-94.8% after 40 epochs (prototype: 94.6%), and validation
        # curves the advisor has nothing to say about in 5 of 5 seeds. LR 0.05 reached
        # 94-96% but sits at the edge of stability: its validation loss swung by 16-29%
        # between epochs in 5 of 5 seeds and in 2 it rose 50-150% for 2-4 epochs while the
        # training loss rose too, which the instability detector rightly flags. At 0.05,
        # Nesterov or WD 1e-3 still flagged in 1 and 4 of 5 seeds; LR 0.045 in 1 of 5;
        # batch 64 at 0.05, batch 128 at 0.1 and LR 0.02-0.03 were steady at 92.4-94.1%.
        # LR 0.04 with Nesterov was steady at 93.5-94.5%, but its range test then puts the
        # 1cycle maximum at 0.2-0.22, where 1cycle reached only 93.1-94.1% in 20 epochs.
        _CNN.replace(lr=0.04),
        Diagnosis.HEALTHY,
        "a good constant LR: the validation loss falls fast, then goes flat",
    ),
    Preset(
        "overfit",
        # A wide MLP (2 x 256) on 400 training sequences, WD 0: the validation loss is
        # lowest at epoch 5-6, then rises ~85% by epoch 40 while the training loss falls
        # to ~0.02 (with the CNN the rise was as large but the curves were noisier).
        # LR 0.02, not 0.01: at 0.01 the minimum came at epoch 9-13 after a slow descent
        # that the underfitting detector's planned-run test called underfitting at
        # epoch 5-6 in 5 of 5 seeds, before the overfitting alert (advisor e2e).
        TrainConfig(
            dataset="mnist1d",
            model="mlp",
            width=256,
            depth=2,
            lr=0.02,
            momentum=0.9,
            weight_decay=0.0,
            batch_size=32,
            epochs=40,
            n_train=400,
        ),
        Diagnosis.OVERFITTING,
        "400 training examples, a wide MLP and no weight decay: validation loss rises",
    ),
    Preset(
        "lr-too-high",
        # LR 0.14: the loss jumps by 20-110% between epochs and accuracy ends at 17-35%.
        # LR 0.1 still reached 87%; LR 0.2 and above killed the network within a few
        # epochs (flat at chance, ln 10), which shows no oscillation to detect.
        _CNN.replace(lr=0.14),
        Diagnosis.INSTABILITY,
        "LR about 3.5x too large: the validation loss jumps about and accuracy stays poor",
    ),
    Preset(
        "nan",
        # LR 10 (250x good's): NaN within 10-140 iterations in 40 of 40 seeds. At LR 3
        # only 10 of 15 seeds went NaN; in the others the ReLUs died first and the loss
        # sat at chance. Evaluating every 5 iterations logs the explosion before the NaN;
        # the run stops at the NaN (under a second).
        _CNN.replace(lr=10.0, epochs=10, eval_every=5),
        Diagnosis.INSTABILITY,
        "LR 250x too large: the loss explodes to NaN within about an epoch",
    ),
    Preset(
        "range-test",
        # LR rising linearly (the paper's way) from 1e-3 to 0.5 over 4 epochs (500
        # iterations), validated every 10: the loss falls until LR ~0.15-0.2, turns ragged
        # and climbs back to chance (2.3) by LR ~0.3-0.5; 1 seed of 5 went NaN at LR 0.49.
        _CNN.replace(schedule="range", lr=0.5, min_lr=1e-3, epochs=4, eval_every=10),
        Diagnosis.LR_RANGE_TEST,
        "LR range test: LR rises linearly from 1e-3 to 0.5 over 4 epochs",
    ),
    Preset(
        "one-cycle",
        # 1cycle 0.01 -> 0.1 -> 0.01, then to 1e-4, momentum 0.95 -> 0.85 -> 0.95, half
        # good's epochs: 95% (prototype: 94.4% in 20 epochs vs 94.6% in 40). A maximum of
        # 0.2 (the range test's edge) gave 92-94%.
        _CNN.replace(schedule="1cycle", lr=0.1, min_lr=0.01, momentum=0.95, epochs=20),
        Diagnosis.HEALTHY,
        "1cycle with half good's epochs: as accurate, smoother at the end",
    ),
)

PRESETS: dict[str, Preset] = {p.name: p for p in _PRESETS}


def get_preset(name: str) -> Preset:
    """The preset called ``name``.

    Raises:
        InputError: no such preset (the message lists them).
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise InputError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


def parse_seeds(text: str) -> list[int]:
    """Seeds as the preset scripts take them: ``5,6,7``, ``8-13`` (inclusive) or a mix.

    Raises:
        ValueError: a part is not a number or an increasing range.
    """
    out: list[int] = []
    for part in text.split(","):
        lo, dash, hi = part.partition("-")
        first, last = int(lo), int(hi) if dash else int(lo)
        if last < first:
            raise ValueError(f"range {part!r} runs backwards")
        out += range(first, last + 1)
    return out
