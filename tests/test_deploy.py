"""deploy/: the example configuration, the systemd unit, the container image and the
Kubernetes manifests, each checked against the advisor it starts.

No container engine or cluster runs here: the image's and the pod's command lines are
run as ``advisor`` itself, with their paths mapped onto temporary directories; the
manifests are validated against Kubernetes' own schemas (kubernetes-validate), and
rendered by ``kubectl kustomize`` and the unit checked by ``systemd-analyze verify``
where those tools are installed.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import tomllib
import yaml

from advisor.config import _ALERT_KEYS
from advisor.config import _RULE_KEYS
from advisor.config import _TEXT_KEYS
from advisor.config import load_settings
from advisor.daemon.settings import _SINK_KEYS
from advisor.daemon.settings import _WATCH_KEYS
from advisor.daemon.settings import WatchConfig
from advisor.daemon.settings import watch_config
from advisor.throttle import ThrottleParams

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
RUN = REPO / "fixtures" / "scenarios" / "tune" / "overfit_00"


def advisor(
    args: list[str], env: Mapping[str, str] | None = None, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    """``advisor ARGS`` in a subprocess with only ``env`` of the ADVISOR_* variables."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("ADVISOR_")}
    return subprocess.run(
        [sys.executable, "-m", "advisor.cli", *args],
        capture_output=True, text=True, timeout=120, check=False, cwd=cwd,
        env=base | dict(env or {}),
    )  # fmt: skip


def mapped(words: list[str], paths: Mapping[str, Path]) -> list[str]:
    """``words`` with a path in ``paths``, or a path under it, replaced (the longest)."""

    def one(word: str) -> str:
        for old in sorted(paths, key=len, reverse=True):
            if word == old or word.startswith(old + "/"):
                return str(paths[old]) + word[len(old) :]
        return word

    return [one(w) for w in words]


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    """A runs directory holding one finished run that opens an overfitting alert."""
    shutil.copytree(RUN, tmp_path / "runs" / RUN.name)
    return tmp_path / "runs"


# --- advisor.toml ----------------------------------------------------------------------

EXAMPLE = re.compile(r'^# (\[\[?[\w.]+\]\]?.*|[\w"*/.]+ *= .*)$')


def uncommented(text: str) -> str:
    """The example configuration with every example line (``# key = value``, ``# [table]``)
    made live."""
    return "\n".join(EXAMPLE.sub(r"\1", line) for line in text.splitlines()) + "\n"


def test_example_config_changes_no_default() -> None:
    """As shipped, deploy/advisor.toml is valid and only documents: every setting is the
    default, so each deployment's behaviour is what its command line says."""
    settings = load_settings(DEPLOY / "advisor.toml", env={})
    assert watch_config(settings) == WatchConfig()
    assert settings.throttle == ThrottleParams()
    assert settings.rule_files == () and settings.hparams == () and not settings.text_pattern


def test_every_example_line_is_valid_and_every_key_is_shown(tmp_path: Path) -> None:
    """Uncommented, the examples load (each value is valid), and they name every key the
    configuration knows, so the file cannot fall behind a new setting unnoticed."""
    text = uncommented((DEPLOY / "advisor.toml").read_text())
    (tmp_path / "advisor.toml").write_text(text)
    (tmp_path / "team-rules.toml").write_text("")
    settings = load_settings(tmp_path / "advisor.toml", env={})
    cfg = watch_config(settings)
    assert cfg.poll == 10.0 and cfg.sinks.webhook_url is not None
    assert settings.rule_files == (tmp_path / "team-rules.toml",)
    assert settings.hparams and settings.text_pattern
    data = tomllib.loads(text)
    shown = {
        "watch": _WATCH_KEYS,
        "alerts": _ALERT_KEYS,
        "rules": _RULE_KEYS,
        "text": _TEXT_KEYS,
        **{f"sinks.{name}": keys for name, keys in _SINK_KEYS.items()},
    }
    for table, keys in shown.items():
        got = data
        for part in table.split("."):
            got = got[part]
        assert set(got) == keys, table
    assert data["roles"] and data["hparams"]


