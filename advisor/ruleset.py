"""Rule files: load and validate the rule book (data in ``rules/``).

A rule file is TOML with ``[[rule]]`` tables and optional ``[grids]``::

    [grids]
    weight_decay = [0.0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2]

    [[rule]]
    id = "SMITH-UND-01"
    title = "Still falling: raise the learning rate"
    diagnosis = "underfitting"
    when = ["schedule in ['constant', 'unknown']"]
    priority = 100
    symptom = "..."
    why = "..."
    source = "Smith 2018, sec. 3.2"

    [[rule.recommend]]
    param = "lr"
    action = "raise"
    factor = 3.0
    why = "..."

A condition is ``NAME OP VALUE`` (``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``in``,
``not in``) or ``NAME is known`` / ``NAME is unknown``, where NAME is a context value
(``lr``, ``momentum``, ``weight_decay``, ``batch_size``, ``max_lr``, ``schedule``, or
another known hyper-parameter), ``evidence.KEY``, ``confidence`` or ``severity``.

A recommendation's suggested value is one of: ``factor`` (times ``base``, which is the
current value of the parameter by default, or ``evidence.KEY`` / ``context.NAME``),
``grid`` (the next value of a named grid in the direction of the action), ``value``
(a literal), or none (``stop`` at ``at = "evidence.KEY"``).

Every error names the file, the rule id and the field.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from advisor.config import read_toml
from advisor.errors import ConfigError
from advisor.model import Diagnosis

PARAMS = ("lr", "weight_decay", "batch_size", "momentum", "schedule", "warmup", "epochs",
          "training")  # fmt: skip
ACTIONS = ("raise", "lower", "set", "stop")
# Tried in this order: "<=" before "<", "not in" before "in".
OPS = ("==", "!=", "<=", ">=", "<", ">", "not in", "in", "is known", "is unknown")
_ID = re.compile(r"^[A-Z][A-Z0-9]*(-[A-Z0-9]+)+$")
_COND = re.compile(
    r"^\s*(?P<name>[A-Za-z_][\w.]*)\s+(?P<op>" + "|".join(map(re.escape, OPS)) + r")"
    r"\s*(?P<value>.*?)\s*$"
)
_RULE_KEYS = frozenset({"id", "title", "diagnosis", "when", "priority", "symptom", "why",
                        "source", "recommend"})  # fmt: skip
_REC_KEYS = frozenset({"param", "action", "factor", "base", "grid", "value", "at", "why"})
# Shipped inside the package (the top-level rules/ is a link to it).
BUILTIN_DIR = Path(__file__).resolve().parent / "rules"


@dataclass(frozen=True, slots=True)
class Condition:
    """One parsed ``when`` condition."""

    name: str
    op: str
    value: Any
    text: str


@dataclass(frozen=True, slots=True)
class RecommendSpec:
    """How a rule computes one recommendation."""

    param: str
    action: str
    why: str
    factor: float | None = None
    base: str = "current"
    grid: tuple[float, ...] | None = None
    value: float | str | None = None
    at: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of the book."""

    id: str
    title: str
    diagnosis: Diagnosis
    when: tuple[Condition, ...]
    priority: int
    symptom: str
    why: str
    source: str
    recommend: tuple[RecommendSpec, ...]
    file: str


@dataclass(frozen=True, slots=True)
class RuleBook:
    """Rules by id; user files add rules or override built-in ones with the same id."""

    rules: Mapping[str, Rule]

    def for_diagnosis(self, diagnosis: Diagnosis) -> list[Rule]:
        """The rules of one diagnosis, highest priority first."""
        found = [r for r in self.rules.values() if r.diagnosis is diagnosis]
        return sorted(found, key=lambda r: (-r.priority, r.id))


def load_rulebook(extra: Sequence[Path] = (), builtin: Path | None = BUILTIN_DIR) -> RuleBook:
    """The built-in rules, then the user's files (same id: the user's rule wins).

    Raises:
        ConfigError: naming the file, the rule id and the field.
    """
    files = sorted(builtin.glob("*.toml")) if builtin is not None and builtin.is_dir() else []
    rules: dict[str, Rule] = {}
    for path in files:
        for rule in load_file(path):
            if rule.id in rules:
                raise ConfigError(f"{path}: rule {rule.id}: id also in {rules[rule.id].file}")
            rules[rule.id] = rule
    for path in extra:
        for rule in load_file(path):
            rules[rule.id] = rule
    return RuleBook(rules)


def load_file(path: Path) -> list[Rule]:
    """Parse and validate one rule file."""
    data = read_toml(path)
    unknown = sorted(set(data) - {"rule", "grids"})
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key {unknown[0]!r} (rule, grids)")
    grids = _grids(data.get("grids", {}), path)
    raw_rules = data.get("rule", [])
    if not isinstance(raw_rules, list) or not raw_rules:
        raise ConfigError(f"{path}: no [[rule]] tables")
    out: list[Rule] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_rules):
        rule = _rule(raw, grids, path, i)
        if rule.id in seen:
            raise ConfigError(f"{path}: rule {rule.id}: duplicate id")
        seen.add(rule.id)
        out.append(rule)
    return out


def _grids(raw: Any, path: Path) -> dict[str, tuple[float, ...]]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: grids: expected a table of name = [numbers]")
    out = {}
    for name, values in raw.items():
        if not (
            isinstance(values, list)
            and len(values) >= 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        ):
            raise ConfigError(f"{path}: grids.{name}: expected a list of at least two numbers")
        out[name] = tuple(sorted(float(v) for v in values))
    return out


