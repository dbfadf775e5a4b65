"""The ``advisor`` command: a thin click group over the library."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import IO
from typing import TYPE_CHECKING

import click

from advisor.demo import demo_command
from advisor.e2e_report import e2e_command
from advisor.errors import AdvisorError
from advisor.model import Problem
from advisor.trainer.cli import lr_range_command
from advisor.trainer.cli import train_command

if TYPE_CHECKING:
    import pandas as pd

    from advisor.config import Settings
    from advisor.replay import RunReplay
    from advisor.ruleset import RuleBook

EXIT_USAGE = 2


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="advisor")
def cli() -> None:
    """Watch training logs and say, early and concretely, what to change."""


def _warn(problem: Problem) -> None:
    click.echo(f"advisor: warning: {problem}", err=True)


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv", "table"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option("--config", type=click.Path(path_type=Path), help="advisor.toml to use.")
def scalars(paths: tuple[Path, ...], fmt: str, config: Path | None) -> None:
    """Print every scalar read from PATHS: run, tag, role, step, wall_time, value.

    In JSON Lines, a value that is NaN or infinite is written as the string "NaN",
    "Infinity" or "-Infinity" (strict JSON has no such numbers); an unknown wall time
    is null.
    """
    from advisor.api import load_store
    from advisor.api import to_frame
    from advisor.config import load_settings

    settings = load_settings(config)
    store = load_store(paths, settings, on_problem=_warn)
    frame = to_frame(store, settings)
    _WRITERS[fmt](frame, sys.stdout)


def _rows(frame: pd.DataFrame) -> Iterator[tuple[str, str, str, int, float, float]]:
    return zip(
        frame["run"].astype(str).tolist(),
        frame["tag"].astype(str).tolist(),
        frame["role"].astype(str).tolist(),
        frame["step"].tolist(),
        frame["wall_time"].tolist(),
        frame["value"].tolist(),
        strict=True,
    )


def _json_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _json_number(x: float, *, nan_as_null: bool) -> str:
    if math.isfinite(x):
        return repr(x)
    if math.isnan(x):
        return "null" if nan_as_null else '"NaN"'
    return '"Infinity"' if x > 0 else '"-Infinity"'


def _write_jsonl(frame: pd.DataFrame, out: IO[str]) -> None:
    quoted: dict[str, str] = {}
    for run, tag, role, step, wall, value in _rows(frame):
        q = [quoted.get(s) or quoted.setdefault(s, _json_str(s)) for s in (run, tag, role)]
        out.write(
            f'{{"run": {q[0]}, "tag": {q[1]}, "role": {q[2]}, "step": {step}, '
            f'"wall_time": {_json_number(wall, nan_as_null=True)}, '
            f'"value": {_json_number(value, nan_as_null=False)}}}\n'
        )


def _write_csv(frame: pd.DataFrame, out: IO[str]) -> None:
    frame.to_csv(out, index=False, float_format="%.17g", lineterminator="\n")


def _write_table(frame: pd.DataFrame, out: IO[str]) -> None:
    if frame.empty:
        out.write("no scalars found\n")
        return
    widths = [
        max(len(name), int(frame[name].astype(str).str.len().max())) for name in ("run", "tag")
    ]
    role_width = max(4, int(frame["role"].astype(str).str.len().max()))
    header = (
        f"{'run':<{widths[0]}}  {'tag':<{widths[1]}}  {'role':<{role_width}}  "
        f"{'step':>10}  {'wall_time':>17}  value\n"
    )
    out.write(header)
    for run, tag, role, step, wall, value in _rows(frame):
        out.write(
            f"{run:<{widths[0]}}  {tag:<{widths[1]}}  {role:<{role_width}}  "
            f"{step:>10}  {wall:>17.6f}  {value:.9g}\n"
        )


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--json", "as_json", is_flag=True, help="JSON Lines: alerts, then a summary per run."
)
@click.option("--config", type=click.Path(path_type=Path), help="advisor.toml to use.")
@click.option("--rules", "extra_rules", multiple=True, type=click.Path(path_type=Path),
              help="Extra rule files (same id overrides a built-in rule).")  # fmt: skip
@click.option(
    "--fail-on",
    type=click.Choice(["underfitting", "overfitting", "instability", "healthy", "unknown"]),
    multiple=True,
    help="Exit 1 when a run was alerted for, or ends in, this diagnosis.",
)
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write one PNG per run and an index.html to this directory.")  # fmt: skip
def replay(  # noqa: PLR0917 (click passes every option)
    paths: tuple[Path, ...],
    as_json: bool,
    config: Path | None,
    extra_rules: tuple[Path, ...],
    fail_on: tuple[str, ...],
    report_dir: Path | None,
) -> None:
    """Run the advisor over saved logs, as if live: alerts in order, then a summary."""
    from advisor.alertjson import alert_to_dict
    from advisor.alertjson import dumps
    from advisor.alertjson import summary_to_dict
    from advisor.config import load_settings
    from advisor.replay import replay as run_replay
    from advisor.sinks.text import recommendation_line

    settings = load_settings(config)
    book = _user_rules(settings, extra_rules)
    failed = False
    kept: list[RunReplay] = []
    replayed = 0
    for result in run_replay(paths, settings, book, on_problem=_warn):
        replayed += 1
        if report_dir is not None:
            kept.append(result)
        said = {a.finding.diagnosis.value for a in result.alerts} | {
            result.summary.diagnosis.value
        }
        failed |= bool(said & set(fail_on))
        if as_json:
            for alert in result.alerts:
                click.echo(dumps(alert_to_dict(alert)))
            click.echo(dumps(summary_to_dict(result.summary)))
            continue
        for alert in result.alerts:
            f = alert.finding
            top = alert.recommendations[0] if alert.recommendations else None
            click.echo(
                f"{alert.run}  step {f.step:>8}  {alert.event.value:<8} {f.diagnosis.value:<12} "
                f"{f.severity.value:<8} {alert.rule}: {f.message}"
            )
            if top is not None and alert.event.value != "resolved":
                click.echo(f"{'':>{len(alert.run)}}  -> {recommendation_line(top)}")
        s = result.summary
        click.echo(f"{s.run}  end: {s.diagnosis.value} after {s.points} evaluations "
                   f"(last step {s.last_step})")  # fmt: skip
        for rec in s.recommendations[:3]:
            click.echo(f"{'':>{len(s.run)}}  -> {recommendation_line(rec)}")
    if not replayed:
        where = ", ".join(str(p) for p in paths)
        click.echo(f"advisor: warning: no training log with scalars found in {where}", err=True)
    if report_dir is not None:
        from advisor.report import write_report

        click.echo(f"advisor: report: {write_report(kept, report_dir)}", err=True)
    if failed:
        sys.exit(1)


@cli.command()
@click.argument("roots", nargs=-1, type=click.Path(path_type=Path))
@click.option("--config", type=click.Path(path_type=Path), help="advisor.toml to use.")
@click.option(
    "--poll",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Poll every SECONDS instead of using filesystem events (NFS, mounts).",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Alerts as JSON Lines on stdout (and nothing else there).",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Persist progress, alert states and undelivered alerts here, so that a "
    "restart neither repeats nor misses an alert. Without it, state lives "
    "in memory only and a restart analyses every run afresh.",
)
@click.option("--once", is_flag=True, help="Process what is there, as replay does, and exit.")
@click.option(
    "--check",
    is_flag=True,
    help="Validate the configuration, rules, sinks, roots and state dir, say what would "
    "run, and exit (0, or 2 with the error). Safe beside a running daemon.",
)
@click.option(
    "--min-severity",
    type=click.Choice(["info", "warning", "critical"]),
    help="Ignore findings below this severity.",
)
@click.option("--rules", "extra_rules", multiple=True, type=click.Path(path_type=Path),
              help="Extra rule files (same id overrides a built-in rule).")  # fmt: skip
def watch(  # noqa: PLR0917 (click passes every option)
    roots: tuple[Path, ...],
    config: Path | None,
    poll: float | None,
    as_json: bool,
    state_dir: Path | None,
    once: bool,
    check: bool,
    min_severity: str | None,
    extra_rules: tuple[Path, ...],
) -> None:
    """Watch log ROOTs; alert as findings open, change and resolve.

    Alerts go to the console (stdout), or as JSON Lines to stdout with --json; to Slack
    when $ADVISOR_SLACK_WEBHOOK_URL or $ADVISOR_SLACK_WEBHOOK_FILE is set; to the JSON
    Lines file and webhook of advisor.toml's [sinks]. Status lines go to stderr.
    SIGINT or SIGTERM stops cleanly (a second SIGINT at once).
    """
    from advisor.daemon.app import WatchRequest
    from advisor.daemon.app import run_watch

    request = WatchRequest(roots, config, poll, as_json, state_dir, once, min_severity,
                           extra_rules, check=check)  # fmt: skip
    sys.exit(run_watch(request))


@cli.command()
@click.option(
    "--state-dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The --state-dir of the daemon to ask.",
)
@click.option("--all", "every_run", is_flag=True, help="Every run, not only the alerted.")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines: a line per run, then totals.")
def status(state_dir: Path, every_run: bool, as_json: bool) -> None:
    """What a running (or stopped) daemon knows: its runs, their open alerts, when it
    last wrote its state and what waits in its outboxes. Reads the state directory
    without locking or changing it."""
    import time

    from advisor.alertjson import dumps
    from advisor.daemon.status import read_status
    from advisor.daemon.status import status_dicts
    from advisor.daemon.status import status_lines

    got = read_status(state_dir)
    if as_json:
        for d in status_dicts(got):
            click.echo(dumps(d))
        return
    for line in status_lines(got, time.time(), every_run=every_run):
        click.echo(line)


@cli.group()
def rules() -> None:
    """The rule book: list, explain and validate rules."""


def _user_rules(settings: Settings, extra: tuple[Path, ...]) -> RuleBook:
    """The built-in rules, then advisor.toml's ``[rules] files``, then ``--rules``."""
    from advisor.ruleset import load_rulebook

    return load_rulebook((*settings.rule_files, *extra))


