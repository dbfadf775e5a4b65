"""Detectors on named scenarios, including the cases that must not raise alarms."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from advisor.core.analysis import AnalysisParams
from advisor.core.analysis import analyze
from advisor.core.detectors import instability
from advisor.core.detectors import overfitting
from advisor.core.detectors import plateau
from advisor.core.detectors import underfitting
from advisor.core.features import features_of
from advisor.core.features import view_of
from advisor.core.timeline import ReplayParams
from advisor.core.timeline import replay_run
from advisor.model import Curve
from advisor.model import Diagnosis
from advisor.model import Direction
from advisor.model import Role
from advisor.model import RunCurves
from advisor.model import Severity
from advisor.model import TagRole

N = 60
IDX = np.arange(1, N + 1, dtype=float)


def run(
    val: np.ndarray,
    train: np.ndarray | None = None,
    lr: np.ndarray | None = None,
    metric: bool = False,
) -> RunCurves:
    """A run logging ``val`` (a loss, or an accuracy when ``metric``) every 100 steps."""
    step = np.arange(1, val.size + 1, dtype=np.int64) * 100
    wall = 1.7e9 + step.astype(float)
    curves = {}
    if metric:
        role = TagRole(Role.VAL_METRIC, Direction.MAX)
        curves["val_acc"] = Curve("val_acc", role, step, wall, val)
    else:
        curves["val_loss"] = Curve("val_loss", TagRole(Role.VAL_LOSS), step, wall, val)
    if train is not None:
        curves["loss"] = Curve("loss", TagRole(Role.TRAIN_LOSS), step, wall, train)
    if lr is not None:
        curves["lr"] = Curve("lr", TagRole(Role.LR), step, wall, lr)
    return RunCurves("r", curves)


def noisy(y: np.ndarray, rel: float = 0.01, seed: int = 0) -> np.ndarray:
    out: np.ndarray = y * (1 + rel * np.random.default_rng(seed).standard_normal(y.size))
    return out


def healthy(n: int = N) -> np.ndarray:
    i = np.arange(1, n + 1, dtype=float)
    out: np.ndarray = 0.4 + 2.0 * np.exp(-i / 3.0)
    return out


def step_decay() -> tuple[np.ndarray, np.ndarray]:
    y = healthy()
    y[40:] -= 0.08 * (1 - np.exp(-np.arange(1, N - 39) / 0.7))
    lr = np.full(N, 0.1)
    lr[40:] = 0.01
    return noisy(y), lr


def warmup() -> tuple[np.ndarray, np.ndarray]:
    y = np.concatenate(
        [np.full(6, 2.4) * (1 + 0.03 * np.sin(np.linspace(0, 3, 6))), healthy(N - 6)]
    )
    lr = np.minimum(np.arange(1, N + 1) / 6, 1.0) * 0.1
    return noisy(y), lr


def overfit() -> tuple[np.ndarray, np.ndarray]:
    y = healthy() + 0.12 * np.clip((IDX - 25) / 35, 0, None)
    train = healthy() * 0.8 * (1 - 0.4 * IDX / N)
    return noisy(y), train


NO_ALARM: dict[str, Callable[[], tuple[np.ndarray, np.ndarray | None]]] = {
    "plateau": lambda: (noisy(healthy()), None),
    "step_decay": step_decay,
    "warmup": warmup,
    "recovering_spike": lambda: (noisy(healthy()) * np.where(IDX == 12, 2.0, 1.0), None),
    "noisy_plateau": lambda: (noisy(healthy(), rel=0.05, seed=4), None),
}


@pytest.mark.parametrize("name", sorted(NO_ALARM))
def test_no_false_alarm(name: str) -> None:
    """Step decay, warm-up, a recovering spike and a noisy plateau raise no alert."""
    val, lr = NO_ALARM[name]()
    rc = run(val, train=val * 0.85, lr=lr)
    alerts, summary = replay_run(rc)
    assert alerts == []
    assert summary.diagnosis is Diagnosis.HEALTHY


def test_overfitting_with_falling_train_loss() -> None:
    """Validation rising after its minimum while training falls is overfitting."""
    val, train = overfit()
    f = overfitting.detect(run(val, train), overfitting.OverfittingParams())
    assert f is not None and f.diagnosis is Diagnosis.OVERFITTING
    assert 2000 <= f.evidence["min_step"] <= 3200
    assert f.evidence["train_slope"] < 0 and 0 < f.confidence <= 1


def _early_rise() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A fast fall to a minimum at evaluation 12, then three points up, not monotone."""
    i = np.arange(1, 17, dtype=float)
    base = 0.5 + 1.5 * np.exp(-i / 2.0)
    val = noisy(base, rel=0.004, seed=1)
    val[12:] = val[11] * np.array([1.08, 1.07, 1.15, 1.2])
    falling = base * 0.8 * (1 - 0.02 * np.arange(16))
    flat = base * 0.8
    flat[6:] = flat[6]
    return val, falling, flat


def test_falling_train_loss_confirms_a_rise_sooner() -> None:
    """Three points after the minimum cannot make a Mann-Kendall trend (p = 0.11 here);
    a training loss still falling confirms the rise then, one evaluation before the
    validation curve alone or with a flat training loss."""
    val, falling, flat = _early_rise()
    got = overfitting.detect(run(val[:15], falling[:15]))
    assert got is not None and got.evidence["p_value"] > 0.05
    assert got.evidence["train_slope"] < 0 and "keeps falling" in got.message
    assert overfitting.detect(run(val[:15])) is None
    assert overfitting.detect(run(val[:15], flat[:15])) is None
    assert overfitting.detect(run(val[:16], flat[:16])) is not None


def test_one_spike_after_the_minimum_is_not_a_rise() -> None:
    """The median of at least three recent points ignores a single spike."""
    val = noisy(healthy(30), rel=0.005)
    val[-1] *= 1.6
    assert overfitting.detect(run(val, val * 0.8)) is None


def test_rising_train_loss_vetoes_overfitting() -> None:
    """Both losses rising together is not overfitting."""
    val, _ = overfit()
    f = overfitting.detect(run(val, val * 0.9), overfitting.OverfittingParams())
    assert f is None


# The reference trainer's ``lr-too-high`` evaluated 5 times per epoch (seed 9), first 24
# evaluations: the training loss as high as the validation loss, and no lower since.
LR_HIGH_E25_S9_VAL = [
    1.876, 1.958, 2.0457, 1.6146, 1.3707, 1.4001, 1.363, 1.1098, 1.2964, 1.403, 1.4151,
    1.2747, 1.2536, 1.2802, 0.9361, 1.0595, 1.1872, 1.234, 1.0234, 1.0519, 1.3666, 1.6768,
    1.6807, 1.3781,
]  # fmt: skip
LR_HIGH_E25_S9_TRAIN = [
    2.164, 1.7572, 1.6056, 1.7706, 1.4665, 1.3333, 1.4332, 1.2014, 1.2533, 1.2511, 1.2526,
    1.243, 1.2555, 1.1094, 1.133, 0.9597, 1.1104, 1.1132, 1.1559, 0.9909, 1.0687, 1.3706,
    1.8253, 1.4462,
]  # fmt: skip


