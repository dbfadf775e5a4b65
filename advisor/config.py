"""advisor.toml and ADVISOR_* environment → frozen Settings.

This is the only module that reads the environment. Every key is optional; an unknown
key or a bad value is an error naming the file and the key, never silently skipped.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

from advisor.errors import ConfigError
from advisor.hparams import HParamOverride
from advisor.hparams import parse_overrides
from advisor.model import Severity
from advisor.roles import RoleTable
from advisor.roles import parse_role
from advisor.throttle import ThrottleParams

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

DEFAULT_NAME = "advisor.toml"
# Sections the daemon validates itself (advisor.daemon.settings); the rest are read here.
_DAEMON_SECTIONS = frozenset({"watch", "sinks"})
_KNOWN_SECTIONS = _DAEMON_SECTIONS | {"roles", "hparams", "alerts", "rules", "text"}
_TEXT_KEYS = frozenset({"pattern"})
_ALERT_KEYS = frozenset({"cooldown", "min_severity"})
_RULE_KEYS = frozenset({"files"})


@dataclass(frozen=True)
class Settings:
    """Validated configuration.

    Attributes:
        roles: tag → role table with the configured overrides.
        text_pattern: a regex with named groups ``name`` and ``value`` for plain text
            logs, overriding the default ``key=value`` / ``key: value`` pattern.
        hparams: known hyper-parameters per run glob (``[[hparams]]``).
        throttle: the alert lifecycle's cooldown and severity floor (``[alerts]``), the
            same for ``watch`` and ``replay``.
        rule_files: the user's rule files (``[rules] files``), loaded after the
            built-in rules and before those given with ``--rules``.
        source: the file these settings came from, if any.
        sections: the raw sections other modules validate themselves (``[watch]``,
            ``[sinks]``: the daemon's).
    """

    roles: RoleTable = field(default_factory=RoleTable)
    text_pattern: str | None = None
    hparams: tuple[HParamOverride, ...] = ()
    throttle: ThrottleParams = field(default_factory=ThrottleParams)
    rule_files: tuple[Path, ...] = ()
    source: Path | None = None
    sections: Mapping[str, Any] = field(default_factory=dict)


def load_settings(path: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Load settings from ``path``, else ``$ADVISOR_CONFIG``, else ./advisor.toml if present.

    Raises:
        ConfigError: the file is unreadable or invalid (one line naming file and key).
    """
    env = os.environ if env is None else env
    if path is None and env.get("ADVISOR_CONFIG"):
        path = Path(env["ADVISOR_CONFIG"])
    if path is None:
        default = Path(DEFAULT_NAME)
        if not default.is_file():
            return Settings()
        path = default
    return settings_from_mapping(read_toml(path), path)


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file's contents.

    Raises:
        ConfigError: unreadable or invalid, in one line naming the file.
    """
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def environment() -> dict[str, str]:
    """The ``ADVISOR_*`` variables of this process's environment.

    Modules that need one (the Slack webhook URL) take this mapping as an argument, so
    that this stays the only module that reads the environment.
    """
    return {k: v for k, v in os.environ.items() if k.startswith("ADVISOR_")}


def settings_from_mapping(data: Mapping[str, Any], path: Path) -> Settings:
    """Validate parsed TOML into Settings."""
    unknown = sorted(set(data) - _KNOWN_SECTIONS)
    if unknown:
        raise ConfigError(
            f"{path}: unknown section {unknown[0]!r} (known: {', '.join(sorted(_KNOWN_SECTIONS))})"
        )
    roles_raw = data.get("roles", {})
    if not isinstance(roles_raw, Mapping):
        raise ConfigError(f'{path}: [roles] must be a table of tag = "role"')
    overrides = {}
    for tag, role in roles_raw.items():
        if not isinstance(role, str):
            raise ConfigError(f'{path}: roles.{tag}: expected a string such as "val_loss"')
        overrides[tag] = parse_role(role, f"{path}: roles.{tag}")

    def table(name: str, known: frozenset[str]) -> TableReader:
        return TableReader(str(path), name, data.get(name, {}), known)

    pattern = table("text", _TEXT_KEYS).string("pattern")
    if pattern is not None:
        _check_pattern(pattern, path)
    return Settings(
        roles=RoleTable(overrides),
        text_pattern=pattern,
        hparams=parse_overrides(data.get("hparams"), str(path)),
        throttle=_throttle(table("alerts", _ALERT_KEYS)),
        rule_files=_rule_files(table("rules", _RULE_KEYS), path.parent),
        source=path,
        sections={k: v for k, v in data.items() if k in _DAEMON_SECTIONS},
    )


def _throttle(alerts: TableReader) -> ThrottleParams:
    name = alerts.string("min_severity") or Severity.INFO.value
    try:
        severity = Severity(name)
    except ValueError:
        raise alerts.fail("min_severity", "one of info, warning, critical") from None
    return ThrottleParams(alerts.number("cooldown", 600.0), severity)


def _rule_files(rules: TableReader, base: Path) -> tuple[Path, ...]:
    files = rules.table.get("files", [])
    if not isinstance(files, list) or not all(isinstance(f, str) and f.strip() for f in files):
        raise rules.fail("files", "a list of rule file paths")
    # Checked here rather than when the rules load, so that the error names this file.
    out = tuple(base / f for f in files)
    for f in out:
        if not f.is_file():
            raise rules.fail("files", f"rule files that exist ({f}: no such file)")
    return out


class TableReader:
    """Typed access to one table, with errors that name the file and the key."""

    def __init__(self, origin: str, name: str, table: Any, known: frozenset[str]) -> None:
        self.origin, self.name = origin, name
        if not isinstance(table, Mapping):
            raise ConfigError(f"{origin}: [{name}] must be a table")
        unknown = sorted(set(table) - known)
        if unknown:
            raise ConfigError(
                f"{origin}: {name}.{unknown[0]}: unknown key (known: {', '.join(sorted(known))})"
            )
        self.table = table

    def fail(self, key: str, what: str) -> ConfigError:
        return ConfigError(f"{self.origin}: {self.name}.{key}: expected {what}")

    def number(self, key: str, default: float, *, positive: bool = False) -> float:
        value = self.table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, "a number")
        value = float(value)
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            raise self.fail(key, "a finite number " + ("> 0" if positive else ">= 0"))
        return value

    def string(self, key: str) -> str | None:
        value = self.table.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise self.fail(key, "a non-empty string")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.table.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, "true or false")
        return value


def _check_pattern(pattern: str, path: Path) -> None:
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"{path}: text.pattern: invalid regex: {exc}") from None
    if not {"name", "value"} <= set(compiled.groupindex):
        raise ConfigError(f"{path}: text.pattern: needs named groups 'name' and 'value'")
