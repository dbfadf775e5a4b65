"""advisor.toml: optional, validated, errors name the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from advisor.config import load_settings
from advisor.errors import ConfigError
from advisor.model import Direction
from advisor.model import Role
from advisor.model import Severity
from advisor.throttle import ThrottleParams


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "advisor.toml"
    p.write_text(text)
    return p


def test_no_file_gives_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a configuration file every setting has its default."""
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={})
    assert settings.source is None
    assert settings.roles.role("val_loss").role is Role.VAL_LOSS


def test_roles_and_text_pattern(tmp_path: Path) -> None:
    """Role overrides and a text pattern are read and validated."""
    p = write(
        tmp_path,
        '[roles]\n"bleu" = "val_metric:max"\n'
        '[text]\npattern = "(?P<name>\\\\w+)=(?P<value>\\\\S+)"\n',
    )
    settings = load_settings(p, env={})
    assert settings.roles.role("bleu").direction is Direction.MAX
    assert settings.text_pattern == r"(?P<name>\w+)=(?P<value>\S+)"


def test_hparams_overrides(tmp_path: Path) -> None:
    """[[hparams]] tables give known values per run glob."""
    p = write(tmp_path, '[[hparams]]\nruns = "exp/*"\nlr = 0.1\nweight_decay = 0\n')
    (override,) = load_settings(p, env={}).hparams
    assert override.runs == "exp/*"
    assert override.values == {"lr": 0.1, "weight_decay": 0.0}


def test_alerts_and_rule_files(tmp_path: Path) -> None:
    """[alerts] gives the throttle; [rules] files are relative to the configuration."""
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "team.toml").write_text("")
    p = write(
        tmp_path,
        '[alerts]\ncooldown = 60\nmin_severity = "warning"\n'
        '[rules]\nfiles = ["rules/team.toml"]\n',
    )
    settings = load_settings(p, env={})
    assert settings.throttle == ThrottleParams(60.0, Severity.WARNING)
    assert settings.rule_files == (tmp_path / "rules" / "team.toml",)
    assert "alerts" not in settings.sections and "rules" not in settings.sections


def test_env_names_the_file(tmp_path: Path) -> None:
    """ADVISOR_CONFIG names the file when no path is given."""
    p = write(tmp_path, '[roles]\n"x" = "lr"\n')
    assert load_settings(env={"ADVISOR_CONFIG": str(p)}).roles.role("x").role is Role.LR


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[rolez]\n", "unknown section 'rolez'"),
        ('[roles]\n"x" = 3\n', "roles.x: expected a string"),
        ('[roles]\n"x" = "valloss"\n', "roles.x: unknown role 'valloss'"),
        ("[roles\n", "invalid TOML"),
        ('[text]\npattern = "(unclosed"\n', "text.pattern: invalid regex"),
        ('[text]\npattern = "\\\\w+"\n', "needs named groups"),
        ("[[hparams]]\nlr = 0.1\n", "hparams[0].runs: expected a glob"),
        ('[text]\npatern = "x"\n', "text.patern: unknown key"),
        ('text = "x"\n', "[text] must be a table"),
        ("[alerts]\ncooldown = -1\n", "alerts.cooldown: expected a finite number >= 0"),
        ('[rules]\nfile = "team.toml"\n', "rules.file: unknown key"),
        ('[rules]\nfiles = "team.toml"\n', "rules.files: expected a list of rule file paths"),
        ('[rules]\nfiles = ["nothere.toml"]\n', "nothere.toml: no such file"),
    ],
)
def test_bad_config_is_one_line_naming_file_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    """Every configuration error names the file and what is wrong, on one line."""
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(p, env={})
    assert str(info.value).startswith(str(p))
    assert message in str(info.value)
    assert "\n" not in str(info.value)
