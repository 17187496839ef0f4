"""The ``shardscope`` command line. Each command is a thin layer over library functions."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from shardscope import __version__
from shardscope.config.errors import ShardscopeError

if TYPE_CHECKING:
    from shardscope.commands.run import MatrixOptions
    from shardscope.tracer.store import Store

app = typer.Typer(
    name="shardscope",
    help=(
        "Trace identical agent scaffolds over interchangeable LLMs into DuckDB, and compare how "
        "each model uses the pieces ('shards') of the same task.\n\n"
        "Start with `shardscope demo`, then `shardscope ui` or `shardscope query`."
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

DbOption = Annotated[
    Optional[Path],
    typer.Option(
        "--db",
        help="Store path (a DuckDB file, or a Parquet lake directory for reading). Default: setting `db` (SHARDSCOPE_DB, shardscope.toml), "
        "else ./shardscope.duckdb.",
        show_default=False,
    ),
]


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def _store(db: Path | None) -> Store:
    from shardscope.commands.store import open_store

    return open_store(db)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"shardscope {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """shardscope command line."""


@app.command()
def query(
    sql: Annotated[
        Optional[str],
        typer.Argument(help="SQL to run read-only against the store; '-' reads it from stdin."),
    ] = None,
    db: DbOption = None,
    output: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="Output format.")
    ] = OutputFormat.table,
    schema: Annotated[
        bool, typer.Option("--schema", help="List the views and tables with their columns.")
    ] = False,
    file: Annotated[
        Optional[Path], typer.Option("--file", help="Read the SQL from this file.", exists=True)
    ] = None,
    max_rows: Annotated[
        Optional[int],
        typer.Option("--max-rows", min=1, help="Stop after this many rows (table format: 200)."),
    ] = None,
) -> None:
    """Query the store with SQL, safely, even while runs are writing to it.

    The connection is read-only and cannot touch other files. Views to start with:
    `episodes`, `steps`, `llm_calls`, `tool_calls`, `messages`, `token_events`, `runs`.

    Examples:

        shardscope query "SELECT model, avg(score) FROM episodes GROUP BY model"

        shardscope query --format csv "SELECT * FROM tool_calls" > tools.csv

        shardscope query --schema
    """
    from shardscope.commands.store import QueryOptions, query_command

    options = QueryOptions(sql, file, output.value, schema, max_rows)
    raise typer.Exit(query_command(_store(db), options))


@app.command()
def status(
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show the store: schema version, counts, every writer's pipeline counters, and any
    lost, dropped or spilled spans."""
    from shardscope.commands.store import status_command

    raise typer.Exit(status_command(_store(db), as_json=as_json))

ListOption = Optional[list[str]]
# Matrix options shared by `run` and `ablate`.
SuitesOption = Annotated[ListOption, typer.Option("--suite", "-s", help="Task suite(s): arithmetic, docs, village, bugfix, planted (or your own, setting `suites_dir`); repeat or comma-separate.")]
ModelsOption = Annotated[ListOption, typer.Option("--models", "-m", help="Model id(s) from the catalog (`shardscope models`).")]
ScaffoldsOption = Annotated[ListOption, typer.Option("--scaffolds", "-a", help="Scaffold(s): react-tools, react-text, plan-execute.")]
SeedsOption = Annotated[int, typer.Option("--seeds", min=1, max=10_000, help="Repeats of every task (seeds 0..N-1, at most 10000).")]
TasksOption = Annotated[ListOption, typer.Option("--tasks", "-t", help="Only tasks whose id matches these patterns (e.g. 'arith-0*').")]
LimitOption = Annotated[Optional[int], typer.Option("--limit", min=1, help="At most this many tasks per suite.")]
ParamOption = Annotated[ListOption, typer.Option("--param", "-p", help="Scaffold parameter, e.g. react-tools.max_steps=4; repeatable.")]
ConcurrencyOption = Annotated[ListOption, typer.Option("--concurrency", help="Episodes at once per provider, as provider=N: llama_cpp (embedded local models; default 1), openai (also OpenAI-compatible servers), anthropic, gcp.gemini, ... (remote default 4), e.g. openai=8.")]
NameOption = Annotated[Optional[str], typer.Option("--name", help="A label for the run.")]
ProgressOption = Annotated[bool, typer.Option("--progress/--no-progress", help="Show the progress bar.")]