def test_a_rise_without_a_generalisation_gap_is_not_overfitting() -> None:
    """The validation loss up 56% since its minimum, while the training loss sits as
    high (0.92 of it) and has not fallen since: there is no gap to grow. The same rise
    with the training loss falling below it stays overfitting."""
    val, train = np.array(LR_HIGH_E25_S9_VAL), np.array(LR_HIGH_E25_S9_TRAIN)
    assert overfitting.detect(run(val, train)) is None
    no_veto = overfitting.OverfittingParams(no_gap_ratio=math.inf)
    f = overfitting.detect(run(val, train), no_veto)
    assert f is not None and f.evidence["train_slope"] >= 0
    below = 0.5 * np.minimum.accumulate(train) * np.linspace(1.0, 0.8, train.size)
    f = overfitting.detect(run(val, below))
    assert f is not None and f.diagnosis is Diagnosis.OVERFITTING


# A real run of the reference trainer (``advisor train --dataset mnist1d --model cnn
# --schedule step --seed 1``): LR 0.04, /10 at epochs 14 and 27. After the first drop the
# validation loss bottoms out at 0.185 and creeps up to 0.197 while the training loss
# falls from 0.04 to 0.01; after the second drop everything freezes.
STEP_VAL = [
    1.580, 1.238, 0.848, 0.612, 0.687, 0.505, 0.364, 0.520, 0.279, 0.296, 0.243, 0.297,
    0.244, 0.189, 0.185, 0.187, 0.185, 0.186, 0.193, 0.188, 0.189, 0.190, 0.193, 0.193,
    0.197, 0.195, 0.195, 0.195, 0.195, 0.195, 0.196, 0.196, 0.196, 0.196, 0.196, 0.196,
    0.196, 0.196, 0.197, 0.197,
]  # fmt: skip
STEP_TRAIN = [
    1.873, 1.346, 1.002, 0.683, 0.552, 0.434, 0.371, 0.254, 0.208, 0.168, 0.114, 0.121,
    0.096, 0.042, 0.025, 0.021, 0.019, 0.017, 0.016, 0.015, 0.014, 0.013, 0.013, 0.012,
    0.012, 0.012, 0.011, 0.011, 0.011, 0.011, 0.011, 0.011, 0.011, 0.011, 0.010, 0.010,
    0.010, 0.010, 0.010, 0.010,
]  # fmt: skip


def test_a_rise_after_a_step_decay_stays_overfitting() -> None:
    """The minimum after an LR drop is found right after the drop, not dragged later by
    smoothing across it: the alert opens once and the run ends overfitting (smoothing
    across the drop moved the minimum later as the points accumulated, the measured
    rise fell under 2%, and the alert resolved on a curve still 6% above its best). The
    rise is measured against the noise of the phase after the drop."""
    lr = np.repeat([0.04, 0.004, 0.0004], [13, 13, 14])
    alerts, summary = replay_run(run(np.array(STEP_VAL), np.array(STEP_TRAIN), lr))
    assert [(a.event.value, a.finding.diagnosis) for a in alerts] == [
        ("opened", Diagnosis.OVERFITTING)
    ]
    assert summary.diagnosis is Diagnosis.OVERFITTING
    # Its z is in units of the noise after the drop (0.0024), not of the large LR's
    # swings before it (0.0048, which held the alert back until step 2900).
    assert alerts[0].finding.step == 2400
    assert alerts[0].finding.evidence["noise"] < 0.003
    f = overfitting.detect(run(np.array(STEP_VAL), np.array(STEP_TRAIN), lr))
    assert f is not None and f.evidence["min_step"] == 1500.0
    assert f.evidence["rise_pct"] > 4.0


# A real run of the reference trainer (``advisor train --schedule cosine --lr 0.1
# --seed 17``, the good preset's CNN): LR annealed from 0.1 to 0 along a cosine. The
# validation loss falls fast while the LR is large, then sits within 4% of 0.142 for the
# last 17 epochs (95.7% accuracy) while the training loss is 0.006.
COSINE_VAL = [
    1.3761, 0.8559, 0.7509, 0.7953, 0.6496, 0.6998, 0.5386, 0.6550, 0.7064, 0.4148, 0.5828,
    0.3593, 0.4294, 0.3408, 0.2391, 0.3152, 0.1902, 0.2054, 0.1864, 0.1827, 0.1520, 0.1512,
    0.1470, 0.1427, 0.1498, 0.1497, 0.1424, 0.1465, 0.1463, 0.1443, 0.1432, 0.1425, 0.1430,
    0.1410, 0.1416, 0.1416, 0.1416, 0.1416, 0.1417, 0.1417,
]  # fmt: skip
COSINE_TRAIN = [
    1.7441, 1.1540, 0.8676, 0.7268, 0.6322, 0.5807, 0.5773, 0.5667, 0.4943, 0.4116, 0.4264,
    0.3738, 0.2428, 0.1895, 0.1774, 0.1388, 0.1452, 0.0885, 0.0433, 0.0264, 0.0145, 0.0101,
    0.0068, 0.0062, 0.0059, 0.0062, 0.0060, 0.0061, 0.0062, 0.0062, 0.0062, 0.0062, 0.0062,
    0.0062, 0.0062, 0.0062, 0.0062, 0.0061, 0.0061, 0.0061,
]  # fmt: skip


def test_a_fall_by_a_quarter_of_the_level_per_third_is_not_underfitting() -> None:
    """That run at epoch 18 (LR at 58% of its peak): the fitted fall over the last third
    of the phase is half the level, "not slowing down" by the count-based test, which
    opened an underfitting alert there ("raise lr"). A loss falling that fast is in a
    fast phase (here the annealing's drop), not held back by a small LR."""
    n = len(COSINE_VAL)
    lr = 0.05 * (1 + np.cos(np.pi * np.arange(1, n + 1) / n))
    rc = run(np.array(COSINE_VAL[:18]), np.array(COSINE_TRAIN[:18]), lr[:18])
    assert underfitting.detect(rc) is None
    loose = underfitting.detect(rc, underfitting.UnderfittingParams(max_drop_rel=math.inf))
    assert loose is not None and loose.evidence["last_third_drop_pct"] > 25.0
    alerts, summary = replay_run(run(np.array(COSINE_VAL), np.array(COSINE_TRAIN), lr))
    assert alerts == [] and summary.diagnosis is Diagnosis.HEALTHY


