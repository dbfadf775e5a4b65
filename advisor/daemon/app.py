"""``advisor watch``: configuration, wiring, threads and signals.

Threads: watchdog's observer (enqueues paths), the rescan timer (enqueues ``RESCAN``),
the worker (everything else), one per sink (delivery), and the main thread, which only
waits for a signal or for the worker to end.

Stopping: the first SIGINT or SIGTERM stops the observer and joins it, lets the worker
finish the run it is on and write the state, then gives the sinks ``close_timeout``
seconds to deliver what is queued (the rest waits in the outbox for the next start),
and exits 0. A second SIGINT exits at once with 130: nothing is lost that the outboxes
and the last written state hold.
"""

from __future__ import annotations

import io
import logging
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import TextIO

from advisor.config import Settings
from advisor.config import environment
from advisor.config import load_settings
from advisor.errors import AdvisorError
from advisor.errors import InputError
from advisor.model import Severity
from advisor.pipeline import Pipeline
from advisor.ruleset import RuleBook
from advisor.ruleset import load_rulebook
from advisor.sinks.base import Sink
from advisor.sinks.dispatcher import Dispatcher
from advisor.sources.discovery import unique_roots
from advisor.throttle import RateLimiter
from advisor.throttle import ThrottleParams

from .logs import LogSet
from .observer import STOP
from .observer import Item
from .observer import Watcher
from .pacer import Pacer
from .settings import WatchConfig
from .settings import watch_config
from .sinks import build_sinks
from .state import StateDir
from .state import check_state_dir
from .worker import Worker

log = logging.getLogger("advisor.daemon")

EXIT_INTERRUPTED = 130


@dataclass(frozen=True, slots=True)
class WatchRequest:
    """The command line of ``advisor watch`` (None: from the configuration)."""

    roots: tuple[Path, ...] = ()
    config: Path | None = None
    poll: float | None = None
    as_json: bool = False
    state_dir: Path | None = None
    once: bool = False
    min_severity: str | None = None
    rules: tuple[Path, ...] = ()
    close_timeout: float = 5.0
    check: bool = False


def _roots(given: tuple[Path, ...]) -> tuple[Path, ...]:
    if not given:
        raise InputError("no ROOT given and no [watch] roots in the configuration")
    out = []
    for root in given:
        if not root.exists():
            raise InputError(f"{root}: no such file or directory")
        if root.is_dir() and not os.access(root, os.R_OK | os.X_OK):
            raise InputError(f"{root}: permission denied")
        # Absolute, so that discovery's paths and the observer's event paths match.
        out.append(Path(os.path.abspath(root)))
    return tuple(unique_roots(out))


@dataclass
class Parts:
    """What ``assemble`` builds; ``Daemon`` runs it."""

    worker: Worker
    dispatcher: Dispatcher
    watcher: Watcher
    events: queue.SimpleQueue[Item]
    state: StateDir | None
    close_timeout: float


@dataclass(frozen=True, slots=True)
class Plan:
    """What ``watch`` would run with, validated; nothing opened or started."""

    settings: Settings
    cfg: WatchConfig
    roots: tuple[Path, ...]
    book: RuleBook
    throttle: ThrottleParams
    sinks: Mapping[str, Sink]
    limits: Mapping[str, RateLimiter]
    state_dir: Path | None
    poll: float | None


def configure(req: WatchRequest, stdout: TextIO, sinks: Mapping[str, Sink] | None = None) -> Plan:
    """Validate the request and its configuration, rules and sinks.

    Raises:
        AdvisorError: bad roots, configuration, rules or Slack webhook URL.
    """
    settings = load_settings(req.config)
    cfg = watch_config(settings)
    book = load_rulebook((*settings.rule_files, *req.rules))
    throttle = settings.throttle
    if req.min_severity:
        throttle = replace(throttle, min_severity=Severity(req.min_severity))
    limits: Mapping[str, RateLimiter] = {}
    if sinks is None:
        sinks, limits = build_sinks(cfg.sinks, environment(), as_json=req.as_json, stdout=stdout)
    given = req.roots or cfg.roots
    # --check without roots checks the configuration alone; watch needs one.
    roots = _roots(given) if given or not req.check else ()
    poll = req.poll if req.poll is not None else cfg.poll
    state_dir = req.state_dir or cfg.state_dir
    return Plan(settings, cfg, roots, book, throttle, sinks, limits, state_dir, poll)