@rules.command("list")
@click.option("--rules", "extra", multiple=True, type=click.Path(path_type=Path),
              help="Extra rule files (same id overrides a built-in rule).")  # fmt: skip
@click.option("--config", type=click.Path(path_type=Path),
              help="advisor.toml whose [rules] files to add.")  # fmt: skip
def rules_list(extra: tuple[Path, ...], config: Path | None) -> None:
    """One line per rule: id, diagnosis, title."""
    from advisor.config import load_settings

    book = _user_rules(load_settings(config), extra)
    for rule in sorted(book.rules.values(), key=lambda r: (r.diagnosis.value, -r.priority, r.id)):
        click.echo(f"{rule.id:<14} {rule.diagnosis.value:<14} {rule.title}")


@rules.command("explain")
@click.argument("rule_id")
@click.option("--rules", "extra", multiple=True, type=click.Path(path_type=Path),
              help="Extra rule files.")  # fmt: skip
@click.option("--config", type=click.Path(path_type=Path),
              help="advisor.toml whose [rules] files to add.")  # fmt: skip
def rules_explain(rule_id: str, extra: tuple[Path, ...], config: Path | None) -> None:
    """Symptom, why, what to do and the source of one rule."""
    from advisor.config import load_settings
    from advisor.errors import InputError

    book = _user_rules(load_settings(config), extra)
    rule = book.rules.get(rule_id) or book.rules.get(rule_id.upper())
    if rule is None:
        raise InputError(f"no rule {rule_id!r} (see 'advisor rules list')")
    click.echo(f"{rule.id}: {rule.title}")
    click.echo(f"diagnosis: {rule.diagnosis.value}")
    if rule.when:
        click.echo("when: " + " and ".join(c.text for c in rule.when))
    click.echo(f"symptom: {rule.symptom}")
    click.echo(f"why: {rule.why}")
    click.echo("what to do:")
    for spec in rule.recommend:
        click.echo(f"  - {spec.action} {spec.param}: {spec.why}")
    click.echo(f"source: {rule.source}")


@rules.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def rules_validate(files: tuple[Path, ...]) -> None:
    """Check rule files; print one line per file, exit 2 on the first error."""
    from advisor.ruleset import load_file

    for path in files:
        found = load_file(path)
        click.echo(f"{path}: {len(found)} rules ok")


# Defined next to what they drive; each imports torch only when it runs.
for _command in (train_command, lr_range_command, demo_command, e2e_command):
    cli.add_command(_command)

_WRITERS: dict[str, Callable[[pd.DataFrame, IO[str]], None]] = {
    "jsonl": _write_jsonl,
    "csv": _write_csv,
    "table": _write_table,
}


def main() -> None:
    """Entry point: every error the user can cause is one line on stderr, exit 2."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("advisor: interrupted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except AdvisorError as exc:
        click.echo(f"advisor: error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    except BrokenPipeError:
        # The reader (e.g. `head`) went away: not an error of ours.
        sys.stderr.close()
        sys.exit(0)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