def test_an_underfitting_alert_resolves_once_the_model_fits_its_training_data() -> None:
    """A validation loss still creeping down keeps an underfitting alert open, except when
    the model fits its training data (the same reason no alert opens then)."""
    val = noisy(1.0 + 1.3 * np.exp(-IDX / 25.0), 0.005)
    alerts, summary = replay_run(run(val, 0.95 * val))
    assert [(a.event.value, a.finding.diagnosis) for a in alerts] == [
        ("opened", Diagnosis.UNDERFITTING)
    ]
    train = 0.95 * val
    train[40:] = 0.03 * val[40:]
    alerts, summary = replay_run(run(val, train))
    assert [(a.event.value, a.finding.diagnosis) for a in alerts] == [
        ("opened", Diagnosis.UNDERFITTING),
        ("resolved", Diagnosis.UNDERFITTING),
    ]
    assert alerts[1].finding.step > 4000 and summary.diagnosis is Diagnosis.HEALTHY


# A real run of the reference trainer (``advisor train --schedule cosine --lr 0.07
# --seed 13``, the good preset's CNN; 95.1% accuracy): the validation loss falls
# steeply while the LR anneals (epochs 10-20), then flat.
COSINE_07_VAL = [
    1.4097, 0.9355, 0.5788, 0.6593, 0.5883, 0.5037, 0.4113, 0.4187, 0.3872, 0.3966, 0.355,
    0.2658, 0.2726, 0.2202, 0.2873, 0.2324, 0.2633, 0.195, 0.1678, 0.143, 0.1533, 0.1534,
    0.1493, 0.1527, 0.1523, 0.1503, 0.1512, 0.1507, 0.1513, 0.1506, 0.1506, 0.153, 0.1521,
    0.1521, 0.1519, 0.1521, 0.152, 0.1521, 0.1521, 0.1521,
]  # fmt: skip
COSINE_07_TRAIN = [
    1.8033, 1.2468, 0.7716, 0.5577, 0.5274, 0.3951, 0.316, 0.3171, 0.2723, 0.2372, 0.2126,
    0.1704, 0.1545, 0.1265, 0.0708, 0.096, 0.0511, 0.0496, 0.0211, 0.0126, 0.0085, 0.0066,
    0.0059, 0.0057, 0.0057, 0.0056, 0.0057, 0.0057, 0.0058, 0.0057, 0.0057, 0.0057, 0.0058,
    0.0058, 0.0058, 0.0058, 0.0057, 0.0057, 0.0057, 0.0057,
]  # fmt: skip


def test_a_fast_fall_is_not_underfitting_by_the_planned_length() -> None:
    """With the planned length known, the slow-decay test called that run underfitting at
    epoch 12 of 40: its healthy model, a decay that flattens early, has no room for the
    second drop that annealing brings. At the pace of its recent half the loss falls by
    more than a fifth of its level over a third of the phase: a fast fall."""
    n = len(COSINE_07_VAL)
    lr = 0.035 * (1 + np.cos(np.pi * np.arange(1, n + 1) / n))

    def curves(k: int) -> RunCurves:
        rc = run(np.array(COSINE_07_VAL[:k]), np.array(COSINE_07_TRAIN[:k]), lr[:k])
        return RunCurves(rc.run, rc.curves, {"max_steps": 100 * n})

    alerts, summary = replay_run(curves(n))
    assert alerts == [] and summary.diagnosis is Diagnosis.HEALTHY
    loose = underfitting.UnderfittingParams(plan_max_drop_rel=math.inf)
    f = underfitting.detect(curves(12), loose)
    assert f is not None and f.evidence["elapsed_pct"] == 30.0
    assert underfitting.detect(curves(12)) is None


# The reference trainer's ``overfit`` preset with cosine annealing (seed 9), first 16
# epochs: the validation loss is lowest at epoch 6 while the training loss keeps falling.
OVERFIT_COS_VAL = [
    2.2444, 2.1076, 1.9331, 1.8118, 1.7968, 1.7609, 1.8091, 1.8124, 1.8175, 1.8378,
    1.8897, 1.8591, 1.9404, 1.9823, 1.9758, 2.0354,
]  # fmt: skip
OVERFIT_COS_TRAIN = [
    2.2872, 2.147, 1.9552, 1.7727, 1.6448, 1.5249, 1.4358, 1.3972, 1.2867, 1.1723,
    1.1025, 0.9954, 0.916, 0.8544, 0.7725, 0.7052,
]  # fmt: skip


def test_a_training_loss_falling_since_the_minimum_confirms_a_rise_from_six_points() -> None:
    """Six training-loss points falling since the validation minimum confirm a small,
    steady rise (epoch 11); with a training-loss p-value of 1e-3, which the Mann-Kendall
    test cannot reach on fewer than seven points, the alert waited for epoch 14."""

    def first(params: overfitting.OverfittingParams) -> int:
        rc = run(np.array(OVERFIT_COS_VAL), np.array(OVERFIT_COS_TRAIN))
        analysis = AnalysisParams(overfitting=params, with_trend=False)
        alerts, _ = replay_run(rc, ReplayParams(analysis))
        assert alerts and alerts[0].finding.diagnosis is Diagnosis.OVERFITTING
        return alerts[0].finding.step

    assert first(overfitting.OverfittingParams()) == 1100
    assert first(overfitting.OverfittingParams(train_strong_p=1e-3)) == 1400


# A real 1cycle run whose maximum LR is 20 times too low (``advisor train --preset
# one-cycle --lr 0.005 --min-lr 0.0005 --seed 10``): 55% accuracy, the validation loss
# still falling at the end of the cycle.
ONE_CYCLE_LOW_VAL = [
    2.2866, 2.1896, 1.8312, 1.7123, 1.6069, 1.5085, 1.4361, 1.3897, 1.3266, 1.3607,
    1.2912, 1.2537, 1.2006, 1.1872, 1.1873, 1.1631, 1.1514, 1.1257, 1.0941, 1.0867,
]  # fmt: skip
ONE_CYCLE_LOW_TRAIN = [
    2.2975, 2.2494, 2.0248, 1.7672, 1.6548, 1.5585, 1.4740, 1.4107, 1.3653, 1.3122,
    1.2769, 1.2333, 1.2114, 1.1739, 1.1374, 1.1155, 1.0915, 1.0614, 1.0307, 1.0077,
]  # fmt: skip
ONE_CYCLE_LOW_LR = [
    0.000996, 0.0015, 0.002, 0.0025, 0.003, 0.0035, 0.004, 0.0045, 0.005, 0.0045, 0.004,
    0.0035, 0.003, 0.0025, 0.002, 0.0015, 0.001, 0.000504, 0.000253, 5e-06,
]  # fmt: skip