# --- systemd ---------------------------------------------------------------------------


def unit_entries(path: Path) -> dict[str, list[str]]:
    """``Key`` → values, over all sections (systemd lets a key repeat)."""
    out: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_systemd_unit_starts_the_advisor_it_names(runs: Path, tmp_path: Path) -> None:
    """ExecStart, with the unit's state directory and credentials where systemd puts
    them, is a valid ``advisor watch`` whose Slack webhook comes from the credential."""
    unit = unit_entries(DEPLOY / "advisor.service")
    (exec_start,) = unit["ExecStart"]
    words = shlex.split(exec_start)
    assert Path(words[0]).name == "advisor" and words[1] == "watch"
    creds = tmp_path / "credentials"
    creds.mkdir()
    (name, source), *_ = (c.split(":", 1) for c in unit["LoadCredential"])
    assert source.startswith("/etc/")
    (creds / name).write_text("https://hooks.slack.com/services/T0/B0/x\n")
    env = {}
    for assignment in unit["Environment"]:
        key, value = assignment.split("=", 1)
        env[key] = value.replace("%d", str(creds))
    words = [w.replace("${STATE_DIRECTORY}", str(tmp_path / "state")) for w in words]
    words = mapped(words[2:], {"/srv/runs": runs, "/etc/advisor": DEPLOY})
    got = advisor(["watch", "--check", *words], env)
    assert got.returncode == 0, got.stderr
    assert f"{DEPLOY / 'advisor.toml'}: OK" in got.stderr
    assert "to console, slack" in got.stderr
    assert f"would watch {runs} (filesystem events" in got.stderr
    assert unit["StateDirectory"] == ["advisor"]
    assert unit["RestartPreventExitStatus"] == ["2"]  # a bad configuration exits 2


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_unit_verifies_clean(tmp_path: Path) -> None:
    """``systemd-analyze verify`` finds nothing to say (an unknown key is only a warning
    there, so any output fails), with ExecStart pointing at this advisor."""
    unit = (DEPLOY / "advisor.service").read_text()
    here = Path(sys.executable).parent / "advisor"
    assert here.is_file()
    unit = re.sub(r"^ExecStart=\S+", f"ExecStart={here}", unit, flags=re.M)
    (tmp_path / "advisor.service").write_text(unit)
    got = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "advisor.service")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert got.returncode == 0 and got.stdout + got.stderr == "", got.stdout + got.stderr


# --- container -------------------------------------------------------------------------


