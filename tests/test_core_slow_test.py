"""The slow-decay test."""

from __future__ import annotations

import numpy as np

from advisor.core.slow_test import slow_test


def test_slow_test_tells_a_slow_decay_from_a_fast_one() -> None:
    """A fast decay needs no slow term (statistic ~ 0); a slow one needs it strongly; the
    free fit's fall to the planned end is reported (within 2x: it extrapolates from 30%
    of the run); a spike is left out."""
    t = np.linspace(0.01, 0.3, 30)
    rng = np.random.default_rng(0)
    fast = 1 + 2 * np.exp(-t / 0.08) + 0.01 * rng.standard_normal(30)
    slow = 1 + 2 * np.exp(-t / 0.8) + 0.01 * rng.standard_normal(30)
    got_fast = slow_test(t, fast, 0.01, 0.12, 1.0)
    got_slow = slow_test(t, slow, 0.01, 0.12, 1.0)
    assert got_fast is not None and got_fast.lam < 4.0
    assert got_slow is not None and got_slow.lam > 100.0 and got_slow.tau_slow > 0.12
    true_fall = 2 * (np.exp(-0.3 / 0.8) - np.exp(-1 / 0.8))
    assert 0.5 * true_fall < got_slow.remaining < 2.0 * true_fall  # an extrapolation
    spiked = fast.copy()
    spiked[12] += 1.0
    got = slow_test(t, spiked, 0.01, 0.12, 1.0)
    assert got is not None and got.used == 29 and got.lam < 4.0
    assert slow_test(t[:4], fast[:4], 0.01, 0.12, 1.0) is None