def test_still_falling_at_the_end_of_a_1cycle_is_underfitting() -> None:
    """The LR annealed to zero at the end of a 1cycle halves between evaluations without
    being a step decay, so the phase after the peak is judged whole: underfitting at the
    last evaluation (it restarted the phase there, and the run ended "healthy")."""
    rc = run(np.array(ONE_CYCLE_LOW_VAL), np.array(ONE_CYCLE_LOW_TRAIN),
             np.array(ONE_CYCLE_LOW_LR))  # fmt: skip
    alerts, summary = replay_run(rc)
    assert [(a.event.value, a.finding.diagnosis, a.finding.step) for a in alerts] == [
        ("opened", Diagnosis.UNDERFITTING, 2000)
    ]
    assert summary.diagnosis is Diagnosis.UNDERFITTING


def test_a_fall_while_the_lr_anneals_from_its_peak_waits_for_the_end_of_the_plan() -> None:
    """A 1cycle-like run: the LR ramps up to evaluation 40 and anneals to the end; the loss
    settles, then falls a second time as the LR comes down and flattens again. With the
    planned length known, that fall is the schedule's doing: no alert (the count-based
    test opened one at evaluation 51 that stayed to the end). Without a plan no end is in
    sight and the test applies as before."""
    n = 80
    i = np.arange(1, n + 1, dtype=float)
    lr = np.interp(i, [1, 40, n], [0.01, 0.1, 0.0005])
    second = 0.4 * (1 - np.exp(-np.clip(i - 40, 0, None) / 12.0))
    val = noisy(1.0 + 1.3 * np.exp(-i / 4.0) - second, 0.005, seed=3)
    rc = run(val, lr=lr)
    alerts, summary = replay_run(RunCurves(rc.run, rc.curves, {"max_steps": 100 * n}))
    assert alerts == [] and summary.diagnosis is Diagnosis.HEALTHY
    alerts, _ = replay_run(rc)
    assert [(a.event.value, a.finding.diagnosis, a.finding.step) for a in alerts] == [
        ("opened", Diagnosis.UNDERFITTING, 5100)
    ]
    planned_low = RunCurves(
        "r",
        run(np.array(ONE_CYCLE_LOW_VAL), np.array(ONE_CYCLE_LOW_TRAIN),
            np.array(ONE_CYCLE_LOW_LR)).curves,
        {"max_steps": 100 * len(ONE_CYCLE_LOW_VAL)},
    )  # fmt: skip
    assert replay_run(planned_low)[1].diagnosis is Diagnosis.UNDERFITTING


def test_after_a_warm_up_a_step_decay_phase_is_judged_as_usual() -> None:
    """A warm-up, then a constant LR, then a step decay (LR / 10) after which the loss
    falls steadily without slowing: the LR is below its peak, but it is not annealing
    in the current phase, so the count-based test calls it at evaluation 45, not at
    90% of the plan."""
    n = 100
    i = np.arange(1, n + 1, dtype=float)
    lr = np.where(i <= 5, 0.02 * i, np.where(i < 30, 0.1, 0.01))
    val = noisy(1.0 + 1.3 * np.exp(-i / 3.0) - 0.3 * np.clip((i - 30) / 70, 0, None), 0.004, 5)
    rc = run(val, lr=lr)
    alerts, _ = replay_run(RunCurves(rc.run, rc.curves, {"max_steps": 100 * n}))
    assert [(a.event.value, a.finding.diagnosis, a.finding.step) for a in alerts] == [
        ("opened", Diagnosis.UNDERFITTING, 4500)
    ]


def test_a_loss_that_turns_up_no_longer_holds_an_underfitting_alert() -> None:
    """A slow straight fall opens an underfitting alert; then the loss rises 15% with the
    training loss (no gap: not overfitting; too little given back: not instability). A
    rising loss does not fit "still improving": the alert resolves (it stayed open to the
    end, and the run ended "underfitting"), and the plateau finding says "getting worse",
    not "still converging"."""
    i = np.arange(1, 31, dtype=float)
    fall = 2.3 - 0.6 * i / 30
    val = noisy(np.concatenate([fall, fall[-1] * (1 + 0.15 * np.arange(1, 17) / 16)]), 0.004, 2)
    alerts, summary = replay_run(run(val, val.copy()))
    assert [(a.event.value, a.finding.diagnosis, a.finding.step) for a in alerts] == [
        ("opened", Diagnosis.UNDERFITTING, 1200),
        ("resolved", Diagnosis.UNDERFITTING, 3900),
    ]
    assert summary.diagnosis is Diagnosis.HEALTHY
    f = plateau.detect(run(val, val.copy()))
    assert f is not None and f.message.startswith("validation curve is getting worse (change +")


def test_a_rise_while_the_lr_climbs_is_not_overfitting() -> None:
    """A 1cycle run: the loss rises 40% while the LR ramps to its peak, with the training
    loss falling, and comes down as the LR anneals. With a constant LR the same curves
    would be overfitting, from the rise alone."""
    val = healthy()
    bump = np.clip(1.0 - np.abs(IDX - 30.0) / 10.0, 0.0, None)
    val = noisy(val + 0.4 * val[-1] * bump, 0.005)
    train = healthy() * 0.8 * (1 - 0.4 * IDX / N)
    lr = np.interp(IDX, [1, 30, N], [0.01, 0.1, 0.001])
    for k in range(24, 36):
        f = overfitting.detect(run(val[:k], train[:k], lr[:k]), overfitting.OverfittingParams())
        assert f is None, k
    const = overfitting.detect(run(val[:32], train[:32]), overfitting.OverfittingParams())
    assert const is not None and const.diagnosis is Diagnosis.OVERFITTING


def test_overfitting_from_accuracy_alone() -> None:
    """A falling accuracy (direction MAX) after its peak is overfitting, no loss logged."""
    val, _ = overfit()
    acc = 1 - val / 5
    assert analyze(run(acc, metric=True)).diagnosis is Diagnosis.OVERFITTING


def test_underfitting_still_falling() -> None:
    """A slow fall that does not slow down is underfitting, from the val loss alone."""
    val = noisy(0.5 + 2.0 * np.exp(-IDX / 120.0))
    f = underfitting.detect(run(val), underfitting.UnderfittingParams())
    assert f is not None and f.diagnosis is Diagnosis.UNDERFITTING
    assert f.evidence["slope_ratio"] > 0.4


