"""advisor.toml and ADVISOR_* environment → frozen Settings.

This is the only module that reads the environment. Every key is optional; an unknown
key or a bad value is an error naming the file and the key, never silently skipped.
"""

from __future__ import annotations

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
from advisor.roles import RoleTable
from advisor.roles import parse_role

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

DEFAULT_NAME = "advisor.toml"
# Sections later parts of the product read; accepted here so that one file serves all.
_KNOWN_SECTIONS = frozenset({"roles", "watch", "hparams", "alerts", "sinks", "rules", "text"})


@dataclass(frozen=True)
class Settings:
    """Validated configuration.

    Attributes:
        roles: tag → role table with the configured overrides.
        text_pattern: a regex with named groups ``name`` and ``value`` for plain text
            logs, overriding the default ``key=value`` / ``key: value`` pattern.
        hparams: known hyper-parameters per run glob (``[[hparams]]``).
        source: the file these settings came from, if any.
        sections: the raw sections other modules validate themselves.
    """

    roles: RoleTable = field(default_factory=RoleTable)
    text_pattern: str | None = None
    hparams: tuple[HParamOverride, ...] = ()
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
    text = data.get("text", {})
    pattern = text.get("pattern") if isinstance(text, Mapping) else None
    if pattern is not None and not isinstance(pattern, str):
        raise ConfigError(f"{path}: text.pattern: expected a string")
    if pattern is not None:
        _check_pattern(pattern, path)
    return Settings(
        roles=RoleTable(overrides),
        text_pattern=pattern,
        hparams=parse_overrides(data.get("hparams"), str(path)),
        source=path,
        sections={k: v for k, v in data.items() if k not in {"roles", "text", "hparams"}},
    )


def _check_pattern(pattern: str, path: Path) -> None:
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"{path}: text.pattern: invalid regex: {exc}") from None
    if not {"name", "value"} <= set(compiled.groupindex):
        raise ConfigError(f"{path}: text.pattern: needs named groups 'name' and 'value'")