def _require_matrix(options: MatrixOptions, hint: str) -> None:
    """A matrix needs suites, models and scaffolds: name the missing options."""
    missing = options.missing()
    if missing:
        raise ShardscopeError(f"missing {', '.join(missing)} ({hint})")


@app.command()
def run(
    ctx: typer.Context,
    suite: SuitesOption = None,
    models: ModelsOption = None,
    scaffolds: ScaffoldsOption = None,
    seeds: SeedsOption = 1,
    tasks: TasksOption = None,
    limit: LimitOption = None,
    param: ParamOption = None,
    concurrency: ConcurrencyOption = None,
    logprobs: Annotated[bool, typer.Option("--logprobs", help="Record token logprobs (local models run several times slower).")] = False,
    ablate: Annotated[Optional[str], typer.Option("--ablate", metavar="MODE", help="Also run every task with each shard ablated; MODE is removed (the shard left out), replaced (by a plausible wrong value) or both.")] = None,
    name: NameOption = None,
    resume: Annotated[
        Optional[str],
        typer.Option("--resume", help="Finish an interrupted run: its id, or 'latest'. Runs only what is missing, with the stored matrix (no other matrix options). Refused when a scaffold's code changed since its episodes were stored (see --accept-changed-scaffolds)."),
    ] = None,
    accept_changed_scaffolds: Annotated[
        bool,
        typer.Option("--accept-changed-scaffolds", help="With --resume, when a scaffold's code changed since the run's episodes were stored (its hash differs): keep those episodes as done and run only the missing ones with the current code."),
    ] = False,
    retry_errors: Annotated[
        bool,
        typer.Option("--retry-errors", help="With --resume, also run again the episodes that ended in infrastructure errors (call timeouts, server errors after retries); model failures are kept."),
    ] = False,
    db: DbOption = None,
    progress: ProgressOption = True,
    executor: Annotated[str, typer.Option("--executor", help="Where episodes run: local (this process, asyncio) or ray (Ray actors on the cluster at RAY_ADDRESS, else a new local one; needs the `ray` extra). Per-provider --concurrency limits hold across the cluster; works with --resume.")] = "local",
    shard: Annotated[Optional[str], typer.Option("--shard", metavar="I/N", help="Run only shard I of N (0-based: 0/4 .. 3/4) of the matrix, split by a stable hash of each episode's key; N processes (a Slurm array, a Kubernetes indexed Job) with I = 0..N-1 run every episode exactly once. Each shard is a run of its own.")] = None,
) -> None:
    """Run task suites x scaffolds x models x seeds, tracing every step into the store.

    Example:

        shardscope run -s arithmetic,village -m smollm2-135m-instruct,qwen2.5-coder-0.5b-instruct -a react-tools --seeds 2

    Ctrl-C (or SIGTERM) stops cleanly; `shardscope run --resume latest` finishes only what is
    missing.
    """
    from shardscope.commands import run as run_cli

    settings = run_cli.settings_for(db)
    if accept_changed_scaffolds and resume is None:
        raise ShardscopeError("--accept-changed-scaffolds only applies with --resume")
    if retry_errors and resume is None:
        raise ShardscopeError("--retry-errors only applies with --resume (e.g. `shardscope run "
                              "--resume latest --retry-errors`)")
    if resume is not None:
        matrix = ("suite", "models", "scaffolds", "seeds", "tasks", "limit", "param", "concurrency",
                  "logprobs", "ablate", "name", "shard")
        # Set on the command line (or by environment), not left at its default.
        given = [p.opts[0] for p in ctx.command.params if p.name in matrix
                 and getattr(ctx.get_parameter_source(p.name), "name", "DEFAULT") != "DEFAULT"]
        if given:
            raise ShardscopeError(f"--resume takes the matrix from the stored run; drop {', '.join(given)}")
        spec = None
    else:
        options = run_cli.MatrixOptions(
            suites=suite, models=models, scaffolds=scaffolds, seeds=seeds, tasks=tasks, limit=limit,
            params=param, concurrency=concurrency, logprobs=logprobs, ablate=ablate, name=name,
            shard=shard,
        )
        _require_matrix(options, "see `shardscope run --help`, or try `shardscope demo`")
        spec = run_cli.build_spec(options)
    code = run_cli.execute(
        spec, settings, resume_run=None if resume is None else ("" if resume == "latest" else resume),
        accept_changed_scaffolds=accept_changed_scaffolds, retry_errors=retry_errors,
        progress=progress, executor=run_cli.executor_name(executor),
    )
    raise typer.Exit(code)


