"""Trend models: Theil-Sen with Mann-Kendall, saturating fits."""

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