@pytest.mark.parametrize(("train_share", "underfit"), [(0.9, True), (0.04, False)])
def test_a_model_that_fits_its_training_data_is_not_underfitting(
    train_share: float, underfit: bool
) -> None:
    """The same slow fall is underfitting while the training loss is as high as the
    validation loss, and not once the training loss is a small fraction of it (the
    reference trainer's ``good`` seed 72: training loss 0.006, validation loss 0.17 and
    still creeping down)."""
    val = noisy(0.5 + 2.0 * np.exp(-IDX / 120.0))
    train = train_share * (0.5 + 2.0 * np.exp(-IDX / 120.0))
    f = underfitting.detect(run(val, train), underfitting.UnderfittingParams())
    assert (f is not None and f.diagnosis is Diagnosis.UNDERFITTING) is underfit


def test_a_training_loss_that_just_fell_fits_its_training_data_now() -> None:
    """The training-data test reads the last few points, not the smoothed training loss:
    a training loss that fell to a twentieth of the validation loss in the last four
    evaluations (a 1cycle's or cosine's annealing) leaves its average far above."""
    val = noisy(0.5 + 2.0 * np.exp(-IDX / 120.0))
    train = 0.95 * (0.5 + 2.0 * np.exp(-IDX / 120.0))
    train[-4:] = 0.05 * val[-4:]
    rc = run(val, train)
    view = view_of(rc)
    assert view is not None
    feat = features_of(view)
    assert feat.train_smooth is not None and feat.train_smooth[-1] > 0.25 * feat.smooth[-1]
    assert underfitting.fits_training_data(view, feat, 0.25)
    assert underfitting.detect(rc, underfitting.UnderfittingParams()) is None
    assert underfitting.detect(run(val, 0.95 * val)) is not None


@pytest.mark.parametrize(("rel", "underfit"), [(0.005, True), (0.05, False)])
def test_a_long_slow_decay_far_from_its_plateau_is_underfitting(
    rel: float, underfit: bool
) -> None:
    """A decay with a time constant of 25 evaluations, 60 evaluations in: it slows down,
    but still falls about 13% of its level over the last third. Far above the noise that
    is no plateau in sight (the reference trainer's ``lr-too-low``); within it, not."""
    val = noisy(1.0 + 1.3 * np.exp(-IDX / 25.0), rel)
    f = underfitting.detect(run(val), underfitting.UnderfittingParams())
    assert (f is not None and f.diagnosis is Diagnosis.UNDERFITTING) is underfit
    if f is not None:
        assert f.evidence["slope_ratio"] < 0.4 and f.evidence["late_slope_ratio"] < 0.6


def test_a_short_window_falling_far_above_the_noise_is_not_horizontal() -> None:
    """Four points cannot make a trend significant; falling 2% a point with 0.2% noise is
    still converging all the same, while the same window within the noise is flat."""
    fall = noisy(np.linspace(2.0, 1.55, 12), 0.002)
    f = plateau.detect(run(fall), plateau.PlateauParams())
    assert f is not None and f.evidence["plateau"] == 0.0 and "converging" in f.message
    flat = noisy(np.full(12, 1.5), 0.002)
    g = plateau.detect(run(flat), plateau.PlateauParams())
    assert g is not None and g.evidence["plateau"] == 1.0


@pytest.mark.parametrize(
    ("name", "bad_at"),
    [("nan", 30), ("inf", 30), ("diverge", 31), ("spikes", 35), ("oscillate", 40)],
)
def test_instability_kinds(name: str, bad_at: int) -> None:
    """NaN, inf, divergence, repeated spikes and oscillation are instability, alerted early:
    the second spike at its own evaluation (one more spike or a jump that stays, either
    is instability); a divergence one evaluation after it starts (its first point could
    still be a spike that recovers)."""
    val = noisy(healthy())
    if name in ("nan", "inf"):
        val[30:] = math.nan if name == "nan" else math.inf
    elif name == "diverge":
        val[30:] = val[29] * 1.6 ** np.arange(1, N - 29)
    elif name == "spikes":
        val[[20, 35, 50]] *= 2.5
    else:
        val[30:] *= 1 + 0.3 * np.where(np.arange(N - 30) % 2 == 0, 1.0, -1.0)
    f = instability.detect(run(val), instability.InstabilityParams())
    assert f is not None and f.diagnosis is Diagnosis.INSTABILITY
    alerts, _ = replay_run(run(val))
    first = alerts[0].finding.step // 100 - 1  # evaluation index
    assert alerts[0].finding.diagnosis is Diagnosis.INSTABILITY
    assert first <= bad_at + (name == "diverge")


def test_a_jump_after_one_recovered_spike_is_the_second_spike_at_once() -> None:
    """One recovered spike, then a jump at the last point: unstable either way. The same
    jump with no spike before it waits for the next point."""
    val = noisy(healthy())
    val[20] *= 2.5
    val[35:] *= 2.5  # stays up
    f = instability.detect(run(val[:36]), instability.InstabilityParams())
    assert f is not None and f.evidence["spikes"] == 2.0 and f.step == 3600
    assert f.message == "validation loss spiked 2 times so far, at steps 2100 and 3600"
    alone = noisy(healthy())
    alone[35:] *= 2.5
    assert instability.detect(run(alone[:36]), instability.InstabilityParams()) is None
    g = instability.detect(run(alone[:37]), instability.InstabilityParams())
    assert g is not None and "stayed up" in g.message


def test_spike_message_names_where_the_spikes_were() -> None:
    """The message says at which steps the loss spiked, the first few of many."""
    val = noisy(healthy())
    val[[20, 28, 36, 44, 52, 58]] *= 2.5
    f = instability.detect(run(val), instability.InstabilityParams())
    assert f is not None and f.evidence["spikes"] == 6.0
    assert f.evidence["first_bad_step"] == 2100
    assert f.message.endswith("spiked 6 times so far, at steps 2100, 2900, 3700 and 3 more")


def test_spikes_under_an_lr_since_halved_no_longer_count() -> None:
    """Two spikes at a 1cycle-like peak LR are instability while the LR is still there;
    once the annealing has brought it to half, they say nothing about the LR in use and
    the finding is gone. At a constant LR they count to the end."""
    val = noisy(healthy())
    val[[20, 28]] *= 2.5
    lr = np.interp(IDX, [1, 25, 60], [0.01, 0.1, 0.001])
    for k, unstable in ((35, True), (44, True), (46, False), (60, False)):
        f = instability.detect(run(val[:k], lr=lr[:k]))
        assert (f is not None) is unstable, k
    f = instability.detect(run(val, lr=np.full(N, 0.1)))
    assert f is not None and f.evidence["spikes"] == 2.0
    to_zero = np.interp(IDX, [1, 25, 60], [0.01, 0.1, 0.0])  # a linear decay's last step
    assert instability.detect(run(val, lr=to_zero)) is None


