"""The rules engine: a finding and a run's context in, ranked recommendations out. Pure."""

from __future__ import annotations

import math
from dataclasses import dataclass

from advisor.hparams import Context
from advisor.model import Finding
from advisor.model import Recommendation
from advisor.ruleset import Condition
from advisor.ruleset import RecommendSpec
from advisor.ruleset import Rule
from advisor.ruleset import RuleBook


@dataclass(frozen=True, slots=True)
class Advice:
    """The rules that matched a finding, best first, with their recommendations.

    Attributes:
        rules: the ids of the matching rules, highest priority first.
        recommendations: their recommendations in that order, without repeats.
    """

    rules: tuple[str, ...]
    recommendations: tuple[Recommendation, ...]

    @property
    def top_rule(self) -> str | None:
        """The id of the highest-priority matching rule."""
        return self.rules[0] if self.rules else None


def advise(book: RuleBook, finding: Finding, ctx: Context) -> Advice:
    """Every rule for the finding's diagnosis whose conditions hold, ranked."""
    matched: list[Rule] = []
    recs: list[Recommendation] = []
    seen: set[str] = set()
    for rule in book.for_diagnosis(finding.diagnosis):
        if not all(holds(c, finding, ctx) for c in rule.when):
            continue
        made = [r for r in (compute(spec, rule, finding, ctx) for spec in rule.recommend) if r]
        if not made:
            continue
        matched.append(rule)
        for rec in made:
            # A higher-priority rule already said what to do with this parameter.
            if rec.param not in seen:
                seen.add(rec.param)
                recs.append(rec)
    return Advice(tuple(r.id for r in matched), tuple(recs))


def lookup(name: str, finding: Finding, ctx: Context) -> float | str | bool | None:
    """The value a condition or a base names, or None when unknown."""
    if name.startswith("evidence."):
        value = finding.evidence.get(name.removeprefix("evidence."))
        return None if value is None or (isinstance(value, float) and math.isnan(value)) else value
    if name == "confidence":
        return finding.confidence
    if name == "severity":
        return finding.severity.value
    return ctx.get(name.removeprefix("context."))


def holds(cond: Condition, finding: Finding, ctx: Context) -> bool:
    """Whether a condition holds; a condition on an unknown value does not."""
    value = lookup(cond.name, finding, ctx)
    if cond.op == "is known":
        return value is not None
    if cond.op == "is unknown":
        return value is None
    if value is None:
        return False
    if cond.op == "in":
        return value in cond.value
    if cond.op == "not in":
        return value not in cond.value
    if cond.op in ("==", "!="):
        return (value == cond.value) is (cond.op == "==")
    if isinstance(value, str) or isinstance(cond.value, str):
        return False
    left, right = float(value), float(cond.value)
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[
        cond.op
    ]


def _round(x: float) -> float:
    """Three significant figures: a recommendation is a setting, not a measurement."""
    return float(f"{x:.3g}")


def _next_on_grid(grid: tuple[float, ...], current: float, action: str) -> float | None:
    tolerance = 1e-9 + 1e-3 * abs(current)
    if action == "raise":
        higher = [g for g in grid if g > current + tolerance]
        return higher[0] if higher else None
    lower = [g for g in grid if g < current - tolerance]
    return lower[-1] if lower else None


def compute(
    spec: RecommendSpec, rule: Rule, finding: Finding, ctx: Context
) -> Recommendation | None:
    """One recommendation, or None when its inputs are missing or it cannot apply."""
    raw_current = ctx.get(spec.param)
    current = raw_current if isinstance(raw_current, float | str) else None
    numeric = current if isinstance(current, float) else None
    suggested: float | str | None = None
    factor: float | None = None
    if spec.action == "stop":
        if spec.at is not None:
            at = lookup(spec.at, finding, ctx)
            if not isinstance(at, int | float):
                return None
            suggested = float(at)
    elif spec.grid is not None:
        if numeric is not None:
            suggested = _next_on_grid(spec.grid, numeric, spec.action)
            if suggested is None:
                return None
            factor = suggested / numeric if numeric else None
        else:
            factor = 10.0 if spec.action == "raise" else 0.1
    elif spec.factor is not None:
        factor = spec.factor
        base = numeric if spec.base == "current" else lookup(spec.base, finding, ctx)
        if not isinstance(base, int | float):
            if spec.base.startswith("evidence."):
                return None
            # An unknown context base (no LR logged) falls back to a relative change.
            base = numeric
        if isinstance(base, int | float):
            suggested = _round(float(base) * spec.factor)
            if numeric:
                factor = _round(suggested / numeric)
    elif spec.value is not None:
        suggested = spec.value
        if isinstance(spec.value, int | float):
            suggested = float(spec.value)
    # A value that would not move the setting the way the rule says is no advice.
    if (
        numeric is not None
        and isinstance(suggested, float)
        and not _moves(numeric, suggested, spec.action)
    ):
        return None
    return Recommendation(spec.param, spec.action, current, suggested, spec.why, rule.source,
                          factor)  # fmt: skip


def _moves(current: float, suggested: float, action: str) -> bool:
    if action == "raise":
        return suggested > current
    if action == "lower":
        return suggested < current
    return True