def stages() -> list[dict[str, list[str]]]:
    """Per build stage of deploy/Dockerfile: instruction → arguments (continuations
    joined)."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    out: list[dict[str, list[str]]] = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word == "FROM":
            out.append({})
        out[-1].setdefault(word, []).append(rest.strip())
    return out


def dockerfile() -> dict[str, list[str]]:
    """The final stage (the image)."""
    return stages()[-1]


def context_copies() -> list[str]:
    """The COPY instructions of every stage that read the build context."""
    return [c for st in stages() for c in st.get("COPY", []) if not c.startswith("--from")]


def image_env(df: dict[str, list[str]]) -> dict[str, str]:
    return dict(w.split("=", 1) for line in df["ENV"] for w in shlex.split(line))


def image_command(df: dict[str, list[str]]) -> list[str]:
    (entry,) = df["ENTRYPOINT"]
    words: list[str] = json.loads(entry)
    assert words[:2] == ["advisor", "watch"] and "CMD" not in df
    return words[2:]


def image_files(df: dict[str, list[str]]) -> dict[str, Path]:
    """Files the final stage copies from the build context: image path → source."""
    out = {}
    for args in df["COPY"]:
        if not args.startswith("--from"):
            src, dst = args.split()
            out[dst] = REPO / src
    return out


def test_container_command_runs_the_advisor(runs: Path, tmp_path: Path) -> None:
    """The image's ENTRYPOINT, with its volumes mapped and its ADVISOR_CONFIG (the copied
    deploy/advisor.toml), reads the runs and alerts on stdout."""
    df = dockerfile()
    env = image_env(df)
    files = image_files(df)
    config = files[env["ADVISOR_CONFIG"]]
    assert config == DEPLOY / "advisor.toml"
    words = mapped(image_command(df), {"/runs": runs, "/state": tmp_path / "state"})
    got = advisor(["watch", *words, "--once"], {"ADVISOR_CONFIG": str(config)})
    assert got.returncode == 0, got.stderr
    assert f"OVERFITTING opened  {RUN.name}" in got.stdout
    assert (tmp_path / "state" / "state.json").is_file()
    volumes = {v for line in df["VOLUME"] for v in json.loads(line)}
    assert {"/state"} <= volumes and "/runs" in image_command(df)


def test_image_build_stage_builds_the_wheel(tmp_path: Path) -> None:
    """The files the build stage copies, and nothing else, build the wheel without a
    warning (setuptools turns its deprecations into errors later), with the rules and
    the licence in it."""
    import zipfile

    context = tmp_path / "src"
    context.mkdir()
    for copy in stages()[0]["COPY"]:
        *sources, dest = copy.split()
        for src in sources:
            target = context / dest / Path(src).name if dest.endswith("/") else context / dest
            if (REPO / src).is_dir():
                shutil.copytree(REPO / src, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(REPO / src, target)
    got = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path / "w"), "."],
        capture_output=True, text=True, timeout=300, check=False, cwd=context,
    )  # fmt: skip
    assert got.returncode == 0, got.stderr
    # Python warning classes (setuptools' BuildBackendWarning ...), not pip's "WARNING:".
    assert "Warning" not in got.stdout + got.stderr, got.stdout + got.stderr
    (wheel,) = (tmp_path / "w").glob("advisor-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "advisor/rules/smith2018.toml" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore leaves ``path`` out of the build context (the last matching
    pattern decides; a pattern matches a path or any directory above it)."""
    out = False
    parts = path.split("/")
    for pattern in patterns:
        keep = pattern.startswith("!")
        pat = pattern.removeprefix("!").rstrip("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(
            fnmatch.fnmatch(p, pat) or fnmatch.fnmatch(p, pat.removeprefix("**/"))
            for p in prefixes
        ):
            out = not keep
    return out


def test_dockerignore_sends_what_the_image_copies_and_nothing_else() -> None:
    """Every file the Dockerfile copies is in the build context; the checkout's virtual
    environment, fixtures and tests are not (a context of gigabytes)."""
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = [src for line in context_copies() for src in line.split()[:-1]]
    for src in copied:
        top = REPO / src
        files = [top] if top.is_file() else [p for p in top.rglob("*") if p.is_file()]
        for f in files:
            rel = f.relative_to(REPO).as_posix()
            if "__pycache__" not in rel:
                assert not ignored(rel, patterns), rel
    for rel in (".venv/bin/python", "fixtures/README.md", "tests/test_deploy.py", ".git/HEAD"):
        assert ignored(rel, patterns), rel


# --- Kubernetes ------------------------------------------------------------------------