def test_excursions_within_the_noise_of_their_time_are_not_spikes_later() -> None:
    """Two +45% excursions while the loss is still noisy (10%) are not spikes then, and
    stay none once the run has calmed down (1%) and the noise estimate has shrunk; the
    same two excursions in a run calm throughout are spikes at once."""
    i = np.arange(1, 201, dtype=float)
    true = 0.4 + 2.0 * np.exp(-i / 3.0)
    noise = np.where(i <= 60, 0.10, 0.01)
    val = true * (1 + noise * np.random.default_rng(0).standard_normal(i.size))
    early = val.copy()
    early[[30, 45]] = true[[30, 45]] * 1.45
    for k in (50, 80, 120, 200):
        assert instability.detect(run(early[:k])) is None, k
    late = true * (1 + 0.01 * np.random.default_rng(0).standard_normal(i.size))
    late[[130, 145]] = true[[130, 145]] * 1.45
    assert instability.detect(run(late[:145])) is None
    f = instability.detect(run(late[:146]))
    assert f is not None and f.evidence["spikes"] == 2.0
    assert f.message.endswith("at steps 13100 and 14600")


def test_a_loss_that_barely_leaves_its_first_value_but_falls_steadily_underfits() -> None:
    """2.30 falling 0.1% per evaluation (an LR 100x too low) is underfitting at its 12th
    evaluation, or 12 evaluations from the end of a warm-up; the same loss without the fall is
    instability's "no progress" instead, and a healthy fall is neither."""
    i = np.arange(1, 41, dtype=float)
    slow = 2.3 * (1 - 0.001 * i) * (1 + 0.0005 * np.random.default_rng(0).standard_normal(40))
    assert underfitting.detect(run(slow[:11])) is None
    f = underfitting.detect(run(slow[:12]))
    assert f is not None and f.diagnosis is Diagnosis.UNDERFITTING
    assert f.evidence["evaluations"] == 12.0 and 0.98 < f.evidence["best_to_first"] < 1.0
    assert "far too slowly" in f.message
    alerts, summary = replay_run(run(slow))
    assert alerts[0].finding.diagnosis is Diagnosis.UNDERFITTING
    assert alerts[0].finding.step == 1200 and summary.diagnosis is Diagnosis.UNDERFITTING
    warm = np.minimum(1.0, i / 10) * 1e-5  # rises over 10 evaluations, then constant
    assert underfitting.detect(run(slow[:20], lr=warm[:20])) is None
    assert underfitting.detect(run(slow[:21], lr=warm[:21])) is not None
    flat = 2.3 * (1 + 0.0005 * np.random.default_rng(1).standard_normal(40))
    assert underfitting.detect(run(flat)) is None
    g = instability.detect(run(flat))
    assert g is not None and "no progress" in g.message
    assert underfitting.detect(run(noisy(healthy())[:12])) is None


def _swinging(level: float = 0.25) -> np.ndarray:
    """A flat validation loss that swings by +-30% between evaluations from index 30."""
    val = np.full(N, level)
    val[:30] = level + 2.0 * np.exp(-IDX[:30] / 4.0)
    val[30:] *= 1 + 0.3 * np.where(np.arange(N - 30) % 2 == 0, 1.0, -1.0)
    return noisy(val)


@pytest.mark.parametrize(("train_frac", "unstable"), [(0.9, True), (0.5, False), (0.1, False)])
def test_validation_swings_of_a_model_that_fits_its_data_are_not_oscillation(
    train_frac: float, unstable: bool
) -> None:
    """The training loss at ``train_frac`` of the validation loss's running minimum, i.e.
    0.63, 0.35 and 0.07 of its median over the swinging window. Far below it the swings
    are the validation estimate's noise (the reference trainer at LR 0.05; its ``good``
    seeds 12 and 37 at 0.34-0.40, training loss stalled); near it, instability."""
    val = _swinging()
    train = noisy(np.minimum.accumulate(val) * train_frac, 0.005, seed=1)
    f = instability.detect(run(val, train), instability.InstabilityParams())
    assert (f is not None and "oscillates" in f.message) is unstable


@pytest.mark.parametrize(("train_end", "unstable"), [(1.0, True), (0.3, False)])
def test_validation_swings_while_the_training_loss_still_falls_fast_are_not_oscillation(
    train_end: float, unstable: bool
) -> None:
    """A training loss falling by 70% over the last 12 evaluations (the window examined)
    means the model is still learning fast; a flat one leaves the swings unexplained."""
    val = _swinging()
    fall = np.ones(N)
    fall[-12:] = np.linspace(1.0, train_end, 12)
    train = noisy(0.9 * 0.25 * fall, 0.005, seed=1)
    train[:30] = 0.9 * val[:30]
    f = instability.detect(run(val, train), instability.InstabilityParams())
    assert (f is not None and "oscillates" in f.message) is unstable


# The reference trainer's ``lr-too-high`` (seed 30), first 8 epochs: the label's first
# bad point is the 10th; the last 8 sit, in median, at 0.77 of the first loss.
LR_HIGH_S30_VAL = [1.6992, 1.2474, 1.3028, 0.9754, 1.444, 1.1909, 1.0616, 1.3817]
LR_HIGH_S30_TRAIN = [1.8247, 1.3812, 1.3561, 1.2466, 1.2001, 1.1498, 1.2542, 1.2801]


def test_a_loss_at_three_quarters_of_its_first_value_has_made_no_progress() -> None:
    """Swinging around 0.77 of its first value after 8 epochs, this run has not got
    going: the short window applies and it is called there, two epochs before the
    label's first bad point (at 0.8 it waited for 12 evaluations)."""
    val, train = np.array(LR_HIGH_S30_VAL), np.array(LR_HIGH_S30_TRAIN)
    f = instability.detect(run(val, train))
    assert f is not None and "oscillates" in f.message
    assert (
        instability.detect(run(val, train), instability.InstabilityParams(osc_stuck_frac=0.8))
        is None
    )


@pytest.mark.parametrize(("level", "unstable"), [(1.0, True), (0.3, False)])
def test_swings_of_a_loss_that_never_got_going_are_instability_after_eight_points(
    level: float, unstable: bool
) -> None:
    """Eight evaluations swinging by +-25% around ``level`` of the first loss: at the
    first loss's level (a run that never got going, the reference trainer's
    ``lr-too-high``) that is instability already; after a fall to 30% of it, swings
    around a good level wait for the full window of 12."""
    sign = np.where(np.arange(8) % 2 == 0, 1.0, -1.0)
    val = 1.5 * level * (1 + 0.25 * sign)
    val[0] = 1.5
    train = 0.95 * np.minimum.accumulate(val)
    f = instability.detect(run(val, train), instability.InstabilityParams())
    assert (f is not None and "oscillates" in f.message) is unstable
    if f is not None:
        assert f.message.startswith("validation loss oscillates by")
    if not unstable:  # a full window of the same swings is oscillation there too
        swings = 1.5 * level * (1 + 0.25 * np.where(np.arange(12) % 2 == 0, 1.0, -1.0))
        val13 = np.concatenate([[1.5], swings])
        train13 = 0.95 * np.minimum.accumulate(val13)
        f = instability.detect(run(val13, train13), instability.InstabilityParams())
        assert f is not None and "oscillates" in f.message


