"""The rule book: one case file per rule, run by one parametrised test; malformed files."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from advisor.engine import advise
from advisor.errors import ConfigError
from advisor.hparams import Context
from advisor.hparams import Schedule
from advisor.model import Diagnosis
from advisor.model import Finding
from advisor.model import Severity
from advisor.ruleset import load_file
from advisor.ruleset import load_rulebook

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

CASES = Path(__file__).parent / "rule_cases"
BAD = Path(__file__).parent / "bad_rules"
BOOK = load_rulebook()


def _cases() -> list[Any]:
    out = []
    for path in sorted(CASES.glob("*.toml")):
        for case in tomllib.loads(path.read_text())["case"]:
            out.append(pytest.param(path.stem, case, id=f"{path.stem}: {case['name']}"))
    return out


def _none(x: Any) -> Any:
    return None if x == "none" else x


@pytest.mark.parametrize(("rule_id", "case"), _cases())
def test_rule_case(rule_id: str, case: dict[str, Any]) -> None:
    """A finding and a context give exactly the expected ranked recommendations."""
    finding = Finding(
        Diagnosis(case["diagnosis"]), Severity(case.get("severity", "warning")), 0.9, 100, "",
        {k: float(v) for k, v in case.get("evidence", {}).items()},
    )  # fmt: skip
    ctx_raw = dict(case.get("context", {}))
    schedule = Schedule(ctx_raw.pop("schedule", "unknown"))
    ctx = Context(schedule=schedule, **{k: float(v) for k, v in ctx_raw.items()})
    advice = advise(BOOK, finding, ctx)
    assert rule_id in advice.rules
    if "rules" in case:
        assert list(advice.rules) == case["rules"]
    if "top_rule" in case:
        assert advice.top_rule == case["top_rule"]
    got = [
        {"param": r.param, "action": r.action, "current": r.current, "suggested": r.suggested,
         **({"factor": r.factor} if "factor" in want else {})}
        for r, want in zip(advice.recommendations, case["expect"], strict=False)
    ]  # fmt: skip
    want = [{k: _none(v) for k, v in w.items()} for w in case["expect"]]
    assert got == want
    assert len(advice.recommendations) == len(case["expect"])
    assert all(r.source and r.why for r in advice.recommendations)


def test_every_rule_has_a_case_file() -> None:
    """No rule ships untested, and no case file names a rule that does not exist."""
    assert {p.stem for p in CASES.glob("*.toml")} == set(BOOK.rules)


def test_user_file_overrides_and_adds(tmp_path: Path) -> None:
    """A user's rule with a built-in id replaces it; a new id is added."""
    user = tmp_path / "mine.toml"
    user.write_text(
        '[[rule]]\nid = "SMITH-OVF-01"\ntitle = "t"\ndiagnosis = "overfitting"\n'
        'symptom = "s"\nwhy = "w"\nsource = "me"\npriority = 1000\n'
        '[[rule.recommend]]\nparam = "training"\naction = "stop"\nwhy = "stop now"\n'
        '[[rule]]\nid = "TEAM-OVF-01"\ntitle = "t"\ndiagnosis = "overfitting"\n'
        'symptom = "s"\nwhy = "w"\nsource = "us"\n'
        '[[rule.recommend]]\nparam = "batch_size"\naction = "lower"\nfactor = 0.5\nwhy = "x"\n'
    )
    book = load_rulebook([user])
    assert book.rules["SMITH-OVF-01"].source == "me"
    assert "TEAM-OVF-01" in book.rules
    assert len(book.rules) == len(BOOK.rules) + 1


def _bad_cases() -> list[Any]:
    return [pytest.param(p, id=p.stem) for p in sorted(BAD.glob("*.toml"))]


@pytest.mark.parametrize("path", _bad_cases())
def test_malformed_rule_file(path: Path) -> None:
    """Each malformed file fails with one line naming the file, the rule and the field."""
    expected = path.read_text().splitlines()[0].removeprefix("# expect: ").strip()
    with pytest.raises(ConfigError) as info:
        load_file(path)
    message = str(info.value)
    assert message.startswith(str(path))
    assert expected in message, message
    assert "\n" not in message
