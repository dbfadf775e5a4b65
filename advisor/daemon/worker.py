"""The one thread that owns the daemon's state: files, Store, Pipeline, pacing.

Loop: take what the observer queued (paths, ``RESCAN``, ``STOP``), coalescing duplicate
paths into a set of dirty files per run; rescan when asked (rate-limited); then, for
each run whose turn has come (``Pacer``), read its dirty files, and if they gave points,
advance the pipeline over the run's curves and publish the alerts; now and then write
the state.

Order of durability: alerts go to the dispatcher's outboxes (on disk) before the state
that records having derived them is written. A crash in between makes the restarted
daemon derive the same alerts again, with the same ids, and the outboxes refuse them:
nothing is lost and nothing is sent twice. This is also why the state may be written
at most once per ``save_interval`` rather than after every batch: a later write costs
re-analysis after a crash, never an alert.
"""

from __future__ import annotations

import heapq
import logging
import queue
import time
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import replace

from advisor.model import Alert
from advisor.pipeline import Pipeline
from advisor.roles import RoleTable

from .logs import LogSet
from .observer import RESCAN
from .observer import STOP
from .observer import Item
from .pacer import Pacer
from .state import StateDir

log = logging.getLogger("advisor.daemon")

# After the first queued item, gather for this long before acting: a writer's burst
# (several files of one run, several writes of one line) becomes one read.
_GATHER = 0.01
# Event-driven rescans (an unknown file appeared) wait until 20 times the last
# rescan's duration has passed since it, so that they cost at most 5% of a core: a few
# ms with tens of runs, a second or two with thousands. The floor keeps a burst of new
# files (a run starting) to one rescan.
_RESCAN_GAP = 0.05
# A change waiting this long for the analysis budget is worth a warning, once per
# _WARN_EVERY seconds.
_BEHIND = 60.0
_WARN_EVERY = 300.0
# A run whose turn comes later than this after its change was due finds the daemon
# behind: its batch of new evaluations is analysed at its ends only (``Worker``).
_EXACT_LATE = 1.0
# Seconds between two writes of the state when only its stats changed (monitoring).
_STATS_EVERY = 5.0
# A state write waits until 50 times the last write's CPU time has passed since it, so
# that writing costs at most 2% of a core: a millisecond with tens of runs, ~40 ms with
# 1,000 (py-spy, stress case), which at one write a second was a fifth of the
# daemon's CPU.
_SAVE_GAP = 50.0