# A real run of the reference trainer's ``good`` preset (seed 12, 94.5% accuracy): the
# validation loss swings by 15-40% between epochs 13-27 around a level a sixth of its
# first value; its training loss (0.05-0.24 of the validation loss) is left out below.
GOOD_S12_VAL = [
    1.4111, 1.1685, 0.9512, 0.7521, 0.5257, 0.5417, 0.4036, 0.313, 0.3934, 0.3377, 0.3015,
    0.2407, 0.2898, 0.1773, 0.23, 0.2817, 0.2533, 0.2706, 0.2957, 0.1911, 0.324, 0.2518,
    0.3062, 0.2046, 0.2632, 0.1772, 0.2133, 0.1429, 0.1518, 0.153, 0.151, 0.1438, 0.1488,
    0.1466, 0.151, 0.1573, 0.1548, 0.1545, 0.2411, 0.1755,
]  # fmt: skip


# The reference trainer's CNN at SGD LR 0.3 (``advisor train --lr 0.3 --seed 8``): the
# first epoch kills the network, which then sits at chance (8% accuracy) for 40 epochs.
DEAD_VAL = [
    2.3224, 2.3258, 2.3213, 2.3103, 2.3151, 2.3078, 2.3272, 2.3168, 2.3203, 2.3131,
    2.3246, 2.3134, 2.344, 2.3095,
]  # fmt: skip
DEAD_TRAIN = [
    2.2244, 2.3238, 2.3295, 2.328, 2.3193, 2.3247, 2.328, 2.3211, 2.3224, 2.3261,
    2.3268, 2.323, 2.3235, 2.3326,
]  # fmt: skip


def test_a_loss_that_never_falls_is_instability_after_twelve_evaluations() -> None:
    """That run was "healthy" (a horizontal loss) to the end. Not while the LR rises (a
    warm-up holds the loss up on purpose), nor when it falls slowly but surely; after a
    warm-up, once 12 evaluations have passed at the peak LR."""
    val, train = np.array(DEAD_VAL), np.array(DEAD_TRAIN)
    assert instability.detect(run(val[:11], train[:11])) is None
    f = instability.detect(run(val[:12], train[:12]))
    assert f is not None and f.severity is Severity.CRITICAL
    assert f.evidence["no_progress"] == 1.0 and f.evidence["best_to_first"] > 0.99
    assert analyze(run(val, train)).diagnosis is Diagnosis.INSTABILITY
    rising = np.linspace(0.01, 0.1, val.size)
    assert instability.detect(run(val, train, rising)) is None
    # A warm-up's peak that kills the network: judged 12 evaluations after the peak.
    val2, train2 = np.concatenate([val, val[:6]]), np.concatenate([train, train[:6]])
    warm = np.minimum(np.arange(1, val2.size + 1) / 5.0, 1.0) * 0.3
    assert instability.detect(run(val2[:15], train2[:15], warm[:15])) is None
    f = instability.detect(run(val2[:16], train2[:16], warm[:16]))
    assert f is not None and f.evidence["no_progress"] == 1.0
    slow = noisy(2.3 * (1.0 - 0.003 * np.arange(val.size)), 0.003)
    assert instability.detect(run(slow, slow)) is None
    no_trend_test = instability.InstabilityParams(flat_trend_p=0.0)
    assert instability.detect(run(slow, slow), no_trend_test) is not None


# The reference trainer's ``lr-too-high`` (seed 8, 38.6% accuracy), first 20 epochs.
LR_HIGH_S8_VAL = [
    1.4659, 1.0917, 1.4931, 1.2433, 1.8121, 1.378, 1.3949, 1.6932, 1.3548, 1.2968, 1.8058,
    1.4933, 1.4297, 1.4343, 1.2776, 1.1716, 1.2771, 1.5087, 1.5834, 1.4566,
]  # fmt: skip


def test_without_a_training_loss_swings_far_below_the_start_need_a_regular_alternation() -> None:
    """Validation loss alone: swings around a level far below the first value are what a
    confident model's validation estimate does, unless they alternate like a period-2
    oscillation; swings that never left the start are instability either way."""
    good = np.array(GOOD_S12_VAL)
    alerts, summary = replay_run(run(good))
    assert alerts == [] and summary.diagnosis is Diagnosis.HEALTHY
    loose = instability.InstabilityParams(osc_low_frac=0.0)
    assert any(
        (f := instability.detect(run(good[:k]), loose)) is not None and "oscillates" in f.message
        for k in range(12, good.size + 1)
    )
    # A regular alternation on a low level, and irregular swings near the start.
    f = instability.detect(run(_swinging()))
    assert f is not None and "oscillates" in f.message
    alerts, _ = replay_run(run(np.array(LR_HIGH_S8_VAL)))
    assert [(a.event.value, a.finding.diagnosis) for a in alerts][:1] == [
        ("opened", Diagnosis.INSTABILITY)
    ]
    assert "oscillates" in alerts[0].finding.message


# The reference trainer's ``good`` evaluated every 25 steps (5 times per epoch, seed 8),
# first 9 epochs: validation and training loss at the same steps.
GOOD_E25_S8_VAL = [
    2.192, 1.8588, 1.6911, 1.5928, 1.4203, 1.4399, 1.5435, 1.2746, 1.2534, 1.2305, 1.2487,
    1.1578, 0.8917, 0.9686, 0.8143, 0.9118, 0.7833, 0.6832, 0.6813, 0.627, 0.6484, 0.5788,
    0.5933, 0.5849, 0.5473, 0.7129, 0.5229, 0.4436, 0.4582, 0.6079, 0.4372, 0.7666, 0.4253,
    0.3932, 0.4704, 0.4052, 0.4565, 0.3721, 0.3888, 0.3532, 0.3753, 0.3616, 0.3485, 0.328,
    0.3755,
]  # fmt: skip
GOOD_E25_S8_TRAIN = [
    2.2808, 1.9974, 1.7534, 1.6785, 1.566, 1.4469, 1.3823, 1.3383, 1.3522, 1.3536, 1.2721,
    1.0991, 1.0478, 0.9172, 0.7407, 0.7077, 0.7719, 0.6835, 0.7136, 0.6207, 0.5769, 0.496,
    0.5626, 0.4524, 0.4814, 0.467, 0.4979, 0.3772, 0.3587, 0.3539, 0.3356, 0.3477, 0.5139,
    0.3689, 0.2964, 0.2763, 0.35, 0.2866, 0.2666, 0.3128, 0.2556, 0.2191, 0.2141, 0.2067,
    0.2789,
]  # fmt: skip


