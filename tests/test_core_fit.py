"""Trend models: Theil-Sen with Mann-Kendall, saturating fits, the rise test."""

from __future__ import annotations

import numpy as np

from advisor.core import fit


def test_theil_sen_resists_outliers() -> None:
    """A line with a few wild points keeps its slope; the trend is significant."""
    x = np.arange(50, dtype=float)
    y = 3.0 - 0.02 * x
    y[[5, 20, 40]] += 10.0
    s = fit.theil_sen(x, y)
    assert abs(s.slope + 0.02) < 1e-9
    assert s.p_value < 1e-6 and s.tau < 0


def test_mann_kendall_finds_no_trend_in_noise() -> None:
    """Pure noise has no significant trend."""
    rng = np.random.default_rng(1)
    s = fit.theil_sen(np.arange(60, dtype=float), rng.normal(0, 1, 60))
    assert s.p_value > 0.05


def test_fit_trend_recovers_exponential_asymptote() -> None:
    """An exponential decay is fitted with its asymptote and a sane interval."""
    rng = np.random.default_rng(2)
    step = np.arange(1, 101, dtype=float) * 10
    y = 0.5 + 2.0 * np.exp(-step / 300) + rng.normal(0, 0.005, step.size)
    got = fit.fit_trend(step, y)
    assert got is not None and got.model in ("exp", "power")
    assert abs(got.asymptote - 0.5) < 0.05
    assert got.remaining_lo <= got.remaining <= got.remaining_hi
    assert np.allclose(got.predict(step), y, atol=0.03)


def test_fit_trend_prefers_line_for_a_line() -> None:
    """A straight fall has no visible asymptote: the remaining improvement is unbounded."""
    step = np.arange(30, dtype=float)
    got = fit.fit_trend(step, 2.0 - 0.01 * step)
    assert got is not None
    assert got.remaining > 0.05


def test_rise_after_min_sees_a_v_and_not_a_plateau() -> None:
    """A V shape rises significantly after its minimum; a flat noisy line does not."""
    rng = np.random.default_rng(3)
    x = np.arange(60)
    v = np.abs(x - 25) * 0.01 + 1 + rng.normal(0, 0.005, 60)
    from advisor.core.series import zero_phase

    r = fit.rise_after_min(v, zero_phase(v, 0.7), 0.005, 8)
    assert r.z > 5 and r.p_value < 0.01
    flat = 1 + rng.normal(0, 0.005, 60)
    r2 = fit.rise_after_min(flat, zero_phase(flat, 0.7), 0.005, 8)
    assert r2.z < 3


def test_rise_after_min_takes_no_point_before_the_phase_start() -> None:
    """With the minimum right after a drop, the median around it uses only points of its
    own phase: the higher level before the drop would hide the rise."""
    from advisor.core.series import zero_phase

    y = np.concatenate([np.full(10, 0.3), 0.19 + 0.001 * np.arange(10)])
    smooth = zero_phase(y, 0.5, (10,))
    assert int(np.argmin(smooth)) == 10
    within = fit.rise_after_min(y, smooth, 0.001, 6, start=10)
    across = fit.rise_after_min(y, smooth, 0.001, 6)
    assert within.min_index == across.min_index == 10
    assert abs(within.rise - 0.005) < 1e-9  # medians 0.1965 and 0.1915
    assert across.rise < 0.004  # three points at 0.3 lift the median around it


def test_slow_test_tells_a_slow_decay_from_a_fast_one() -> None:
    """A fast decay needs no slow term (statistic ~ 0); a slow one needs it strongly; the
    free fit's fall to the planned end is reported (within 2x: it extrapolates from 30%
    of the run); a spike is left out."""
    t = np.linspace(0.01, 0.3, 30)
    rng = np.random.default_rng(0)
    fast = 1 + 2 * np.exp(-t / 0.08) + 0.01 * rng.standard_normal(30)
    slow = 1 + 2 * np.exp(-t / 0.8) + 0.01 * rng.standard_normal(30)
    got_fast = fit.slow_test(t, fast, 0.01, 0.12, 1.0)
    got_slow = fit.slow_test(t, slow, 0.01, 0.12, 1.0)
    assert got_fast is not None and got_fast.lam < 4.0
    assert got_slow is not None and got_slow.lam > 100.0 and got_slow.tau_slow > 0.12
    true_fall = 2 * (np.exp(-0.3 / 0.8) - np.exp(-1 / 0.8))
    assert 0.5 * true_fall < got_slow.remaining < 2.0 * true_fall  # an extrapolation
    spiked = fast.copy()
    spiked[12] += 1.0
    got = fit.slow_test(t, spiked, 0.01, 0.12, 1.0)
    assert got is not None and got.used == 29 and got.lam < 4.0
    assert fit.slow_test(t[:4], fast[:4], 0.01, 0.12, 1.0) is None
