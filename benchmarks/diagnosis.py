"""Diagnosis quality on the labelled scenario suites, against baselines; and speed.

Usage: python benchmarks/diagnosis.py [--files DIR] [--suite tune|holdout|trainer]

For each suite (``tune``, used for tuning thresholds; ``holdout``, never used for that;
``trainer``, real runs of the reference trainer's presets at seeds never used for tuning,
written by ``fixtures/scenarios/gen_trainer.py`` and always read from those files) it
prints: the confusion matrix of the end-of-log diagnosis; false alarms on
healthy runs (a run counts when any alert opened, even one that later resolved);
earliness (the fraction of the run at which the right alert first opened, against the
``visible_from`` of the label); and the same numbers, in the same run, for baselines
implemented from their documented defaults. Then LR range test suggestions against the
true maximum LR, the time of ``analyze`` by run length, and PASS/FAIL per target.

Curves come from the generator in memory, or with ``--files DIR`` from the files that
``fixtures/scenarios/generate.py`` wrote, read through the loaders into the store as
``advisor replay`` reads them (hyper-parameters included). The earliness targets are also
given separately for runs whose logs state their planned length of training (HF
``max_steps``, MLflow and TensorBoard ``epochs``) and for runs whose logs do not.

The baselines and how each trigger maps to a diagnosis: ``baselines.py``. Ours:
``advisor.core.timeline.replay_run`` (alerts) and the analysis at the end.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from advisor.core.analysis import analyze
from advisor.core.features import view_of
from advisor.core.timeline import ReplayParams
from advisor.core.timeline import replay_run
from advisor.errors import AdvisorError
from advisor.labelled import read_suite
from advisor.model import AlertEvent
from advisor.model import Curve
from advisor.model import Diagnosis
from advisor.model import Role
from advisor.model import RunCurves
from advisor.model import TagRole
from advisor.scenarios import suite

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # run as a script, or imported from elsewhere
    sys.path.insert(0, str(HERE))

from baselines import Case  # noqa: E402
from baselines import Outcome  # noqa: E402
from baselines import keras  # noqa: E402
from baselines import lightning  # noqa: E402
from baselines import monitored  # noqa: E402
from baselines import nni_median  # noqa: E402
from baselines import sm_loss_not_decreasing  # noqa: E402
from baselines import sm_overfit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LABELS = [d.value for d in Diagnosis if d is not Diagnosis.UNKNOWN] + ["unknown"]
PROBLEMS = (Diagnosis.OVERFITTING, Diagnosis.UNDERFITTING, Diagnosis.INSTABILITY)


# --- loading ---------------------------------------------------------------------------


def load_memory(name: str) -> list[Case]:
    return [
        Case(s.name, s.label, s.visible_from, dict(s.truth), s.run_curves()) for s in suite(name)
    ]


def load_files(name: str, root: Path) -> list[Case]:
    """Read a suite written by fixtures/scenarios/generate.py as ``advisor replay`` does
    (curves, roles and hyper-parameters such as the planned length of training)."""
    return [
        Case(r.name, r.label, r.visible_from, dict(r.truth), r.curves)
        for r in read_suite(root / name)
    ]


# --- methods ---------------------------------------------------------------------------


def ours(case: Case) -> Outcome:
    # Every evaluation is analysed (no coarse grid), so that an alert that opens and
    # closes between two grid points is still counted.
    alerts, summary = replay_run(case.rc, ReplayParams(max_analyses=1 << 30))
    steps, _ = monitored(case.rc)
    opened = tuple(
        (int(np.searchsorted(steps, a.finding.step)), a.finding.diagnosis)
        for a in alerts
        if a.event is AlertEvent.OPENED
    )
    return Outcome(summary.diagnosis, opened, int(steps.size))


# --- scoring ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Score:
    accuracy: float
    healthy_alarm_runs: list[str]
    # Mean first-right-alert fraction over problem runs (1.0 if never; 0.0 for a suite
    # of healthy runs only, so that comparisons rest on accuracy and false alarms).
    earliness: float
    confusion: Counter[tuple[str, str]]


def score(cases: list[Case], outs: list[Outcome]) -> Score:
    conf: Counter[tuple[str, str]] = Counter()
    right = 0
    alarms = []
    early = []
    for c, o in zip(cases, outs, strict=True):
        conf[(c.label.value, o.diagnosis.value)] += 1
        right += c.label is o.diagnosis
        if c.label is Diagnosis.HEALTHY and o.alerts:
            alarms.append(c.name)
        if c.label in PROBLEMS:
            f = o.first(c.label)
            early.append(1.0 if f is None else f)
    return Score(right / len(cases), alarms, statistics.fmean(early) if early else 0.0, conf)


def print_confusion(conf: Counter[tuple[str, str]]) -> None:
    preds = [p for p in LABELS if any(k[1] == p for k in conf)]
    short = {p: p[:11] for p in preds}
    print("    label \\ said  " + " ".join(f"{short[p]:>12}" for p in preds))
    for lab in LABELS:
        if not any(k[0] == lab for k in conf):
            continue
        print(f"    {lab:14}" + " ".join(f"{conf[(lab, p)]:>12}" for p in preds))


PLANNED = "[planned length known]"
UNPLANNED = "[no planned length]"


def planned(case: Case) -> bool:
    """Whether the run's logs give its planned length in a usable form (what the core sees:
    ``max_steps``, or epochs with a logged epoch curve)."""
    view = view_of(case.rc)
    return view is not None and view.elapsed() is not None


def earliness_targets(cases: list[Case], outs: list[Outcome]) -> dict[str, tuple[int, int]]:
    """Per target: (runs meeting it, runs it applies to).

    "visible by then" keeps only the runs whose condition is visible (``visible_from``)
    by the target's deadline: a gentle rise can be invisible 15% after the minimum, and a
    short run has fewer than the 12 evaluations underfitting needs by 30% of it. Three
    variants measure from what a run shows instead: overfitting within 15% of the run,
    or 4 evaluations on a short one, after it is visible; underfitting by 30% or once
    visible; instability at the first bad point but for divergences (whose first point
    looks like a spike that recovers, which must raise nothing).
    """
    keys = [
        "overfit<=min+15%",
        "overfit<=min+15% (visible by then)",
        "underfit<=30%",
        "underfit<=30% (visible by then)",
        "underfit<=max(30%,vis)",
        "overfit<=vis+max(15%,4 evals)",
        "instab@first_bad (not a divergence)",
        "instab@first_bad",
        "instab<=first_bad+1",
    ]
    keys += [f"{k} {tag}" for k in keys[:4] for tag in (PLANNED, UNPLANNED)]
    res = {k: [0, 0] for k in keys}

    def add(key: str, ok: bool, case: Case | None = None) -> None:
        for k in (key, f"{key} {PLANNED if planned(case) else UNPLANNED}") if case else (key,):
            res[k][0] += ok
            res[k][1] += 1

    for c, o in zip(cases, outs, strict=True):
        f = o.first(c.label)
        if c.label is Diagnosis.OVERFITTING:
            deadline = c.truth["min_frac"] + 0.15
            ok = f is not None and f <= deadline + 1e-4
            add("overfit<=min+15%", ok, c)
            if c.visible_from <= deadline:
                add("overfit<=min+15% (visible by then)", ok, c)
            lim = c.visible_from + max(0.15, 4 / o.n)
            add("overfit<=vis+max(15%,4 evals)", f is not None and f <= lim + 1e-4)
        elif c.label is Diagnosis.UNDERFITTING:
            ok = f is not None and f <= 0.3 + 1e-4
            add("underfit<=30%", ok, c)
            if c.visible_from <= 0.3:
                add("underfit<=30% (visible by then)", ok, c)
            lim = max(0.3, c.visible_from)
            add("underfit<=max(30%,vis)", f is not None and f <= lim + 1e-4)
        elif c.label is Diagnosis.INSTABILITY:
            bad = int(c.truth["first_bad"])
            idx = None if f is None else round(f * o.n) - 1
            add("instab@first_bad", idx is not None and idx <= bad)
            if not c.name.startswith("diverge"):
                add("instab@first_bad (not a divergence)", idx is not None and idx <= bad)
            add("instab<=first_bad+1", idx is not None and idx <= bad + 1)
    return {k: (v[0], v[1]) for k, v in res.items()}


def detail(cases: list[Case], outs: list[Outcome]) -> None:
    for lab in PROBLEMS:
        rows = [(c, o.first(lab)) for c, o in zip(cases, outs, strict=True) if c.label is lab]
        got = [(c, f) for c, f in rows if f is not None]
        if not rows:
            continue
        lead = [f - c.visible_from for c, f in got]
        extra = ""
        if lab is Diagnosis.OVERFITTING and got:
            after = [f - c.truth["min_frac"] for c, f in got]
            extra = (
                f"; after minimum: median {statistics.median(after):+.2f}, max {max(after):+.2f}"
            )
        print(
            f"    {lab.value:13} alerted {len(got)}/{len(rows)}; at fraction median "
            f"{statistics.median([f for _, f in got]) if got else math.nan:.2f}; minus "
            f"visible_from: median {statistics.median(lead) if lead else math.nan:+.2f}, max "
            f"{max(lead) if lead else math.nan:+.2f}{extra}"
        )
        late = [
            (c.name, round(f, 2), round(c.visible_from, 2))
            for c, f in got
            if f - c.visible_from > 0.15
        ]
        missed = [c.name for c, f in rows if f is None]
        if late:
            print(f"      late (>0.15 after visible): {late}")
        if missed:
            print(f"      never alerted: {missed}")


def lr_table(cases: list[Case]) -> dict[str, float]:
    """Median |log10(suggestion / true max LR)| per method, over the LR range tests."""
    errs: dict[str, list[float]] = {}
    band: dict[str, list[bool]] = {}
    for c in cases:
        if c.label is not Diagnosis.LR_RANGE_TEST:
            continue
        a = analyze(c.rc)
        if a.lr_range is None:
            continue
        true = c.truth["max_lr"]
        r = a.lr_range
        suggestions = {
            "ours max_lr": r.max_lr,
            "ours min_lr (vs true/10)": r.min_lr,
            "fastai valley": r.fastai_valley,
            "fastai steep": r.fastai_steep,
            "fastai minimum": r.fastai_minimum,
            "lightning": r.lightning,
        }
        for name, v in suggestions.items():
            if not (v > 0 and math.isfinite(v)):
                continue
            target = true / 10 if name.startswith("ours min_lr") else true
            errs.setdefault(name, []).append(abs(math.log10(v / target)))
            band.setdefault(name, []).append(true / 10 * 0.999 <= v <= true * 1.001)
    print("    method                   median |log10(lr / true max)|   in [max/10, max]")
    for name, e in errs.items():
        med = statistics.median(e)
        print(f"    {name:24} {med:>10.2f} decades           {sum(band[name])}/{len(e)}")
    return {k: statistics.median(v) for k, v in errs.items()}


# --- timing ----------------------------------------------------------------------------


def timing(
    sizes: tuple[int, ...] = (1_000, 5_000, 10_000, 20_000),
    reps: int = 25,
    tau: float = 0.2,
    spike_frac: float = 0.0,
) -> dict[int, tuple[float, float]]:
    """Median wall and CPU milliseconds of ``analyze`` per run length.

    The curve decays with a time constant of ``tau`` of the run: 0.2 reaches its
    plateau, 3.0 is still falling at the end (the underfitting detector then fits its
    trend models, the most expensive path). ``spike_frac`` of the points spike by
    50-150% (the instability detector then judges every spike). The machine is shared,
    so wall time includes waiting for a core; CPU time (this process only) does not.
    Sizes are interleaved so that a busy spell hits them all.
    """
    rng = np.random.default_rng(7)
    runs = {}
    for n in sizes:
        i = np.arange(1, n + 1, dtype=np.float64)
        val = (0.4 + 2.0 * np.exp(-i / (tau * n))) * (1 + 0.01 * rng.standard_normal(n))
        if spike_frac > 0:
            hit = rng.choice(n, size=int(spike_frac * n), replace=False)
            val[hit] *= 1 + rng.uniform(0.5, 1.5, hit.size)
        steps = (i * 10).astype(np.int64)
        wall = 1.7e9 + i
        runs[n] = RunCurves(
            "timing",
            {
                "val_loss": Curve("val_loss", TagRole(Role.VAL_LOSS), steps, wall, val),
                "loss": Curve("loss", TagRole(Role.TRAIN_LOSS), steps, wall, val * 0.8),
                "lr": Curve("lr", TagRole(Role.LR), steps, wall, np.full(n, 0.01)),
            },
        )
        analyze(runs[n])
    walls: dict[int, list[float]] = {n: [] for n in sizes}
    cpus: dict[int, list[float]] = {n: [] for n in sizes}
    for _ in range(reps):
        for n in sizes:
            w0, c0 = time.perf_counter(), time.process_time()
            analyze(runs[n])
            cpus[n].append(time.process_time() - c0)
            walls[n].append(time.perf_counter() - w0)
    return {
        n: (statistics.median(walls[n]) * 1e3, statistics.median(cpus[n]) * 1e3) for n in sizes
    }


# --- main ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Diagnosis quality and speed.")
    parser.add_argument("--files", type=Path, default=None, help="read suites from DIR")
    parser.add_argument("--suite", choices=["tune", "holdout", "trainer"], action="append")
    args = parser.parse_args(argv)
    names = args.suite or ["tune", "holdout", "trainer"]
    verdicts: list[tuple[str, bool, str]] = []
    t_start = time.perf_counter()
    for name in names:
        from_files = args.files is not None or name == "trainer"
        if name == "trainer":
            cases = load_files(name, args.files or ROOT / "fixtures" / "scenarios")
        else:
            cases = load_files(name, args.files) if args.files else load_memory(name)
        print(
            f"\n=== suite {name}: {len(cases)} runs "
            f"({'files' if from_files else 'generator in memory'}) ==="
        )
        methods: dict[str, Callable[[Case], Outcome]] = {
            "ours": ours,
            "keras ES p=0": keras(0),
            "keras ES p=10": keras(10),
            "lightning ES p=3": lightning,
            "sagemaker Overfit": sm_overfit,
            "sagemaker LossNotDecr": sm_loss_not_decreasing,
            "nni median stop": nni_median(cases),
        }
        results = {m: [f(c) for c in cases] for m, f in methods.items()}
        scores = {m: score(cases, o) for m, o in results.items()}
        mine = scores["ours"]
        print("  confusion (ours, end of log):")
        print_confusion(mine.confusion)
        print(
            f"  accuracy {mine.accuracy:.1%}; healthy runs with any alert: "
            f"{len(mine.healthy_alarm_runs)} {mine.healthy_alarm_runs}"
        )
        print("  earliness (fraction of the run at the first right alert):")
        detail(cases, results["ours"])
        et = earliness_targets(cases, results["ours"])
        for k, (ok, tot) in et.items():
            if tot:
                print(f"    {k:24} {ok}/{tot}")
        print("  baselines (same runs):")
        print("    method                 accuracy  healthy-alarm runs  mean earliness  ahead?")
        ahead_all = True
        for m, s in scores.items():
            ahead = (
                ""
                if m == "ours"
                else (
                    "yes"
                    if mine.accuracy >= s.accuracy and mine.earliness <= s.earliness
                    else "NO"
                )
            )
            ahead_all &= ahead != "NO"
            print(
                f"    {m:22} {s.accuracy:>8.1%}  {len(s.healthy_alarm_runs):>18}  "
                f"{s.earliness:>14.2f}  {ahead}"
            )
        print("  LR range tests (true max LR = argmin of the noise-free curve):")
        lr_table(cases)
        hlth = sum(c.label is Diagnosis.HEALTHY for c in cases)
        verdicts += [
            (f"{name}: end-of-log accuracy >= 95%", mine.accuracy >= 0.95, f"{mine.accuracy:.1%}"),
            (
                f"{name}: 0 alerts on healthy runs",
                not mine.healthy_alarm_runs,
                f"{len(mine.healthy_alarm_runs)}/{hlth} healthy runs alerted",
            ),
        ]
        for k in (
            "overfit<=min+15%",
            "overfit<=min+15% (visible by then)",
            "underfit<=30%",
            "underfit<=30% (visible by then)",
            "instab@first_bad",
            "instab<=first_bad+1",
        ):
            ok, tot = et[k]
            if not tot:
                continue  # no run of that kind in the suite
            verdicts.append((f"{name}: {k}", ok == tot, f"{ok}/{tot}"))
            for tag in (PLANNED, UNPLANNED):
                ok, tot = et.get(f"{k} {tag}", (0, 0))
                if tot:
                    verdicts.append((f"{name}:   {k} {tag}", ok == tot, f"{ok}/{tot}"))
        verdicts.append(
            (f"{name}: ahead of every baseline (accuracy and earliness)", ahead_all, "")
        )
    print("\n=== analyze() time by run length (median of 25; shared machine) ===")
    shapes = {
        "reaches its plateau": timing(tau=0.2),
        "still falling": timing(tau=3.0),
        "spiking (5% of points)": timing(tau=0.2, spike_frac=0.05),
    }
    for shape, tm in shapes.items():
        print(f"  {shape}:")
        for n, (wall_ms, cpu_ms) in tm.items():
            print(f"    {n:>6} points: {wall_ms:6.2f} ms wall   {cpu_ms:6.2f} ms CPU")
    # The slower shape at each length.
    tm = {
        n: max((t[n] for t in shapes.values()), key=lambda v: v[1])
        for n in shapes["still falling"]
    }
    wall10, cpu10 = tm[10_000]
    growth = tm[20_000][1] / cpu10
    verdicts.append(
        ("analyze 10,000 points < 5 ms median (CPU)", cpu10 < 5.0, f"{cpu10:.2f} ms CPU")
    )
    verdicts.append(
        ("analyze 10,000 points < 5 ms median (wall)", wall10 < 5.0, f"{wall10:.2f} ms wall")
    )
    verdicts.append(
        ("growth at most linear (CPU t20k / t10k <= 2.2)", growth <= 2.2, f"{growth:.2f}")
    )
    print("\n=== targets ===")
    for what, ok, note in verdicts:
        print(f"  {'PASS' if ok else 'FAIL'}  {what}  {note}")
    print(f"\n(total {time.perf_counter() - t_start:.0f} s)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AdvisorError as exc:  # e.g. --files DIR without a labelled suite
        print(f"diagnosis.py: {exc}", file=sys.stderr)
        sys.exit(2)