class Worker:
    """Owns every piece of mutable state; call its methods from one thread only.

    Args:
        logs: the watched files and the Store.
        pipeline: curves → alerts.
        publish: hands alerts to the dispatcher (durably).
        events: the queue the observer fills.
        roles: the role table for the Store's curves.
        state: where to persist; None keeps state in memory only.
        pacer: the analysis CPU budget (runs wait their turn when it is spent).
        save_interval: seconds between two state writes, at least (more when a write
            takes long, see ``_SAVE_GAP``).
        on_ready: called once the start-up pass is done, with a one-line description.
    """

    def __init__(
        self,
        logs: LogSet,
        pipeline: Pipeline,
        publish: Callable[[Iterable[Alert]], None],
        events: queue.SimpleQueue[Item],
        *,
        roles: RoleTable,
        state: StateDir | None = None,
        pacer: Pacer | None = None,
        save_interval: float = 1.0,
        on_ready: Callable[[str], None] | None = None,
    ) -> None:
        self.logs, self.pipeline, self.publish, self.events = logs, pipeline, publish, events
        self.roles, self.state = roles, state
        self.pacer = pacer or Pacer()
        self.save_interval = save_interval
        self.on_ready = on_ready
        self.on_cycle: Callable[[], None] | None = None  # after each pass of the loop
        self.catchup_params = pipeline.params
        # Behind (a turn more than _EXACT_LATE after its change was due), live changes
        # of a run already analysed are analysed at the batch's last evaluation only,
        # against the last one analysed before, and refined to every evaluation wherever
        # the diagnosis differs between the two (core.timeline.raw_timeline): a paced
        # batch whose diagnosis holds costs one analysis, so that the cost of a run's
        # turn does not grow with the wait (1,000 runs still falling: 3-5 analyses per
        # batch of 5-40 evaluations on the earlier 2-3 prefix grid). That misses a
        # finding that comes and goes between the two ends; on time, every evaluation of
        # the batch is analysed, as replay does (the demo's `lr-too-low` run: its
        # planned-length finding holds at epochs 7 and 14 only, and a batch of epochs
        # 6-10 opened the alert at 14 instead of 7).
        self.live_params = replace(pipeline.params, max_analyses=1)
        self.dirty: dict[str, set[str]] = {}
        self._due: list[tuple[float, str]] = []  # heap; stale entries skipped
        self._scheduled: dict[str, float] = {}
        self._rescan_wanted = False
        self._next_rescan = 0.0
        self._unsaved = False
        self._last_save = -float("inf")
        self._save_cost = 0.0
        self._warned = -float("inf")
        self.stopping = False
        self.analyses = 0

    # -- start-up -------------------------------------------------------------------

    def start_up(self, clock: Callable[[], float | None], *, final: bool = False) -> None:
        """Read every log from its start, restore the saved state, analyse what changed.

        A run whose files all still have the signatures saved with the pipeline state
        was analysed to its end before: it is read (the analysis needs its curves) but
        not analysed. Every other run is analysed from where the saved state left off,
        in name order, as ``replay`` does.

        Args:
            clock: the time for evaluations without a logged wall time: the wall clock
                when watching, None (their step) for ``--once``, as replay does.
            final: read the logs as finished (``--once``): a cut-off last line or record
                is reported, as replay does, not waited for.
        """
        saved = self.state.load() if self.state is not None else None
        if saved is not None and saved.pipeline is not None:
            try:
                self.pipeline.load_state(saved.pipeline)
            except ValueError as exc:
                log.warning("%s; starting afresh", exc)
        old = saved.files if saved is not None else {}
        self.logs.scan()
        changed: set[str] = set()
        for run in self.logs.runs():
            paths = list(self.logs.paths(run))
            before = {p for p, s in old.items() if s.run == run}
            for path in paths:
                if self.logs.load(path, final=final) is None:  # deleted: the rescan sees it
                    changed.add(run)
                    continue
                sig = self.logs.files[path].sig
                if sig is None or not sig.same_file(old.get(path)):
                    changed.add(run)
            if before != set(paths) or run not in self.pipeline.runs:
                changed.add(run)
            if self.stopping:
                return
        for run in sorted(set(self.pipeline.runs) - set(self.logs.runs())):
            self.pipeline.forget(run)
        for run in sorted(changed):
            if self.stopping:
                return
            self._analyse(run, clock(), coarse=False)
        self.save(force=True)
        if self.on_ready is not None:
            files = len(self.logs.files)
            self.on_ready(f"{len(self.logs.by_run)} runs, {files} files; analysed {len(changed)}")

    # -- the loop ---------------------------------------------------------------------

    def serve(self) -> None:
        """Process events until ``STOP`` is queued; then write the state."""
        while not self.stopping:
            now = time.monotonic()
            wake = now + 3600.0
            if self._due:  # the oldest change, once the budget allows
                wake = max(self._due[0][0], self.pacer.next_ready(now))
            if self._rescan_wanted:
                wake = min(wake, self._next_rescan)
            self._drain(max(0.0, wake - now))
            if self.stopping:
                break
            if self._rescan_wanted and time.monotonic() >= self._next_rescan:
                self.rescan()
            self._process_due()
            self._warn_if_behind()
            self.save()
            if self.on_cycle is not None:
                self.on_cycle()
        self.save(force=True)

    def _drain(self, timeout: float) -> None:
        try:
            item = self.events.get(timeout=timeout)
        except queue.Empty:
            return
        deadline = time.monotonic() + _GATHER
        while True:
            self._take(item)
            remaining = deadline - time.monotonic()
            try:
                item = self.events.get(timeout=remaining) if remaining > 0 else (
                    self.events.get_nowait())  # fmt: skip
            except queue.Empty:
                return

    def _take(self, item: Item) -> None:
        if item is STOP:
            self.stopping = True
        elif item is RESCAN:
            self._rescan_wanted = True
        elif isinstance(item, str):
            keys = self.logs.keys_of(item)
            for key in keys:
                self._touch(key)
            if keys and self.logs.runs_changed(item):
                self._rescan_wanted = True  # a run started in (or left) a database
            elif not keys and self.logs.worth_rescan(item):
                self._rescan_wanted = True

    def _touch(self, path: str) -> None:
        run = self.logs.run_of(path)
        if run is None:
            return
        self.dirty.setdefault(run, set()).add(path)
        if run not in self._scheduled:
            due = self.pacer.due(run, time.monotonic())
            self._scheduled[run] = due
            heapq.heappush(self._due, (due, run))

    def rescan(self) -> None:
        """Discovery over every root: new runs, deleted runs, and a stat of every file."""
        started = time.monotonic()
        self._rescan_wanted = False
        result = self.logs.scan()
        for run in sorted(result.gone_runs):
            self._forget(run)
        # Every file is checked: the rescan repairs missed events (one stat if unchanged;
        # of an MLflow database, the runs with rows not yet seen), and new ones are read.
        for key in sorted(result.added):
            self._touch(key)
        for path in list(self.logs.by_path):
            for key in self.logs.keys_of(path):
                self._touch(key)
        elapsed = time.monotonic() - started
        self._next_rescan = time.monotonic() + max(_RESCAN_GAP, 20 * elapsed)

    def _forget(self, run: str) -> None:
        self.pipeline.forget(run)
        self.pacer.forget(run)
        self.dirty.pop(run, None)
        self._unsaved = True
        log.info("%s: logs deleted, run forgotten", run)

    def _process_due(self) -> None:
        while self._due and not self.stopping:
            due, run = self._due[0]
            now = time.monotonic()
            if due > now or not self.pacer.ready(now):
                return
            heapq.heappop(self._due)
            if self._scheduled.get(run) != due:
                continue  # stale
            del self._scheduled[run]
            self._process(run, self.dirty.pop(run, set()), late=now - due)

    def _warn_if_behind(self) -> None:
        if not self._due:
            return
        now = time.monotonic()
        behind = now - self._due[0][0]
        if behind > _BEHIND and now - self._warned >= _WARN_EVERY:
            self._warned = now
            log.warning(
                "analysis is %.0f s behind (%d runs waiting): raise [watch] analysis_budget "
                "(now %g of a core) or log validation less often",
                behind, len(self._scheduled), self.pacer.budget,
            )  # fmt: skip

    def _process(self, run: str, paths: set[str], *, late: float = 0.0) -> None:
        started = time.thread_time()
        gave = False
        for path in sorted(paths):
            if path not in self.logs.files:
                continue
            got = self.logs.load(path)
            if got is None:
                gone = self.logs.drop_file(path)
                if gone is not None:
                    self._forget(gone)
                    return
                for p in self.logs.paths(run):  # rebuilt from its remaining files
                    gave = self.logs.load(p) is True or gave
                continue
            gave = gave or got
            self._unsaved = True  # signatures moved on
        if gave:
            behind = run in self.pipeline.runs and late > _EXACT_LATE
            self._analyse(run, time.time(), coarse=behind)
            self.pacer.record(run, time.monotonic(), time.thread_time() - started)

    def _analyse(self, run: str, clock: float | None, *, coarse: bool) -> None:
        """Advance the run's alerts; ``coarse``: the daemon is behind, and the batch of
        a run already analysed is analysed at its ends (``live_params``)."""
        self.pipeline.params = self.live_params if coarse else self.catchup_params
        alerts = self.pipeline.advance(self.logs.store.curves(run, self.roles), clock=clock)
        self.analyses += 1
        self._unsaved = True
        if alerts:
            self.publish(alerts)  # durable in the outboxes before the state is saved

    # -- state ------------------------------------------------------------------------

    def stats(self) -> dict[str, float]:
        """Backlog and pacing numbers, written with the state for monitoring."""
        now = time.monotonic()
        lag = max((now - d for d, r in self._due if self._scheduled.get(r) == d), default=0.0)
        return {
            "queued": float(self.events.qsize()),
            "dirty_runs": float(len(self._scheduled)),
            "overdue_s": max(0.0, lag),
            "interval_s": self.pacer.interval,
            "analysis_cost_s": self.pacer.cost,
            "active_runs": float(self.pacer.active),
            "analyses": float(self.analyses),
            "runs": float(len(self.logs.by_run)),
            "saved_at": time.time(),
        }

    def save(self, *, force: bool = False) -> None:
        """Write the state if it changed and ``save_interval`` has passed (or ``force``).

        Raises:
            OSError: the state cannot be written (the caller stops the daemon).
        """
        if self.state is None:
            return
        now = time.monotonic()
        # Unchanged state is still written now and then, to keep its stats current.
        stale = now - self._last_save >= _STATS_EVERY
        if not force and not (self._unsaved or stale):
            return
        gap = max(self.save_interval, _SAVE_GAP * self._save_cost)
        if not force and now - self._last_save < gap:
            return
        started = time.thread_time()
        self.state.save(self.pipeline.state_to_json(), self.logs.signatures(), self.stats())
        self._save_cost = time.thread_time() - started
        self._unsaved = False
        self._last_save = now
