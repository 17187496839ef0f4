"""`shardscope suites check PATH`: a suite file (or a directory of them) dry-run without a
model; one line per problem, exit 1 if there is any."""

from __future__ import annotations

from pathlib import Path

from shardscope.commands.output import console
from shardscope.config.errors import ConfigError, ShardscopeError


def suites_check_command(path: Path) -> int:
    """Load, instantiate and judge every suite at ``path``; the exit code."""
    from shardscope.scaffolds.tasks import load_suite
    from shardscope.scaffolds.tasks.selfcheck import check_suite

    files = sorted(path.glob("*.toml")) if path.is_dir() else [path]
    if not path.exists():
        raise ConfigError(f"{path} does not exist: give a suite file (.toml) or a directory of them")
    if not files:
        raise ConfigError(f"{path} holds no suite files (*.toml)")
    out, failed = console(), 0
    for file in files:
        try:
            suite = load_suite(file)
        except ShardscopeError as exc:
            out.print(f"[red]✗[/red] {exc}", highlight=False, soft_wrap=True)
            failed += 1
            continue
        report = check_suite(suite)
        mark = "[red]✗[/red]" if report.problems else "[green]✓[/green]"
        out.print(f"{mark} {file}: suite {report.suite!r}: {report.tasks} tasks, "
                  f"{report.ablations} ablations instantiated, {report.references} references "
                  f"judged, {len(report.problems)} problems", highlight=False, soft_wrap=True)
        for problem in report.problems:
            out.print(f"    {problem}", highlight=False, markup=False, soft_wrap=True)
        failed += bool(report.problems)
    return 1 if failed else 0
