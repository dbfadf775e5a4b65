"""``advisor e2e``: does following the advisor make training better? Measured, not argued.

For every bad preset and seed: train it, replay its log through the same pipeline that
``watch`` runs, check the diagnosis, take the top recommendation of the first alert (as
of its last update), rerun with it applied (:mod:`advisor.trainer.apply`) and compare
the final validation loss and accuracy. ``good`` must raise no alert and end healthy.
And the paper's headline: 1cycle between the bounds that ``advisor lr-range`` reads off
a range test reaches the constant-LR (``good``) run's final accuracy in half its epochs.

The advice followed is the top recommendation of the first alert opened, as of its last
update (:func:`first_advice`). Advice to take the LR from a range test runs one on the
same model and data (:func:`range_bounds`) and reruns with 1cycle between its bounds.

What counts (the targets of issue 6):

- diagnosed correctly: a bad preset opens at least one alert and every alert it opens
  has the preset's diagnosis (a wrong first word is a wrong diagnosis, even when a
  later alert is right); ``good`` opens none and ends ``healthy``.
- improves the final validation loss: the rerun's is finite and at least 1% lower, or
  the first run's was NaN (1% because a step of no consequence, such as weight decay
  0 → 1e-6, moves it by 0.04%).
- the 1cycle claim holds when its final accuracy, averaged over the seeds, is at least
  ``good``'s (the paper averages 4 runs per curve, paper-notes §3).

Replaying a finished log gives the same alerts, at the same steps, as watching it live
(:mod:`advisor.pipeline`); the demo watches live. torch is imported only when training.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from advisor.config import Settings
from advisor.model import Alert
from advisor.model import AlertEvent
from advisor.model import Diagnosis
from advisor.model import Recommendation
from advisor.model import RunSummary
from advisor.replay import replay
from advisor.ruleset import RuleBook
from advisor.trainer.apply import NotApplicableError
from advisor.trainer.apply import apply_recommendation
from advisor.trainer.config import TrainConfig
from advisor.trainer.presets import PRESETS
from advisor.trainer.records import TrainResult

BAD_PRESETS = ("lr-too-low", "overfit", "lr-too-high", "nan")
LR_PRESETS = ("lr-too-low", "lr-too-high")
MIN_LOSS_GAIN = 0.01  # relative: "improves" means at least 1% lower
MIN_ACC_GAIN = 0.05  # LR presets: at least 5 points of accuracy
IMPROVED_SHARE = 0.9  # of (bad preset, seed) pairs

Echo = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Watched:
    """A run trained and replayed: its numbers, the alerts and the end-of-log summary."""

    config: TrainConfig
    result: TrainResult
    alerts: tuple[Alert, ...]
    summary: RunSummary

    @property
    def opened(self) -> list[Alert]:
        return [a for a in self.alerts if a.event is AlertEvent.OPENED]

    def timeline(self) -> str:
        """``underfitting@6, overfitting@18`` (opened alerts, by epoch), or ``none``."""
        return ", ".join(f"{a.finding.diagnosis.value}@{_epoch(a)}" for a in self.opened) or "none"


@dataclass(frozen=True, slots=True)
class Case:
    """One bad preset and seed: the run, the advice followed, the rerun."""

    preset: str
    seed: int
    before: Watched
    top: Recommendation | None
    change: str
    after: Watched | None

    @property
    def expected(self) -> Diagnosis:
        return PRESETS[self.preset].expected

    @property
    def diagnosed(self) -> bool:
        opened = self.before.opened
        return bool(opened) and all(a.finding.diagnosis is self.expected for a in opened)

    @property
    def loss_improved(self) -> bool:
        if self.after is None:
            return False
        old, new = self.before.result.final_val_loss, self.after.result.final_val_loss
        return math.isfinite(new) and (math.isnan(old) or new <= (1 - MIN_LOSS_GAIN) * old)

    @property
    def acc_gain(self) -> float:
        if self.after is None:
            return math.nan
        return self.after.result.final_val_accuracy - self.before.result.final_val_accuracy


@dataclass(frozen=True, slots=True)
class Healthy:
    """``good`` for one seed: it must raise no alert and end healthy."""

    seed: int
    run: Watched

    @property
    def diagnosed(self) -> bool:
        return not self.run.opened and self.run.summary.diagnosis is Diagnosis.HEALTHY


@dataclass(frozen=True, slots=True)
class OneCycle:
    """The headline for one seed: range test → 1cycle bounds → half the epochs."""

    seed: int
    max_lr: float
    min_lr: float
    result: TrainResult
    epochs: int


def watch_run(config: TrainConfig, logdir: Path, settings: Settings, book: RuleBook) -> Watched:
    """Train ``config`` into ``logdir`` (new) and replay its log through the pipeline."""
    from advisor.trainer.train import train

    result = train(config, logdir, quiet=True)
    got = list(replay([logdir], settings, book))
    if len(got) != 1:
        raise RuntimeError(f"{logdir}: expected one run in the log, found {len(got)}")
    return Watched(config, result, got[0].alerts, got[0].summary)


def first_advice(alerts: Sequence[Alert]) -> tuple[Alert | None, Recommendation | None]:
    """The first alert opened, as of its last update, and its top recommendation.

    An alert is a lifecycle: it opens, may be updated (a worse severity, a new finding,
    recomputed advice) and resolves. What it says last before resolving is what a user
    reading it at the end of training acts on: a jump that turns into a NaN updates the
    alert with the advice for a NaN.
    """
    first = next((a for a in alerts if a.event is AlertEvent.OPENED), None)
    if first is None:
        return None, None
    latest = first
    for a in alerts[alerts.index(first) + 1 :]:
        if (a.run, a.rule) != (first.run, first.rule):
            continue
        if a.event is not AlertEvent.UPDATED:
            break  # resolved (or reopened: a new alert)
        latest = a
    return latest, latest.recommendations[0] if latest.recommendations else None


def run_case(
    preset: str,
    seed: int,
    root: Path,
    settings: Settings,
    book: RuleBook,
    *,
    config: TrainConfig | None = None,
) -> Case:
    """Run a bad preset, follow the first alert's top recommendation, rerun.

    Args:
        preset: its name (for the expected diagnosis).
        seed: the seed of both runs.
        root: where ``<preset>-s<seed>/{before,after}`` logs go.
        settings: as ``advisor replay`` reads them.
        book: the rule book.
        config: the run to make instead of the preset's (a shortened preset, in tests).
    """
    base = (config or PRESETS[preset].config).replace(seed=seed)
    where = root / f"{preset}-s{seed}"
    before = watch_run(base, where / "before", settings, book)
    _, top = first_advice(before.alerts)
    if top is None:
        return Case(preset, seed, before, None, "no alert: nothing to apply", None)
    try:
        applied = apply_recommendation(
            base, top, before.result.history, lambda cfg: range_bounds(cfg, where / "range-test")
        )
    except NotApplicableError as exc:
        return Case(preset, seed, before, top, f"not applicable: {exc}", None)
    after = watch_run(applied.config, where / "after", settings, book)
    return Case(preset, seed, before, top, applied.change, after)


def run_healthy(seed: int, root: Path, settings: Settings, book: RuleBook) -> Healthy:
    """Run ``good`` for ``seed``."""
    cfg = PRESETS["good"].config.replace(seed=seed)
    return Healthy(seed, watch_run(cfg, root / f"good-s{seed}", settings, book))


def range_bounds(config: TrainConfig, logdir: Path) -> tuple[float, float]:
    """The 1cycle (max, min) LR of a range test on ``config``'s model and data.

    The sweep is the ``range-test`` preset's (linear, 1e-3 to 0.5 over 4 epochs); it is
    read as ``advisor lr-range`` reads it.
    """
    from advisor.rangetest import read_range_log
    from advisor.trainer.train import train

    sweep = PRESETS["range-test"].config
    test = config.replace(schedule="range", lr=sweep.lr, min_lr=sweep.min_lr,
                          range_mode=sweep.range_mode, epochs=sweep.epochs,
                          eval_every=sweep.eval_every)  # fmt: skip
    train(test, logdir, quiet=True)
    got = read_range_log(logdir).result
    return got.max_lr, got.min_lr


def run_one_cycle(seed: int, root: Path, good: TrainConfig) -> OneCycle:
    """Range test, its bounds, then 1cycle for half of ``good``'s epochs.

    The 1cycle run is ``good`` with only the schedule, momentum (0.95 → 0.85) and epochs
    changed, so the comparison is of the schedule alone.
    """
    from advisor.trainer.train import train

    where = root / f"one-cycle-s{seed}"
    high, low = range_bounds(good.replace(seed=seed), where / "range-test")
    epochs = good.epochs // 2
    cfg = good.replace(schedule="1cycle", lr=high, min_lr=low, momentum=0.95,
                       min_momentum=0.85, epochs=epochs, seed=seed)  # fmt: skip
    result = train(cfg, where / "1cycle", quiet=True)
    return OneCycle(seed, high, low, result, epochs)


def _epoch(alert: Alert) -> str:
    return f"{alert.epoch:.3g}" if alert.epoch is not None else f"step {alert.finding.step}"


@dataclass(frozen=True, slots=True)
class Report:
    """Everything ``advisor e2e`` measured."""

    seeds: tuple[int, ...]
    cases: tuple[Case, ...]
    healthy: tuple[Healthy, ...]
    cycles: tuple[OneCycle, ...]
    quick: bool = False


def quick_configs() -> dict[str, TrainConfig]:
    """Shortened bad presets for a run of seconds: each still shows its regime.

    ``lr-too-low`` is cut to 6 epochs validated every 20 iterations (1-2 s here; the
    alert opens at epoch 2); ``overfit`` and ``nan`` are fast as they are.
    """
    return {
        "lr-too-low": PRESETS["lr-too-low"].config.replace(epochs=6, eval_every=20),
        "overfit": PRESETS["overfit"].config,
        "nan": PRESETS["nan"].config,
    }


def run_e2e(seeds: Sequence[int], root: Path, *, quick: bool = False,
            echo: Echo | None = None) -> Report:  # fmt: skip
    """Run every case for every seed under ``root``; ``echo`` hears of each as it ends."""
    from advisor.config import load_settings
    from advisor.ruleset import load_rulebook

    say = echo or (lambda _: None)
    settings, book = load_settings(None), load_rulebook(())
    configs = quick_configs() if quick else {p: PRESETS[p].config for p in BAD_PRESETS}
    cases, healthy, cycles = [], [], []
    for seed in seeds:
        for preset, cfg in configs.items():
            case = run_case(preset, seed, root, settings, book, config=cfg)
            cases.append(case)
            say(f"{preset} seed {seed}: {case.before.timeline()}; {case.change}")
        if quick:
            continue
        healthy.append(run_healthy(seed, root, settings, book))
        say(f"good seed {seed}: {healthy[-1].run.timeline()}")
        cycles.append(run_one_cycle(seed, root, PRESETS["good"].config))
        say(f"1cycle seed {seed}: {cycles[-1].result.final_val_accuracy:.1%}")
    return Report(tuple(seeds), tuple(cases), tuple(healthy), tuple(cycles), quick)
