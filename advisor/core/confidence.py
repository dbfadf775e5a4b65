"""Turning evidence into a confidence in [0, 1]."""

from __future__ import annotations

import math


def margin(value: float, threshold: float, scale: float) -> float:
    """How far ``value`` clears ``threshold``, mapped to (0, 1): 0.5 at the threshold.

    A logistic in ``(value - threshold) / scale``; ``scale`` is the distance over which
    the confidence goes from 0.5 to about 0.73.
    """
    if scale <= 0:
        raise ValueError(f"scale must be positive but got {scale}")
    t = (value - threshold) / scale
    if t > 40:
        return 1.0
    if t < -40:
        return 0.0
    return 1.0 / (1.0 + math.exp(-t))


def from_p(p_value: float) -> float:
    """A p-value as support for its alternative: 1 - p, clipped to [0, 1]."""
    return min(1.0, max(0.0, 1.0 - p_value))


def combine(*parts: float) -> float:
    """Geometric mean of independent supports, each in [0, 1]."""
    if not parts:
        return 0.0
    prod = 1.0
    for p in parts:
        prod *= min(1.0, max(0.0, p))
    return float(prod ** (1.0 / len(parts)))