@app.command()
def ablate(
    suite: SuitesOption = None,
    models: ModelsOption = None,
    scaffolds: ScaffoldsOption = None,
    mode: Annotated[str, typer.Option("--mode", help="removed, replaced (by a plausible wrong value) or both.")] = "both",
    seeds: SeedsOption = 1,
    tasks: TasksOption = None,
    limit: LimitOption = None,
    param: ParamOption = None,
    concurrency: ConcurrencyOption = None,
    rerun_baselines: Annotated[bool, typer.Option("--rerun-baselines", help="Run the baselines again even when identical ones are stored.")] = False,
    name: NameOption = None,
    db: DbOption = None,
    progress: ProgressOption = True,
) -> None:
    """Measure which shards each model depends on: re-run tasks with each declared shard
    removed or replaced, same models and scaffold, each linked to its baseline episode.

    Baselines (the un-ablated episodes) already in the store with the same task, scaffold
    hash, model and seed are reused, not run again (a note says when stored baselines are
    not reused because the scaffold's code changed since). Prints the shard influence table (success
    drop with 95% intervals, trajectory change); `shardscope compare` and the app's Shards
    page show it too. Interrupted? `shardscope run --resume latest`.

    Example:

        shardscope ablate -s arithmetic -m smollm2-135m-instruct,qwen2.5-coder-0.5b-instruct -a react-tools --limit 4
    """
    from shardscope.commands import run as run_cli

    options = run_cli.MatrixOptions(
        suites=suite, models=models, scaffolds=scaffolds, seeds=seeds, tasks=tasks, limit=limit,
        params=param, concurrency=concurrency, logprobs=False, ablate=mode,
        name=name or "ablate", reuse_baselines=not rerun_baselines,
    )
    _require_matrix(options, "see `shardscope ablate --help`")
    if mode not in ("removed", "replaced", "both"):
        raise ShardscopeError(f"--mode must be removed, replaced or both, got {mode!r}")
    settings = run_cli.settings_for(db)
    spec = run_cli.build_spec(options)
    raise typer.Exit(run_cli.execute(spec, settings, progress=progress, show_influence=True))