def assemble(req: WatchRequest, stdout: TextIO, sinks: Mapping[str, Sink] | None = None) -> Parts:
    """Validate the request and configuration, and build every part (nothing started).

    Args:
        req: the command line.
        stdout: where console text or ``--json`` lines go.
        sinks: use these instead of the configured sinks (tests).

    Raises:
        AdvisorError: bad roots, configuration, rules or state dir.
    """
    plan = configure(req, stdout, sinks)
    cfg, roots, poll, state_dir = plan.cfg, plan.roots, plan.poll, plan.state_dir
    pipeline = Pipeline(plan.book, plan.settings.hparams, throttle_params=plan.throttle)
    state = StateDir(state_dir) if state_dir is not None else None
    events: queue.SimpleQueue[Item] = queue.SimpleQueue()

    def ready(desc: str) -> None:
        names = ", ".join(str(r) for r in roots)
        log.info("watching %s: %s (%s, rescan every %g s, %s)", names, desc, _how(poll),
                 cfg.rescan, _where(state_dir))  # fmt: skip

    dispatcher = Dispatcher(plan.sinks, outbox_dir=state.outbox if state else None,
                            limits=plan.limits)  # fmt: skip
    worker = Worker(
        LogSet(roots, plan.settings), pipeline, dispatcher.publish_all, events,
        roles=plan.settings.roles, state=state,
        pacer=Pacer(cfg.analysis_budget, cfg.min_interval),
        save_interval=cfg.save_interval, on_ready=None if req.once else ready,
    )  # fmt: skip
    watcher = Watcher(roots, events.put, poll=poll, rescan=cfg.rescan)
    return Parts(worker, dispatcher, watcher, events, state, req.close_timeout)


def check(req: WatchRequest) -> int:
    """``watch --check``: validate everything ``watch`` would start with; start nothing.

    Safe beside a running daemon: the state directory is read, not locked, and no
    alert is sent. Prints what would run on stderr.

    Raises:
        AdvisorError: what ``watch`` would stop on at its start (one line).
    """
    plan = configure(req, io.StringIO())
    saved = None if plan.state_dir is None else check_state_dir(plan.state_dir)
    source = plan.settings.source or "no configuration file"
    own = len(plan.settings.rule_files) + len(req.rules)
    mine = f" (with {own} rule file{'s' * (own > 1)} of yours)" if own else ""
    rules = f"{len(plan.book.rules)} rules{mine}"
    log.info("%s: OK; %s; alerts (%s and up) to %s", source, rules,
             plan.throttle.min_severity.value, ", ".join(plan.sinks) or "nowhere")  # fmt: skip
    if plan.roots:
        names = ", ".join(str(r) for r in plan.roots)
        log.info("would watch %s (%s, rescan every %g s)", names, _how(plan.poll),
                 plan.cfg.rescan)  # fmt: skip
    else:
        log.info("no ROOT given and no [watch] roots: the configuration alone was checked")
    if saved is not None:
        n = len(saved.files)
        kept = f"progress saved for {n} log{'s' * (n != 1)}"
        log.info("%s (%s)", _where(plan.state_dir), kept if saved.pipeline else "none saved yet")
    return 0


def _how(poll: float | None) -> str:
    return f"polling every {poll:g} s" if poll is not None else "filesystem events"


def _where(state_dir: Path | None) -> str:
    return f"state in {state_dir}" if state_dir is not None else "state in memory only"