def _rule(raw: Any, grids: Mapping[str, tuple[float, ...]], path: Path, i: int) -> Rule:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: rule #{i + 1}: expected a table")
    rid = raw.get("id")
    if not isinstance(rid, str) or not _ID.match(rid):
        raise ConfigError(f"{path}: rule #{i + 1}: id: expected an id like 'SMITH-OVF-01'")
    where = f"{path}: rule {rid}"
    unknown = sorted(set(raw) - _RULE_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown field {unknown[0]!r}")
    text = {k: _text(raw, k, where) for k in ("title", "symptom", "why", "source")}
    try:
        diagnosis = Diagnosis(raw.get("diagnosis"))
    except ValueError:
        choices = ", ".join(d.value for d in Diagnosis)
        raise ConfigError(f"{where}: diagnosis: expected one of {choices}") from None
    priority = raw.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise ConfigError(f"{where}: priority: expected an integer")
    when_raw = raw.get("when", [])
    if not isinstance(when_raw, list) or not all(isinstance(c, str) for c in when_raw):
        raise ConfigError(f"{where}: when: expected a list of condition strings")
    when = tuple(parse_condition(c, f"{where}: when") for c in when_raw)
    recs_raw = raw.get("recommend", [])
    if not isinstance(recs_raw, list) or not recs_raw:
        raise ConfigError(f"{where}: recommend: expected at least one [[rule.recommend]]")
    recommend = tuple(_recommend(r, grids, f"{where}: recommend[{j}]")
                      for j, r in enumerate(recs_raw))  # fmt: skip
    return Rule(rid, text["title"], diagnosis, when, priority, text["symptom"], text["why"],
                text["source"], recommend, str(path))  # fmt: skip


def _text(raw: Mapping[str, Any], key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: {key}: expected a non-empty string")
    return value.strip()


def parse_condition(text: str, where: str) -> Condition:
    """Parse ``NAME OP VALUE``.

    Raises:
        ConfigError: naming ``where`` and the condition.
    """
    m = _COND.match(text)
    if m is None:
        raise ConfigError(f"{where}: cannot parse {text!r} (expected NAME OP VALUE)")
    name, op, value_text = m["name"], m["op"], m["value"]
    if op in ("is known", "is unknown"):
        if value_text:
            raise ConfigError(f"{where}: {text!r}: nothing may follow {op!r}")
        return Condition(name, op, None, text)
    try:
        value = ast.literal_eval(value_text)
    except (ValueError, SyntaxError):
        raise ConfigError(f"{where}: {text!r}: {value_text!r} is not a literal") from None
    if op in ("in", "not in"):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: {text!r}: {op!r} needs a list")
        value = tuple(value)
    elif not isinstance(value, int | float | str | bool):
        raise ConfigError(f"{where}: {text!r}: expected a number, string or boolean")
    return Condition(name, op, value, text)


def _recommend(raw: Any, grids: Mapping[str, tuple[float, ...]], where: str) -> RecommendSpec:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a table")
    unknown = sorted(set(raw) - _REC_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown field {unknown[0]!r}")
    param, action = raw.get("param"), raw.get("action")
    if param not in PARAMS:
        raise ConfigError(f"{where}: param: expected one of {', '.join(PARAMS)}")
    if action not in ACTIONS:
        raise ConfigError(f"{where}: action: expected one of {', '.join(ACTIONS)}")
    why = _text(raw, "why", where)
    factor = raw.get("factor")
    if factor is not None and (not isinstance(factor, int | float) or isinstance(factor, bool)
                               or factor <= 0):  # fmt: skip
        raise ConfigError(f"{where}: factor: expected a positive number")
    base = raw.get("base", "current")
    if not isinstance(base, str) or not (
        base == "current" or base.startswith(("evidence.", "context."))
    ):
        raise ConfigError(f"{where}: base: expected 'current', 'evidence.KEY' or 'context.NAME'")
    grid_name = raw.get("grid")
    grid = None
    if grid_name is not None:
        if grid_name not in grids:
            raise ConfigError(f"{where}: grid: no grid {grid_name!r} in this file's [grids]")
        grid = grids[grid_name]
    value = raw.get("value")
    if value is not None and not isinstance(value, int | float | str):
        raise ConfigError(f"{where}: value: expected a number or string")
    at = raw.get("at")
    if at is not None and (not isinstance(at, str) or not at.startswith("evidence.")):
        raise ConfigError(f"{where}: at: expected 'evidence.KEY'")
    chosen = [k for k in ("factor", "grid", "value") if raw.get(k) is not None]
    if len(chosen) > 1:
        raise ConfigError(f"{where}: give only one of factor, grid, value (got {chosen})")
    if action in ("raise", "lower") and grid is not None and param not in (
        "weight_decay", "momentum", "batch_size", "lr"):  # fmt: skip
        raise ConfigError(f"{where}: grid: not meaningful for {param!r}")
    if action == "raise" and factor is not None and factor <= 1:
        raise ConfigError(f"{where}: factor: 'raise' needs a factor above 1")
    if action == "lower" and factor is not None and factor >= 1 and base == "current":
        raise ConfigError(f"{where}: factor: 'lower' needs a factor below 1")
    return RecommendSpec(param, action, why, None if factor is None else float(factor), base,
                         grid, value, at)  # fmt: skip