@app.command()
def attribute(
    run_ids: Annotated[ListOption, typer.Option("--run", "-r", help="Only these runs.")] = None,
    models: Annotated[ListOption, typer.Option("--models", "-m", help="Only these models (scoring backends: local GGUF models, OpenAI-compatible servers that return prompt logprobs).")] = None,
    mode: Annotated[str, typer.Option("--mode", help="removed, replaced or both.")] = "both",
    suite: Annotated[ListOption, typer.Option("--suite", "-s", help="Only these suites.")] = None,
    scaffolds: Annotated[ListOption, typer.Option("--scaffolds", "-a", help="Only these scaffolds.")] = None,
    steps: Annotated[Optional[int], typer.Option("--steps", min=1, help="Score only the first N calls of each episode (default: all).")] = None,
    output_chars: Annotated[Optional[int], typer.Option("--output-chars", min=1, help="Score only the first N characters of each recorded output (cheaper, partial; default: all).")] = None,
    tasks: TasksOption = None,
    rescore: Annotated[bool, typer.Option("--rescore", help="Score again the calls x shards x modes already in the store (default: skip them, so a killed run resumes; a row scored on an output cut elsewhere by --output-chars is scored again).")] = False,
    surrogate: Annotated[Optional[int], typer.Option("--surrogate", min=8, metavar="MASKS", help="Instead, fit a sparse linear surrogate (ContextCite-style Lasso) of each call's action log p over MASKS random masks of its shards, each kept or removed: MASKS forward passes a call however many shards it has. Prints each shard's weight per model and the fits' held-out R² (a quarter of the masks); calls with fewer than two located shards are left out. Nothing is stored.")] = None,
    db: DbOption = None,
) -> None:
    """Likelihood attribution: which shards each model's recorded outputs depend on, by the
    model's own probabilities.

    For every recorded LLM call of a baseline episode, each shard is located exactly in the
    input as sent, removed (or replaced by its wrong value), and the *same* recorded output
    is scored teacher-forced: Δ log p over the action and the whole output, per shard, step
    and episode, stored in the `attributions` table. Works on failed episodes; one forward
    pass per shard instead of an episode. Hosted chat APIs cannot score (they say so).

    With --surrogate, a task with many shards gets a ContextCite-style fit instead: random
    shard masks, one forward pass each, and a Lasso of the action's log p on them.

    Examples:

        shardscope attribute -m smollm2-135m-instruct,qwen2.5-coder-0.5b-instruct

        shardscope attribute -s bfcl-simple -m qwen2.5-coder-0.5b-instruct --surrogate 24
    """
    from shardscope.commands.attribute import Limits, attribute_command
    from shardscope.commands.options import split_list
    from shardscope.commands.run import settings_for

    if mode not in ("removed", "replaced", "both"):
        raise ShardscopeError(f"--mode must be removed, replaced or both, got {mode!r}")
    modes = ("removed", "replaced") if mode == "both" else (mode,)
    settings = settings_for(db)
    limits = Limits(split_list(suite) or (), split_list(scaffolds) or (), steps, output_chars,
                    split_list(tasks) or ())
    if surrogate is not None:
        from shardscope.commands.surrogate import surrogate_command

        if mode != "both" or rescore:
            raise ShardscopeError("--surrogate removes shards and stores nothing: drop --mode "
                                  "and --rescore")
        raise typer.Exit(surrogate_command(_store(db), settings, run_ids=split_list(run_ids) or (),
                                           models=split_list(models) or (), masks=surrogate,
                                           limits=limits))
    raise typer.Exit(attribute_command(_store(db), settings, run_ids=split_list(run_ids) or (),
                                       models=split_list(models) or (), modes=modes,
                                       limits=limits, rescore=rescore))