def manifests() -> list[dict[str, Any]]:
    """kubernetes.yaml and the ConfigMap kustomization.yaml generates from advisor.toml."""
    kust = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    docs = []
    for res in kust["resources"]:
        docs += [d for d in yaml.safe_load_all((DEPLOY / res).read_text()) if d]
    for gen in kust["configMapGenerator"]:
        data = {f: (DEPLOY / f).read_text() for f in gen["files"]}
        docs.append({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": gen["name"]}, "data": data})  # fmt: skip
    return docs


@pytest.mark.parametrize("which", [0, -1], ids=["oldest", "newest"])
def test_manifests_are_valid_kubernetes(which: int) -> None:
    """Each object passes Kubernetes' schema, strictly (an unknown or misspelt field
    fails), for the oldest and the newest version kubernetes-validate knows."""
    from kubernetes_validate.utils import all_versions
    from kubernetes_validate.utils import validate

    version = sorted(all_versions(), key=lambda v: tuple(map(int, v.split("."))))[which]
    kinds = []
    for doc in manifests():
        validate(doc, version, strict=True)
        kinds.append(doc["kind"])
    assert sorted(kinds) == ["ConfigMap", "Deployment", "PersistentVolumeClaim"]


def test_pod_runs_the_image_command_on_its_mounts(runs: Path, tmp_path: Path) -> None:
    """The pod's args after the image's ENTRYPOINT, with the volumes mounted where the
    container mounts them and ADVISOR_CONFIG in the ConfigMap's mount, are a valid watch;
    it runs as the image's user, which owns the state volume (fsGroup)."""
    docs = {d["kind"]: d for d in manifests()}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (box,) = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts: dict[str, Path] = {}
    for m in box["volumeMounts"]:
        vol = volumes[m["name"]]
        if "configMap" in vol:
            assert vol["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"]
            where = tmp_path / "config"
            where.mkdir()
            for key, text in docs["ConfigMap"]["data"].items():
                (where / key).write_text(text)
        elif vol.get("persistentVolumeClaim", {}).get("claimName") == "training-runs":
            assert m["readOnly"] is True
            where = runs
        else:
            where = tmp_path / m["name"]
        mounts[m["mountPath"]] = where
    env = {e["name"]: e["value"] for e in box["env"] if "value" in e}
    env = {k: mapped([v], mounts)[0] for k, v in env.items()}
    df = dockerfile()
    words = mapped([*image_command(df), *box["args"]], mounts)
    got = advisor(["watch", "--check", *words], env)
    assert got.returncode == 0, got.stderr
    assert f"{tmp_path / 'config' / 'advisor.toml'}: OK" in got.stderr
    assert f"would watch {runs} (polling every 10 s" in got.stderr
    uid, gid = df["USER"][0].split(":")
    ctx = pod["securityContext"]
    assert (ctx["runAsUser"], ctx["runAsGroup"], ctx["fsGroup"]) == (int(uid), int(gid), int(gid))
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for v in pod["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert docs["PersistentVolumeClaim"]["metadata"]["name"] in claims


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="no kubectl")
def test_kustomize_renders_the_config_map_into_the_pod() -> None:
    """``kubectl kustomize deploy/`` (offline) gives the ConfigMap a hashed name, so that
    a changed advisor.toml rolls out a new pod, and the Deployment follows that name."""
    got = subprocess.run(
        ["kubectl", "kustomize", str(DEPLOY)], capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert got.returncode == 0, got.stderr
    docs = {d["kind"]: d for d in yaml.safe_load_all(got.stdout) if d}
    name = docs["ConfigMap"]["metadata"]["name"]
    assert re.fullmatch(r"advisor-config-[a-z0-9]{10}", name)
    assert docs["ConfigMap"]["data"]["advisor.toml"] == (DEPLOY / "advisor.toml").read_text()
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    assert {"name": name} == next(v["configMap"] for v in pod["volumes"] if "configMap" in v)


# --- without the trainer extra ---------------------------------------------------------

BLOCK = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torch", "tensorboard", "tensorboardX", "sklearn", "mnist1d"}:
            raise ImportError(f"{name} is not installed (the trainer extra)")
        return None
sys.meta_path.insert(0, Block())
from advisor.cli import main
sys.argv = ["advisor", *sys.argv[1:]]
main()
"""


def test_watch_and_replay_need_no_trainer_extra(tmp_path: Path) -> None:
    """The image installs the advisor without its ``trainer`` extra: watching and
    replaying every format, TensorBoard event files included, imports none of it."""
    paths = [str(REPO / "fixtures" / d) for d in ("tb", "csv", "hf", "wandb", "text")]
    for args in (
        ["watch", "--once", "--json", "--state-dir", str(tmp_path)],
        ["replay", "--json"],
    ):
        got = subprocess.run(
            [sys.executable, "-c", BLOCK, *args, *paths],
            capture_output=True, text=True, timeout=300, check=False, cwd=REPO,
        )  # fmt: skip
        assert got.returncode == 0, got.stderr
        lines = [json.loads(line) for line in got.stdout.splitlines()]
        assert any(d["type"] == "alert" for d in lines)
        assert "not installed" not in got.stderr