def test_several_evaluations_per_epoch_irregular_swings_far_below_the_start_are_noise() -> None:
    """With a training loss too: twelve evaluations cover 2.4 epochs here, early enough
    that the training loss is still close to the validation loss and falls little within
    the window, so only the level (a fifth of the first loss) and the irregular swings
    (single spikes, not a period-2 alternation) tell this healthy run from an unstable
    one."""
    val, train = np.array(GOOD_E25_S8_VAL), np.array(GOOD_E25_S8_TRAIN)
    alerts, summary = replay_run(run(val, train))
    assert alerts == [] and summary.diagnosis is Diagnosis.HEALTHY
    loose = instability.InstabilityParams(osc_low_frac=0.0)
    assert any(
        (f := instability.detect(run(val[:k], train[:k]), loose)) is not None
        and "oscillates" in f.message
        for k in range(12, val.size + 1)
    )
    # A regular alternation on the same low level is still oscillation.
    wave = np.where(np.arange(12) % 2 == 0, 1.25, 0.75) * 0.4
    f = instability.detect(
        run(np.concatenate([val[:33], wave]), np.concatenate([train[:33], wave]))
    )
    assert f is not None and "oscillates" in f.message


def _climbing_back() -> tuple[np.ndarray, np.ndarray]:
    """Losses that fall to a best at index 15, then climb back most of the way (the
    reference trainer's ``lr-too-high``)."""
    down = 1.0 + np.exp(-IDX / 3.0)
    up = np.clip((IDX - 15) / (N - 15), 0, None) * 0.8
    return noisy(1.2 * (down + up), 0.05), noisy(down + up, 0.05, seed=1)


def test_a_training_loss_climbing_back_up_is_instability() -> None:
    """Both losses rising again at a constant LR: the optimiser goes backwards."""
    val, train = _climbing_back()
    f = instability.detect(run(val, train), instability.InstabilityParams())
    assert f is not None and f.diagnosis is Diagnosis.INSTABILITY
    assert "climbed back" in f.message and f.evidence["train_given_back"] >= 0.5
    o = overfitting.detect(run(val, train), overfitting.OverfittingParams())
    assert o is None  # a rising training loss is not overfitting


def test_a_training_loss_that_jumped_back_and_stays_there_is_instability() -> None:
    """Both losses fall to a best at index 10, jump back 80% of the way to their start
    and bounce about that level with no trend left (the reference trainer's
    ``lr-too-high`` seeds 8 and 12, which ended "horizontal" at 32-39% accuracy)."""
    down = 1.0 + np.exp(-IDX / 3.0)
    level = np.where(IDX <= 10, down, 1.0 + 0.8 * (down[0] - 1.0))
    rng = np.random.default_rng(3)
    train = level * (1 + 0.04 * rng.standard_normal(N))
    val = level * 1.05 * (1 + 0.04 * rng.standard_normal(N))
    f = instability.detect(run(val, train), instability.InstabilityParams())
    assert f is not None and "climbed back" in f.message
    assert analyze(run(val, train)).diagnosis is Diagnosis.INSTABILITY


def test_a_rising_lr_explains_a_climbing_training_loss() -> None:
    """The same losses while the logged LR rises (a warm-up or restart) raise nothing."""
    val, train = _climbing_back()
    lr = np.where(IDX < 15, 0.1, np.linspace(0.1, 1.0, N))
    f = instability.detect(run(val, train, lr), instability.InstabilityParams())
    assert f is None or "climbed back" not in f.message


@pytest.mark.parametrize(("end", "diverging"), [(0.017, False), (2.5, True)])
def test_training_divergence_needs_more_than_a_quadrupled_near_zero_loss(
    end: float, diverging: bool
) -> None:
    """0.004 -> 0.017 at the end of a good run is noise; back to 2.5 is divergence."""
    val = noisy(healthy())
    train = 2.0 * np.exp(-IDX / 4.0) + 0.004
    train[-6:] = np.linspace(0.004, end, 6)
    f = instability.detect(run(val, train), instability.InstabilityParams())
    assert (f is not None and "training loss is" in f.message) is diverging


def test_nan_alert_is_at_the_first_nan() -> None:
    """A NaN opens a critical alert at its own step."""
    val = noisy(healthy())
    val[30:] = math.nan
    alerts, summary = replay_run(run(val))
    assert alerts[0].finding.step == 3100
    assert summary.diagnosis is Diagnosis.INSTABILITY


def test_too_few_points_is_unknown() -> None:
    """Three points say nothing yet."""
    assert analyze(run(np.array([2.0, 1.5, 1.2]))).diagnosis is Diagnosis.UNKNOWN


def test_no_validation_signal_is_unknown() -> None:
    """A run with only a training loss has no diagnosis."""
    step = np.arange(10, dtype=np.int64)
    c = Curve("loss", TagRole(Role.TRAIN_LOSS), step, np.zeros(10), np.ones(10))
    assert analyze(RunCurves("r", {"loss": c})).diagnosis is Diagnosis.UNKNOWN


CASES: dict[str, Callable[[], np.ndarray]] = {
    "healthy": lambda: noisy(healthy()),
    "overfit": lambda: overfit()[0],
    "underfit": lambda: noisy(0.5 + 2.0 * np.exp(-IDX / 120.0)),
}


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(sorted(CASES)), st.floats(min_value=1e-4, max_value=1e4))
def test_scaling_does_not_flip_diagnosis(case: str, scale: float) -> None:
    """Multiplying a loss curve by a positive constant keeps its diagnosis."""
    val = CASES[case]()
    assert analyze(run(val * scale)).diagnosis is analyze(run(val)).diagnosis


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True, width=64),
            st.sampled_from([math.nan, math.inf, -math.inf, 0.0]),
        ),
        min_size=0,
        max_size=40,
    )
)
def test_nan_never_raises(values: list[float]) -> None:
    """Any values, NaN, inf, zeros, huge or negative, analyse and replay without raising,
    with the training loss the same values reversed or a finite curve."""
    val = np.array(values, dtype=float)
    for train in (val[::-1].copy(), np.linspace(2.0, 1.0, val.size)):
        rc = run(val, train=train)
        a = analyze(rc)
        assert a.diagnosis in Diagnosis
        if a.finding is not None:
            assert 0.0 <= a.finding.confidence <= 1.0
        replay_run(rc)


def test_a_first_nan_with_a_finite_training_loss_is_instability() -> None:
    """No finite validation point yet, a finite training loss: instability, no crash."""
    a = analyze(run(np.array([math.nan]), train=np.array([1.5])))
    assert a.diagnosis is Diagnosis.INSTABILITY and not a.fits_training
