"""`shardscope import inspect LOGS...`: Inspect AI eval logs into the store as runs and
episodes (tracer/inspect_log.py maps them), idempotently."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from shardscope.tracer.inspect_log import InspectLogError, convert, read_log, store_rows
from shardscope.tracer.redact import Redactor

import_app = typer.Typer(help="Bring other tools' records into the store: Inspect AI eval logs.",
                         no_args_is_help=True)


def log_files(paths: list[Path]) -> list[Path]:
    """The logs named, a directory standing for the .eval and .json files in it."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in (".eval", ".json"))
            if not found:
                raise InspectLogError(f"{path}: a directory with no .eval or .json logs")
            files += found
        else:
            files.append(path)
    return files


def import_inspect_command(db: Path | None, paths: list[Path]) -> int:
    """Read every log first (a bad one stops the import before anything is written), then
    write each log's spans in one transaction; a log already imported adds nothing."""
    from shardscope.commands.store import open_store

    store = open_store(db)
    store.check_usable()
    logs: list[tuple[Path, Any]] = [(path, read_log(path)) for path in log_files(paths)]
    redactor = Redactor()
    writer_id = f"import-inspect-{os.getpid()}"
    for path, log in logs:
        rows = convert(log, path, redactor)
        written, present = store_rows(store, rows, writer_id)
        samples = len(log.samples or ())
        if written:
            typer.echo(f"{path.name}: {samples} episodes of {log.eval.task} on {log.eval.model} "
                       f"({written} spans) -> run inspect-{log.eval.eval_id}")
        else:
            typer.echo(f"{path.name}: already imported ({present} spans in the store), "
                       "nothing new")
    typer.echo(f"into {store.path}; compare them: shardscope compare -s "
               f"{','.join(sorted({str(log.eval.task) for _, log in logs}))}")
    return 0


@import_app.command("inspect")
def import_inspect(
    logs: Annotated[list[Path], typer.Argument(
        help="Inspect AI logs (.eval or .json), or directories of them.")],
    db: Annotated[Optional[Path], typer.Option(
        "--db", help="Store path (default: setting `db`, else ./shardscope.duckdb).",
        show_default=False)] = None,
) -> None:
    """Import Inspect AI eval logs: every sample x epoch becomes an episode.

    Task -> suite, sample id -> task_id, model, epoch -> seed (epoch - 1), the first
    scorer's value -> score and outcome; each ModelEvent -> a step with its llm_call span
    (messages, tokens, timing, retries), each ToolEvent -> a tool_call span. Importing a log
    again adds nothing. Needs the `inspect` extra (pip install 'shardscope[inspect]').

    Example:

        shardscope import inspect logs/  &&  shardscope compare -s my_task
    """
    raise typer.Exit(import_inspect_command(db, logs))
