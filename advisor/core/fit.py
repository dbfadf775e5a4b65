"""Trend models for a validation curve: robust slope and saturating fits.

All functions take plain float arrays of finite values (the caller bins long series
first, see ``series.binned``), so each costs well under a millisecond for the 128 points
the detectors pass in.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

from advisor.model import F64

# Theil-Sen and Mann-Kendall are O(n^2); longer inputs are thinned evenly to this size.
_MAX_PAIRWISE = 128
# Two-sided 95% normal quantile, for extrapolation intervals.
_Z95 = 1.959964


@dataclass(frozen=True, slots=True)
class Slope:
    """A Theil-Sen slope with its Mann-Kendall trend test.

    Attributes:
        slope: median of pairwise slopes, value units per x unit.
        intercept: median of ``y - slope * x``.
        tau: Kendall's tau in [-1, 1].
        p_value: two-sided Mann-Kendall p-value (no trend).
        n: points used.
    """

    slope: float
    intercept: float
    tau: float
    p_value: float
    n: int


def _thin(x: F64, y: F64) -> tuple[F64, F64]:
    if x.size <= _MAX_PAIRWISE:
        return x, y
    idx = np.linspace(0, x.size - 1, _MAX_PAIRWISE).round().astype(np.int64)
    return x[idx], y[idx]


def theil_sen(x: F64, y: F64) -> Slope:
    """Theil-Sen slope and Mann-Kendall significance of a trend in ``y`` over ``x``.

    Args:
        x: increasing abscissae (steps).
        y: finite values.

    Returns:
        The slope; with fewer than 3 points, slope 0 and p-value 1.
    """
    x, y = _thin(x, y)
    n = int(x.size)
    if n < 3:
        return Slope(0.0, float(y.mean()) if n else 0.0, 0.0, 1.0, n)
    i, j = np.triu_indices(n, 1)
    dx = x[j] - x[i]
    dy = y[j] - y[i]
    ok = dx != 0
    slope = float(np.median(dy[ok] / dx[ok])) if bool(ok.any()) else 0.0
    intercept = float(np.median(y - slope * x))
    s = float(np.sign(dy).sum())
    var = n * (n - 1) * (2 * n + 5) / 18.0
    z = (s - math.copysign(1.0, s)) / math.sqrt(var) if s != 0 else 0.0
    p = math.erfc(abs(z) / math.sqrt(2.0))
    return Slope(slope, intercept, s / (n * (n - 1) / 2.0), p, n)


@dataclass(frozen=True, slots=True)
class TrendFit:
    """A fitted trend model, in a form that can be evaluated for a plot.

    The abscissa is normalised: ``u = (step + offset) / scale``.

    Attributes:
        model: ``exp`` (a + b*exp(-k*u)), ``power`` (a + b*u**-c) or ``linear`` (a + b*u).
        params: the model's parameters in that order.
        offset: added to the step before scaling.
        scale: divides the shifted step.
        aic: Akaike information criterion of the fit (lower is better).
        asymptote: the fitted limit (inf for ``linear``... never reached), same units as y.
        remaining: improvement still to come from the last fitted point to the asymptote.
        remaining_lo: lower end of its 95% interval.
        remaining_hi: upper end of its 95% interval.
    """

    model: str
    params: tuple[float, ...]
    offset: float
    scale: float
    aic: float
    asymptote: float
    remaining: float
    remaining_lo: float
    remaining_hi: float

    def predict(self, step: F64) -> F64:
        """The fitted value at the given steps."""
        u = (np.asarray(step, dtype=np.float64) + self.offset) / self.scale
        a, b = self.params[0], self.params[1]
        if self.model == "exp":
            out: F64 = a + b * np.exp(-self.params[2] * u)
        elif self.model == "power":
            out = a + b * np.power(np.maximum(u, 1e-12), -self.params[2])
        else:
            out = a + b * u
        return out


def _exp(u: F64, a: float, b: float, k: float) -> F64:
    out: F64 = a + b * np.exp(-k * u)
    return out


def _exp_jac(u: F64, a: float, b: float, k: float) -> F64:
    e = np.exp(-k * u)
    return np.stack([np.ones_like(u), e, -b * u * e], axis=1)


def _power(u: F64, a: float, b: float, c: float) -> F64:
    out: F64 = a + b * np.power(u, -c)
    return out


def _power_jac(u: F64, a: float, b: float, c: float) -> F64:
    p = np.power(u, -c)
    return np.stack([np.ones_like(u), p, -b * p * np.log(u)], axis=1)


def _grid_best(basis: F64, y: F64) -> tuple[int, float]:
    """Variable projection on a grid: for each row of ``basis`` solve a, b (b >= 0) by
    least squares.

    Returns:
        The best row and its residual sum of squares.
    """
    bm = basis.mean(axis=1, keepdims=True)
    bc = basis - bm
    yc = y - y.mean()
    den = (bc * bc).sum(axis=1)
    b = np.where(den > 0, (bc * yc).sum(axis=1) / np.where(den > 0, den, 1.0), 0.0)
    b = np.maximum(b, 0.0)
    a = y.mean() - b * bm[:, 0]
    rss = ((y - a[:, None] - b[:, None] * basis) ** 2).sum(axis=1)
    best = int(np.argmin(rss))
    return best, float(rss[best])


def _aic(rss: float, n: int, k: int) -> float:
    return n * math.log(max(rss, 1e-300) / n) + 2 * k


_K_GRID = np.geomspace(0.05, 40.0, 24)
_C_GRID = np.geomspace(0.02, 3.0, 20)


def fit_trend(step: F64, y: F64, origin: float = 0.0) -> TrendFit | None:
    """Fit exponential decay, power law and a line; keep the lowest AIC.

    Both saturating models are fitted by variable projection under bounds (decreasing
    towards the asymptote: b >= 0, rate and exponent positive): a grid search on the
    rate, refined by ``scipy.optimize.minimize_scalar`` (see ``_varpro``). The power law
    counts time from ``origin`` (the run's first step).

    Args:
        step: increasing steps (at least 4 distinct).
        y: finite values, lower is better.
        origin: the step at which training started.

    Returns:
        The chosen fit, or None with fewer than 4 points.
    """
    n = int(step.size)
    if n < 4 or float(step[-1]) <= float(step[0]):
        return None
    span = float(step[-1] - step[0])
    fits: list[TrendFit] = []
    # Line: a + b*u on u in [0, 1].
    u_lin = (step - step[0]) / span
    b_lin, a_lin = np.polyfit(u_lin, y, 1)
    rss_lin = float(((y - a_lin - b_lin * u_lin) ** 2).sum())
    fits.append(
        TrendFit(
            "linear",
            (float(a_lin), float(b_lin)),
            -float(step[0]),
            span,
            _aic(rss_lin, n, 2),
            -math.inf if b_lin < 0 else float(a_lin + b_lin),
            math.inf if b_lin < 0 else 0.0,
            math.inf if b_lin < 0 else 0.0,
            math.inf if b_lin < 0 else 0.0,
        )
    )
    fits.append(_fit_exp(step, y, span))
    spacing = float(np.median(np.diff(step)))
    offset = max(spacing, 1.0) - origin
    scale = float(step[-1]) + offset
    fits.append(_fit_power(step, y, offset, scale))
    return min(fits, key=lambda f: f.aic)


def _project(g: F64, y: F64) -> tuple[float, float, float]:
    """Least squares of ``y ~ a + b*g`` with ``b >= 0``: (a, b, RSS)."""
    gm, ym = float(g.mean()), float(y.mean())
    gc, yc = g - gm, y - ym
    den = float(gc @ gc)
    b = max(float(gc @ yc) / den, 0.0) if den > 0 else 0.0
    r = yc - b * gc
    return ym - b * gm, b, float(r @ r)


def _varpro(
    basis: Callable[[F64, F64 | float], F64],
    jac: Callable[[F64, float, float, float], F64],
    u: F64,
    y: F64,
    *,
    grid: F64,
    hi: float,
) -> tuple[F64, F64]:
    """Fit ``a + b*basis(u, r)`` (b >= 0, 1e-4 <= r <= hi) by variable projection.

    For a fixed rate ``r`` the model is linear in (a, b), so only ``r`` is searched: the
    best point of ``grid``, then a bounded Brent search on log r between its neighbours
    (about 25 projections of at most 128 points; scipy's curve_fit took 35-60 trust-region
    steps here, 8-14 ms on a still-falling curve). The covariance is curve_fit's default,
    s^2 (J'J)^-1 at the optimum (inf when singular).

    Returns:
        (a, b, r) and their covariance.
    """
    k, rss_k = _grid_best(basis(u[None, :], grid[:, None]), y)
    lo_r = float(grid[k - 1]) if k > 0 else 1e-4
    hi_r = float(grid[k + 1]) if k + 1 < grid.size else hi
    got = minimize_scalar(
        lambda t: _project(basis(u, math.exp(t)), y)[2],
        bounds=(math.log(lo_r), math.log(hi_r)),
        method="bounded",
        options={"xatol": 1e-4},
    )
    r = math.exp(float(got.x))
    a, b, rss_r = _project(basis(u, r), y)
    if rss_r > rss_k:
        r = float(grid[k])
        a, b, rss_r = _project(basis(u, r), y)
    popt = np.array([a, b, r], dtype=np.float64)
    jm = jac(u, a, b, r)
    pcov: F64 = np.full((3, 3), np.inf)
    try:
        got_cov = np.linalg.inv(jm.T @ jm) * (rss_r / max(int(y.size) - 3, 1))
    except np.linalg.LinAlgError:
        return popt, pcov
    if bool(np.all(np.isfinite(got_cov))):
        pcov = np.asarray(got_cov, dtype=np.float64)
    return popt, pcov


def _finish(
    model: str,
    popt: F64,
    pcov: F64,
    u: F64,
    y: F64,
    *,
    offset: float,
    scale: float,
    grad: F64,
) -> TrendFit:
    a, b, r = (float(p) for p in popt)
    pred = _exp(u, a, b, r) if model == "exp" else _power(u, a, b, r)
    rss = float(((y - pred) ** 2).sum())
    remaining = float(pred[-1] - a)
    var = float(grad @ pcov @ grad) if bool(np.all(np.isfinite(pcov))) else math.inf
    half = _Z95 * math.sqrt(max(var, 0.0))
    return TrendFit(
        model,
        (a, b, r),
        offset,
        scale,
        _aic(rss, int(y.size), 3),
        a,
        remaining,
        remaining - half,
        remaining + half,
    )


def _fit_exp(step: F64, y: F64, span: float) -> TrendFit:
    offset, scale = -float(step[0]), span
    u = (step + offset) / scale
    popt, pcov = _varpro(lambda v, k: np.exp(-k * v), _exp_jac, u, y, grid=_K_GRID, hi=200.0)
    e = math.exp(-float(popt[2]))
    grad = np.array([0.0, e, -float(popt[1]) * e])
    return _finish("exp", popt, pcov, u, y, offset=offset, scale=scale, grad=grad)


def _fit_power(step: F64, y: F64, offset: float, scale: float) -> TrendFit:
    u = (step + offset) / scale
    popt, pcov = _varpro(lambda v, c: np.power(v, -c), _power_jac, u, y, grid=_C_GRID, hi=6.0)
    # At u = 1 (the last step) the remaining improvement a + b - a = b.
    grad = np.array([0.0, 1.0, 0.0])
    return _finish("power", popt, pcov, u, y, offset=offset, scale=scale, grad=grad)