@app.command()
def compare(
    suite: Annotated[ListOption, typer.Option("--suite", "-s", help="Only these suites.")] = None,
    models: Annotated[ListOption, typer.Option("--models", "-m", help="Models to compare (two or more, or one under several scaffolds).")] = None,
    scaffolds: Annotated[ListOption, typer.Option("--scaffolds", "-a", help="Only these scaffolds.")] = None,
    run_ids: Annotated[ListOption, typer.Option("--run", "-r", help="Only these runs (ids from `shardscope query \"SELECT * FROM runs\"`).")] = None,
    tasks: Annotated[ListOption, typer.Option("--tasks", "-t", help="Only these task ids.")] = None,
    metric: Annotated[str, typer.Option("--metric", help="success (0/1) or score (the checker's).")] = "success",
    alpha: Annotated[float, typer.Option("--alpha", min=0.0001, max=0.5, help="Significance level of the paired tests.")] = 0.05,
    correction: Annotated[str, typer.Option("--correction", help="Many pairs: holm (family-wise), bh (false discovery rate) or none.")] = "holm",
    report: Annotated[Optional[Path], typer.Option("--report", "-o", help="Write a self-contained report: .html, or .md with SVG charts beside it.")] = None,
    clusters: Annotated[bool, typer.Option("--clusters/--no-clusters", help="Cluster the final answers (behaviour clusters).")] = True,
    embedding: Annotated[str, typer.Option("--embedding", help="auto (all-MiniLM-L6-v2 when installed), minilm or tfidf.")] = "auto",
    db: DbOption = None,
) -> None:
    """Compare models (x scaffolds) on the same tasks, with honest statistics.

    Prints per model · scaffold success rates with standard errors clustered by task;
    paired differences on shared tasks with 95% intervals, p-values (paired t, or a
    permutation test, inverted for the interval, below 30 tasks), corrected for many pairs, and the
    minimum detectable effect; where trajectories first part and how often they rejoin;
    tool use; shard influence where `shardscope ablate` was run; behaviour clusters.

    Example:

        shardscope compare -s arithmetic -m smollm2-135m-instruct,qwen2.5-coder-0.5b-instruct -o report.html
    """
    from shardscope.commands.compare import compare_command
    from shardscope.commands.options import split_list
    from shardscope.tracer.queries.comparison import Selection

    if embedding not in ("auto", "minilm", "tfidf"):
        raise ShardscopeError(f"--embedding must be auto, minilm or tfidf, got {embedding!r}")
    selection = Selection(suites=split_list(suite), models=split_list(models),
                          scaffolds=split_list(scaffolds), run_ids=split_list(run_ids),
                          tasks=split_list(tasks))
    compare_command(_store(db), selection, metric=metric, alpha=alpha, correction=correction,
                    report=report, clusters=clusters, embedding=embedding)


@app.command()
def demo(
    db: DbOption = None,
    progress: ProgressOption = True,
) -> None:
    """Run the demo matrix on the three embedded local models (no keys, no network).

    SmolLM2-135M-Instruct, Qwen2.5-Coder-0.5B-Instruct and Gemma-3-270M (a base model) under
    the same two scaffolds on a few tasks, then a eight-item BFCL slice (when its data is
    installed) that ends saying whether the models' difference on it excludes zero: within
    ten minutes on 2 cores. Then prints the comparison and how to open the UI and query.
    """
    from shardscope.commands import run as run_cli
    from shardscope.commands.demo import demo_command

    raise typer.Exit(demo_command(run_cli.settings_for(db), progress))


@app.command()
def models(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    catalog: Annotated[
        Optional[Path],
        typer.Option("--catalog", help="An extra catalog file (default: setting `models_file`).",
                     exists=True, dir_okay=False),
    ] = None,
) -> None:
    """List the model catalog with each model's availability, and why a model cannot run.

    A model is available when its package is installed (local models), its API key is in
    the environment (hosted models) or its endpoint answers (OpenAI-compatible servers).
    Add your own models in a TOML file: see docs/models.md.
    """
    from shardscope.commands.models import models_command

    raise typer.Exit(models_command(json_output=as_json, catalog_file=catalog))


@app.command()
def ui(
    db: DbOption = None,
    host: Annotated[
        Optional[str],
        typer.Option("--host", help="Interface to bind (default: setting `ui_host`, 127.0.0.1)."),
    ] = None,
    port: Annotated[
        Optional[int],
        typer.Option("--port", min=1, max=65535, help="Port (default: setting `ui_port`, 8501)."),
    ] = None,
    open_browser: Annotated[
        bool, typer.Option("--open/--no-open", help="Open a browser tab on the app.")
    ] = False,
) -> None:
    """Open the Streamlit app on the store: overview, runs, trace explorer, comparisons,
    shard influence and a read-only SQL console.

    Safe while runs are writing: the app refreshes as episodes land, with no lock error.
    A missing or empty store shows how to fill it (`shardscope demo`). Ctrl-C stops.
    """
    from shardscope.commands.ui import ui_command

    raise typer.Exit(ui_command(db, host, port, open_browser))