class Daemon:
    """The running parts of ``watch``: start, then stop from any thread (or a signal).

    Args:
        parts: from ``assemble``.
    """

    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        self.done = threading.Event()
        self.ready = threading.Event()
        self.failure: BaseException | None = None
        self._cycle = threading.Condition()
        parts.worker.on_cycle = self._notify
        self._thread = threading.Thread(target=self._work, name="advisor-worker")

    def start(self) -> Daemon:
        """Start the observer, the sinks and the worker (which first reads every log)."""
        p = self.parts
        # The observer starts before the start-up scan: a change made during the scan
        # is then queued, and at worst read twice (the second read finds nothing new).
        p.watcher.start()
        p.dispatcher.start()
        self._thread.start()
        return self

    def _work(self) -> None:
        try:
            self.parts.worker.start_up(time.time)
            self.ready.set()
            self._notify()
            if not self.parts.worker.stopping:
                self.parts.worker.serve()
        except BaseException as exc:  # reported by whoever stops the daemon
            self.failure = exc
        finally:
            self.done.set()
            self._notify()

    def _notify(self) -> None:
        with self._cycle:
            self._cycle.notify_all()

    def wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Block until ``predicate()`` holds after a pass of the worker; False on timeout.

        For tests and tools: ``predicate`` runs on the caller's thread, so it should
        only read (e.g. ``run in worker.pipeline.runs``).
        """
        deadline = time.monotonic() + timeout
        with self._cycle:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0 or self.done.is_set():
                    return predicate()
                self._cycle.wait(left)
        return True

    def request_stop(self) -> None:
        """Ask the worker to stop; safe in a signal handler (a flag and a queue put).

        The flag is read by the worker between runs (a start-up pass can be long); the
        token wakes it from its queue.
        """
        self.parts.worker.stopping = True
        self.parts.events.put(STOP)

    def stop(self) -> bool:
        """Stop the observer, let the worker write the state, close the sinks.

        Returns:
            True if every sink delivered what was queued within the close timeout.
        """
        p = self.parts
        p.watcher.stop()
        self.request_stop()
        if self._thread.is_alive():
            self._thread.join()
        ok = p.dispatcher.close(p.close_timeout)
        if not ok:
            log.warning("undelivered alerts wait in the outbox for the next start")
        if p.state is not None:
            p.state.close()
        return ok


def run_watch(
    req: WatchRequest, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """Run ``advisor watch`` until SIGINT or SIGTERM (with ``--once``: one pass; with
    ``--check``: validate only).

    Returns:
        The exit code: 0, or 1 when the worker failed (e.g. the state cannot be written).

    Raises:
        AdvisorError: bad roots, configuration, rules or state dir (exit 2 in the CLI).
    """
    handler = _log_to(sys.stderr if stderr is None else stderr)
    try:
        if req.check:
            return check(req)
        parts = assemble(req, sys.stdout if stdout is None else stdout)
        if req.once:
            return _once(parts)
        return _serve(Daemon(parts))
    finally:
        logging.getLogger("advisor").removeHandler(handler)


def _once(parts: Parts) -> int:
    parts.dispatcher.start()
    try:
        # The logs' own clock, and read as finished: as replay does.
        parts.worker.start_up(lambda: None, final=True)
    finally:
        # A pass has no later start to hand undelivered alerts to soon: wait longer.
        if not parts.dispatcher.close(max(parts.close_timeout, 30.0)):
            log.warning("undelivered alerts wait in the outbox for the next start")
        if parts.state is not None:
            parts.state.close()
    return 0


def _serve(daemon: Daemon) -> int:
    def on_signal(signum: int, frame: FrameType | None) -> None:
        if daemon.parts.worker.stopping or daemon.done.is_set():
            if signum == signal.SIGINT:
                os._exit(EXIT_INTERRUPTED)  # the second ^C: at once
            return
        daemon.request_stop()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        daemon.start()
        while not daemon.done.wait(1.0):  # a timeout, so that signal handlers run promptly
            pass
        if daemon.failure is None:
            log.info("stopping: state saved, delivering what is queued (Ctrl-C again: at once)")
    finally:
        daemon.stop()
        for sig, old in previous.items():
            signal.signal(sig, old)
    exc = daemon.failure
    if exc is None:
        return 0
    if isinstance(exc, AdvisorError):
        raise exc
    log.error("error: %s: %s", type(exc).__name__, exc)
    return 1


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"advisor: {record.getMessage()}"


def _log_to(stream: TextIO) -> logging.Handler:
    """Status lines and warnings on ``stream`` (stderr), one line each."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(_Formatter())
    root = logging.getLogger("advisor")
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    return handler
