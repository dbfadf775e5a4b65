"""The ``[watch]`` and ``[sinks.*]`` sections of advisor.toml, validated.

Every key is optional::

    [watch]
    roots = ["runs/"]         # watched when no ROOT is given on the command line
    poll = 5.0                # seconds: poll instead of filesystem events (NFS, S3 mounts)
    rescan = 30.0             # seconds between full rescans (the truth for missed events)
    state_dir = "/var/lib/advisor"
    analysis_budget = 0.15    # fraction of one core the analysis may use, all runs together
    min_interval = 0.0        # seconds between two analyses of one run, at least
    save_interval = 1.0       # seconds between two writes of the state, at most one per

    [sinks.console]
    enabled = true
    [sinks.slack]             # the URL itself comes from $ADVISOR_SLACK_WEBHOOK_URL or a file
    webhook_file = "/etc/advisor/slack-webhook"
    rate_limit = 20           # messages per rate_window; over it alerts go out as a digest
    rate_window = 60.0
    [sinks.jsonl]
    path = "alerts.jsonl"
    [sinks.webhook]
    url = "https://example.org/hook"
    headers = { Authorization = "Bearer ..." }

``[alerts]``, ``[rules]`` and the other sections, which ``replay`` reads too, are
validated in ``advisor.config``. Relative paths are relative to the configuration
file's directory. An unknown key or a bad value is a ``ConfigError`` naming the file
and the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from advisor.config import Settings
from advisor.config import TableReader

_WATCH_KEYS = frozenset(
    {"roots", "poll", "rescan", "state_dir", "analysis_budget", "min_interval", "save_interval"}
)  # fmt: skip
_SINK_KEYS = {
    "console": frozenset({"enabled"}),
    "slack": frozenset({"enabled", "webhook_file", "rate_limit", "rate_window"}),
    "jsonl": frozenset({"path", "rate_limit", "rate_window"}),
    "webhook": frozenset({"url", "headers", "rate_limit", "rate_window"}),
}
# Slack accepts about one message a second per webhook; 20 a minute leaves room and
# keeps a channel readable. Over it, held alerts go out together as one digest.
_SLACK_RATE = (20, 60.0)


@dataclass(frozen=True, slots=True)
class SinksConfig:
    """Which sinks to use besides stdout (``None``: not configured).

    Attributes:
        console: write alerts to the terminal.
        slack: use Slack when a webhook URL is found (False: never).
        slack_webhook_file: where the URL is, if not in the environment.
        jsonl: append alerts to this JSON Lines file.
        webhook_url: POST alerts here.
        webhook_headers: extra request headers for the webhook.
        rate_limits: sink name → (alerts, window seconds).
    """

    console: bool = True
    slack: bool = True
    slack_webhook_file: Path | None = None
    jsonl: Path | None = None
    webhook_url: str | None = None
    webhook_headers: Mapping[str, str] = field(default_factory=dict)
    rate_limits: Mapping[str, tuple[int, float]] = field(
        default_factory=lambda: {"slack": _SLACK_RATE}
    )


@dataclass(frozen=True, slots=True)
class WatchConfig:
    """What ``advisor watch`` reads from the configuration. See the module docstring."""

    roots: tuple[Path, ...] = ()
    poll: float | None = None
    rescan: float = 30.0
    state_dir: Path | None = None
    analysis_budget: float = 0.15
    min_interval: float = 0.0
    save_interval: float = 1.0
    sinks: SinksConfig = field(default_factory=SinksConfig)


def watch_config(settings: Settings) -> WatchConfig:
    """Validate the daemon's sections of ``settings``.

    Raises:
        ConfigError: one line naming the file and the key.
    """
    origin = str(settings.source) if settings.source is not None else "advisor.toml"
    base = settings.source.parent if settings.source is not None else Path()
    sections = settings.sections
    watch = TableReader(origin, "watch", sections.get("watch", {}), _WATCH_KEYS)
    roots_raw = watch.table.get("roots", [])
    if not isinstance(roots_raw, list) or not all(isinstance(r, str) and r for r in roots_raw):
        raise watch.fail("roots", "a list of paths")
    state_dir = watch.string("state_dir")
    poll = watch.table.get("poll")
    cfg = WatchConfig(
        roots=tuple(base / r for r in roots_raw),
        poll=None if poll is None else watch.number("poll", 0.0, positive=True),
        rescan=watch.number("rescan", 30.0, positive=True),
        state_dir=None if state_dir is None else base / state_dir,
        analysis_budget=watch.number("analysis_budget", 0.15, positive=True),
        min_interval=watch.number("min_interval", 0.0),
        save_interval=watch.number("save_interval", 1.0),
        sinks=_sinks(origin, base, sections.get("sinks", {})),
    )
    if cfg.analysis_budget > 1:
        raise watch.fail("analysis_budget", "a fraction of one core, in (0, 1]")
    return cfg


def _sinks(origin: str, base: Path, raw: Any) -> SinksConfig:
    top = TableReader(origin, "sinks", raw, frozenset(_SINK_KEYS))
    tables = {n: TableReader(origin, f"sinks.{n}", top.table.get(n, {}), _SINK_KEYS[n])
              for n in _SINK_KEYS}  # fmt: skip
    limits: dict[str, tuple[int, float]] = {"slack": _SLACK_RATE}
    for name, t in tables.items():
        if "rate_limit" in t.table:
            count = t.table["rate_limit"]
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise t.fail("rate_limit", "a whole number >= 1 (alerts per rate_window)")
            limits[name] = (count, t.number("rate_window", 60.0, positive=True))
    slack, jsonl, hook = tables["slack"], tables["jsonl"], tables["webhook"]
    webhook_file = slack.string("webhook_file")
    jsonl_path = jsonl.string("path")
    url = hook.string("url")
    if url is not None and not url.lower().startswith(("https://", "http://")):
        raise hook.fail("url", "an http(s):// URL")
    headers = hook.table.get("headers", {})
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise hook.fail("headers", 'a table of "Header" = "value" strings')
    return SinksConfig(
        console=tables["console"].boolean("enabled", True),
        slack=slack.boolean("enabled", True),
        slack_webhook_file=None if webhook_file is None else base / webhook_file,
        jsonl=None if jsonl_path is None else base / jsonl_path,
        webhook_url=url,
        webhook_headers=dict(headers),
        rate_limits=limits,
    )