@app.command()
def collect(
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="Interface to listen on. Anything but loopback (127.0.0.1, ::1, localhost) requires a token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="OTLP/HTTP port (the standard is 4318); 0 picks a free one.")] = 4318,
    grpc_port: Annotated[int, typer.Option("--grpc-port", help="OTLP/gRPC port (the standard is 4317); 0 serves no gRPC.")] = 4317,
    no_grpc: Annotated[bool, typer.Option("--no-grpc", help="Serve OTLP/HTTP only.")] = False,
    token: Annotated[Optional[str], typer.Option(help="Bearer token every exporter must send (Authorization: Bearer TOKEN). Default: setting `collect_token` (SHARDSCOPE_COLLECT_TOKEN).", show_default=False)] = None,
    max_body_mib: Annotated[float, typer.Option("--max-body-mib", help="Largest request body, compressed and decompressed (MiB); bigger ones get 413.")] = 20.0,
) -> None:
    """Receive OTLP traces and logs from any OpenTelemetry SDK and write them into the store.

    OTLP/HTTP on http://HOST:PORT/v1/traces and /v1/logs (protobuf or JSON, gzip or not,
    Content-Length or chunked, keep-alive), and OTLP/gRPC on HOST:GRPC_PORT (TraceService
    and LogsService). Spans go to `spans`/`span_events` and the views; log records (GenAI
    content events such as gen_ai.user.message, gen_ai.choice) to `log_events`, joined to
    their spans by trace and span id. Everything stored is redacted of secrets.

    Data is acknowledged only once it is in the store; a span re-sent by a retrying
    exporter (same trace and span id) is stored once. Errors follow the OTLP specification:
    google.rpc.Status bodies in the request's encoding; 400 bad data (invalid spans alone
    are reported in partial_success), 401 without the token, 413 too large, 415
    unsupported Content-Type or Content-Encoding, 429/503 with Retry-After when busy.
    Ctrl-C or SIGTERM stops after writing what was received. See docs/collect.md.
    """
    from shardscope.commands.collect import collect_from_cli

    raise typer.Exit(collect_from_cli(db, host, port, 0 if no_grpc else grpc_port, token, max_body_mib))


suites_app = typer.Typer(help="Task suites: check a suite file before running it, import standard "
                         "benchmarks (BFCL, HumanEval) as suite files, score benchmark runs.",
                         no_args_is_help=True)
app.add_typer(suites_app, name="suites")


@suites_app.command("check")
def suites_check(
    path: Annotated[Path, typer.Argument(help="A suite file (.toml) or a directory of them.")],
) -> None:
    """Dry-run suites without a model: instantiate every task and every shard ablation
    (removed and replaced) and judge every reference answer, reference_sql and reference fix
    with the task's own check. Exit 1, one line per problem, if anything is wrong."""
    from shardscope.commands.suites_check import suites_check_command

    raise typer.Exit(suites_check_command(path))


def _add_suite_importers() -> None:
    from shardscope.commands.suites_import import import_app

    suites_app.add_typer(import_app, name="import")


_add_suite_importers()


@suites_app.command("score")
def suites_score(
    db: DbOption = None,
    run_ids: Annotated[ListOption, typer.Option("--run", "-r", help="Only these runs.")] = None,
) -> None:
    """BFCL accuracy per category, its AST summary, irrelevance beside the call rate on
    relevant items; HumanEval pass@1 and unbiased pass@k. SEs clustered by task."""
    from shardscope.commands.options import split_list
    from shardscope.commands.suites_score import score_command

    raise typer.Exit(score_command(db, split_list(run_ids)))


class ExportFormat(StrEnum):
    parquet = "parquet"
    otlp_json = "otlp-json"


