"""The rise test after a curve's minimum."""

from __future__ import annotations

import numpy as np

from advisor.core.rise import rise_after_min
from advisor.core.series import zero_phase


def test_rise_after_min_sees_a_v_and_not_a_plateau() -> None:
    """A V shape rises significantly after its minimum; a flat noisy line does not."""
    rng = np.random.default_rng(3)
    x = np.arange(60)
    v = np.abs(x - 25) * 0.01 + 1 + rng.normal(0, 0.005, 60)
    r = rise_after_min(v, zero_phase(v, 0.7), 0.005, 8)
    assert r.z > 5 and r.p_value < 0.01
    flat = 1 + rng.normal(0, 0.005, 60)
    r2 = rise_after_min(flat, zero_phase(flat, 0.7), 0.005, 8)
    assert r2.z < 3


def test_rise_after_min_takes_no_point_before_the_phase_start() -> None:
    """With the minimum right after a drop, the median around it uses only points of its
    own phase: the higher level before the drop would hide the rise."""
    y = np.concatenate([np.full(10, 0.3), 0.19 + 0.001 * np.arange(10)])
    smooth = zero_phase(y, 0.5, (10,))
    assert int(np.argmin(smooth)) == 10
    within = rise_after_min(y, smooth, 0.001, 6, start=10)
    across = rise_after_min(y, smooth, 0.001, 6)
    assert within.min_index == across.min_index == 10
    assert abs(within.rise - 0.005) < 1e-9  # medians 0.1965 and 0.1915
    assert across.rise < 0.004  # three points at 0.3 lift the median around it
