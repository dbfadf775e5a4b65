"""Errors the user sees. Each renders as one clear line, never a traceback."""

from __future__ import annotations


class AdvisorError(Exception):
    """Base of every error shown to the user as one line (exit code 2)."""


class InputError(AdvisorError):
    """A path or file the user gave cannot be read or understood."""


class ConfigError(AdvisorError):
    """The configuration (advisor.toml or environment) is invalid."""