@app.command("export")
def export(
    fmt: Annotated[ExportFormat, typer.Option("--format", "-f", help="parquet: every view and table (episodes, steps, llm_calls, tool_calls, messages, token_events, llm_attempts, runs, spans, span_events, log_events), one directory each, hive-partitioned by run_id. otlp-json: spans (traces.jsonl) and log records (logs.jsonl) as OTLP JSON Lines, the OTLP File Exporter format, which any OTLP receiver (shardscope collect too) can replay.")] = ExportFormat.parquet,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write into (created).")] = Path("export"),
    run_ids: Annotated[ListOption, typer.Option("--run", "-r", help="Only these runs; repeat or comma-separate.")] = None,
    suite: Annotated[ListOption, typer.Option("--suite", "-s", help="Only episodes of these suites (and their runs' run-level spans).")] = None,
    models: Annotated[ListOption, typer.Option("--model", "-m", help="Only episodes of these models (and their runs' run-level spans).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace what an earlier export left in --out.")] = False,
    db: DbOption = None,
    progress: ProgressOption = True,
) -> None:
    """Export the store: Parquet for any engine, or OTLP JSON Lines for any OpenTelemetry tool.

    Parquet: `OUT/<view>/run_id=<id>/data_0.parquet` per view and table (the partition column
    is kept in the files too), and `OUT/manifest.json` with the rows of each. Read it back:
    `SELECT * FROM read_parquet('OUT/episodes/*/*.parquet', hive_partitioning = true)`.

    OTLP JSON: `OUT/traces.jsonl` (and `OUT/logs.jsonl`), one export request of at most 512
    spans per line: POST each line to an OTLP/HTTP receiver's /v1/traces.

    Safe while runs write (each Parquet relation is read in one read-only snapshot).

    Examples:

        shardscope export --format parquet --out lake/ --model qwen2.5-coder-0.5b-instruct

        shardscope export --format otlp-json --out otlp/ --run RUN_ID
    """
    from shardscope.commands.export import ExportOptions, export_command
    from shardscope.commands.options import split_list
    from shardscope.tracer.queries.export import ExportFilter

    flt = ExportFilter(run_ids=split_list(run_ids), suites=split_list(suite),
                       models=split_list(models))
    raise typer.Exit(export_command(_store(db), ExportOptions(fmt.value, out, flt, overwrite, progress)))


def _add_importers() -> None:
    from shardscope.commands.imports import import_app as records_import_app

    app.add_typer(records_import_app, name="import")


_add_importers()


@app.command()
def compact(
    lake: Annotated[Path, typer.Argument(help="The lake directory (written by the parquet exporter).", show_default=False)],
    db: DbOption = None,
) -> None:
    """Merge a Parquet lake into one DuckDB store, for fast local exploration.

    Idempotent: rows the store already holds (by span id, as ingest dedupes) are not added
    again, so compacting a growing lake repeatedly adds only what is new. Files that are not
    the lake's (foreign, corrupt, cut short) are skipped and listed; the rest is compacted.

    Example:

        shardscope compact /shared/lake --db local.duckdb
    """
    from shardscope.commands.lake import compact_command

    raise typer.Exit(compact_command(lake, db))


def main() -> None:
    """Console-script entry point: user errors print one line, not a traceback."""
    # typer vendors click; its UsageError is BadParameter's base (typer exports only that).
    usage_error: type[typer.BadParameter] = typer.BadParameter.__mro__[1]
    try:
        code = app(standalone_mode=False)
    except usage_error as exc:  # typer's boxed panel would be many lines
        command = exc.ctx.command_path if exc.ctx else "shardscope"
        typer.secho(f"error: {exc.format_message()} (see `{command} --help`)", err=True,
                    fg=typer.colors.RED)
        sys.exit(exc.exit_code)
    except ShardscopeError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        sys.exit(1)
    except (KeyboardInterrupt, typer.Abort):
        typer.secho("interrupted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
