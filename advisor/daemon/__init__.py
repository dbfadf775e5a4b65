"""``advisor watch``: the daemon that tails log roots and alerts as findings change.

Layout (DESIGN.md section 1):

- ``observer``: a watchdog observer whose handler only enqueues paths, and a timer that
  enqueues a rescan token. Nothing else runs on those threads.
- ``logs``: the watched files (loader and signature per file, by run) and the Store.
- ``worker``: the one thread that owns the mutable state (``logs.LogSet``, the
  Pipeline, the pacing) and publishes alerts to the dispatcher.
- ``pacer``: a CPU budget for the analysis (a token bucket); runs take turns, oldest
  change first, and what a run gains while it waits is analysed in one call.
- ``state``: the persisted pipeline state and file signatures in ``--state-dir``.
- ``settings``: the ``[watch]``, ``[alerts]`` and ``[sinks]`` sections of advisor.toml.
- ``sinks``: the sinks a configuration asks for; ``app``: the command's wiring.
"""
