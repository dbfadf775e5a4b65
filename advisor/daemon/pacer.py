"""When runs may be analysed: within a CPU budget, oldest change first.

Analysing a run after a change costs from half a millisecond to tens of milliseconds
(the detectors fit the whole validation curve; a curve still falling costs the most:
~27 ms measured for the underfitting fit on 2 cores). One run logging an evaluation a
second costs nothing worth pacing; a thousand such runs could keep many cores busy.

So the analysis gets a budget, a fraction of one core, spent as a token bucket: each
analysis costs its measured CPU time, credit comes back at ``budget`` CPU-seconds per
second, up to ``burst`` (so a quiet daemon analyses a change at once, however costly).
Runs wait their turn in the order their changes arrived, and a run's changes that
arrive while it waits are analysed together in one call (the live pipeline analyses a
batch at its last evaluation, refined only where the diagnosis changed since the last
one analysed, so its cost hardly grows with the batch). With a few active runs nothing
waits; with a thousand, each run is analysed every ``active x cost / budget`` seconds
(``interval``): the CPU stays bounded and the alert latency stretches instead. If the
budget cannot keep up even so, the wait grows, and the worker says so.

Pure: the caller passes the clock and the measured costs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from dataclasses import field

# Weight of the newest cost in the running mean (for ``interval``, a statistic only).
_EWMA = 0.05
# Runs analysed within this many seconds count as active (for ``interval``).
_WINDOW = 60.0


@dataclass
class Pacer:
    """A CPU budget for the analysis, and a floor on the spacing of one run's analyses.

    Args:
        budget: CPU-seconds per second (fraction of one core), in (0, 1].
        min_interval: seconds between two analyses of one run, at least.
        burst: CPU-seconds that may be spent at once after a quiet spell.

    Example:
        >>> p = Pacer(budget=0.1, burst=0.05)
        >>> p.ready(now=0.0)
        True
        >>> p.record("a", now=0.0, cost=0.1)  # spent more than the credit
        >>> p.ready(now=0.0), round(p.next_ready(now=0.0), 3)
        (False, 0.5)
    """

    budget: float = 0.15
    min_interval: float = 0.0
    burst: float = 1.0
    cost: float = 0.0
    _credit: float = math.nan
    _refilled: float = math.nan
    _last: dict[str, float] = field(default_factory=dict)
    _active: int = 0
    _pruned: float = -math.inf

    def __post_init__(self) -> None:
        if not 0 < self.budget <= 1:
            raise ValueError(f"budget must be in (0, 1] but got {self.budget}")
        if self.min_interval < 0 or self.burst <= 0:
            raise ValueError(
                f"need min_interval >= 0 and burst > 0 but got {self.min_interval}, {self.burst}"
            )
        self._credit = self.burst

    def _refill(self, now: float) -> None:
        if not math.isnan(self._refilled):
            gained = max(0.0, now - self._refilled) * self.budget
            self._credit = min(self.burst, self._credit + gained)
        self._refilled = now

    def ready(self, now: float) -> bool:
        """Whether the budget allows an analysis now."""
        self._refill(now)
        return self._credit > 0

    def next_ready(self, now: float) -> float:
        """When the budget allows the next analysis (``now`` if it does already)."""
        self._refill(now)
        return now if self._credit > 0 else now + (-self._credit + 1e-6) / self.budget

    def due(self, run: str, now: float) -> float:
        """When ``run``, just changed, may be analysed (``min_interval`` after its last)."""
        last = self._last.get(run)
        return now if last is None else max(now, last + self.min_interval)

    def record(self, run: str, now: float, cost: float) -> None:
        """``run`` was analysed at ``now`` and it took ``cost`` CPU-seconds."""
        self._refill(now)
        self._credit -= cost
        self.cost = cost if self.cost == 0.0 else (1 - _EWMA) * self.cost + _EWMA * cost
        self._last[run] = now
        if now - self._pruned >= 1.0:  # recount once a second, not per analysis
            self._pruned = now
            window = max(_WINDOW, 2 * self.interval)
            self._last = {r: t for r, t in self._last.items() if now - t <= window}
        self._active = len(self._last)

    @property
    def active(self) -> int:
        """Runs analysed in the last minute (or two intervals, if longer)."""
        return self._active

    @property
    def interval(self) -> float:
        """About how often each active run gets analysed, at the present rate."""
        return max(self.min_interval, self._active * self.cost / self.budget)

    def forget(self, run: str) -> None:
        """The run is gone."""
        self._last.pop(run, None)
        self._active = len(self._last)
