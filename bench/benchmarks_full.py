"""Full BFCL (simple, multiple, parallel, irrelevance) and HumanEval runs on the three
embedded models, accumulated across sessions in a committed results file. Not a test.

    python bench/benchmarks_full.py --summary            # what is recorded, no model calls
    python bench/benchmarks_full.py --sample 60          # the seeded stratified 60-item sample
    python bench/benchmarks_full.py --full --until 14:20 # go on through the full run until then
    python bench/benchmarks_full.py --full --part 1/2 --results copy.jsonl  # half the items
    python bench/benchmarks_full.py                      # no model calls: the plan and summary

Every item of the five suites (1,204 per model) is put in one seeded order, stratified by
suite, so that every prefix is a proportional random sample (bench/_sample.py); ``--sample
N`` is the first N of that order and ``--full`` all of it. Items already in the results
file (bench/results/benchmarks_full.jsonl) for the same model and scaffold hash are
skipped, so each session goes on where the last stopped. Each chunk of items is one
``shardscope run`` per model into a throwaway store; its finished episodes are appended,
one line per model x suite x item: outcome, score, tokens, wall seconds, llama.cpp threads,
shardscope commit and the load average. ``--until HH:MM`` (UTC) stops a chunk cleanly
(SIGTERM, resumable) and records what finished.

Local models use ``--threads`` llama.cpp threads (default 1): on this shared 2-core
machine two threads were measured 22x slower than one (20 tokens: 125.7 s vs 5.6 s)
because llama.cpp's threads wait on each other by spinning. Run it under ``nice -n 10``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._sample import (  # noqa: E402
    append_results,
    cells,
    done_keys,
    read_results,
    stratified_order,
    summary_lines,
)

MODELS = ("qwen2.5-coder-0.5b-instruct", "smollm2-135m-instruct", "gemma-3-270m")
SUITES = {"bfcl-simple": 400, "bfcl-multiple": 200, "bfcl-parallel": 200,
          "bfcl-irrelevance": 240, "humaneval": 164}
SCAFFOLD = "react-tools"
PARAMS = ("react-tools.max_steps=2", "react-tools.max_tokens_per_call=384")
RESULTS = ROOT / "bench" / "results" / "benchmarks_full.jsonl"
SEED = 13
EPISODE_COLUMNS = ("model", "suite", "task_id", "scaffold", "scaffold_hash", "seed", "outcome",
                   "score", "input_tokens", "output_tokens", "tool_calls", "steps", "duration_s",
                   "error")


def scaffold_hash() -> str:
    """The bench scaffold's identity with its parameters, as a run records it."""
    from shardscope.commands.options import scaffold_params
    from shardscope.scaffolds.agents.registry import get_scaffold

    return str(get_scaffold(SCAFFOLD, scaffold_params(list(PARAMS)).get(SCAFFOLD)).identity)


def commit() -> str:
    head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT,
                          capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "shardscope", "scaffolds",
                            "tracer"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return head + ("+dirty" if dirty else "")


class Workspace:
    """Suite files, catalog and environment for the child runs, in a temporary directory."""

    def __init__(self, models: list[str], threads: int) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="shardscope-bench-"))
        catalog = self.dir / "models.toml"
        catalog.write_text("".join(f'[models."{m}"]\nbackend = "local"\nn_threads = {threads}\n\n'
                                   for m in models), encoding="utf-8")
        (self.dir / "empty.toml").write_text("", encoding="utf-8")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SHARDSCOPE_")}
        self.env.update(SHARDSCOPE_CONFIG=str(self.dir / "empty.toml"),
                        SHARDSCOPE_MODELS_FILE=str(catalog),
                        SHARDSCOPE_SUITES_DIR=str(self.dir / "suites"), PYTHONPATH=str(ROOT))

    def shardscope(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "shardscope", *args], env=self.env, cwd=ROOT,
                              capture_output=True, text=True)

    def import_suites(self) -> dict[str, list[str]]:
        """Writes the five suites; returns each suite's task ids."""
        for importer in (["bfcl", "-c", "simple,multiple,parallel,irrelevance"], ["humaneval"]):
            done = self.shardscope("suites", "import", *importer, "--out", str(self.dir / "suites"))
            if done.returncode != 0:
                raise SystemExit(f"suites import failed: {done.stderr.strip()}")
        ids = {}
        for suite in SUITES:
            data = tomllib.loads((self.dir / "suites" / f"{suite}.toml").read_text(encoding="utf-8"))
            ids[suite] = [task["id"] for task in data["tasks"]]
        return ids


def until_epoch(text: str | None) -> float | None:
    """``HH:MM`` UTC today (tomorrow if already past) as epoch seconds."""
    if text is None:
        return None
    try:
        hour, minute = (int(x) for x in text.split(":"))
        now = dt.datetime.now(dt.UTC)
        at = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    except ValueError:
        raise SystemExit(f"--until {text!r}: expected HH:MM (UTC)") from None
    return (at if at > now else at + dt.timedelta(days=1)).timestamp()


def part_of(text: str | None) -> tuple[int, int]:
    """``--part I/N`` as (I, N): this process takes the items at positions I, I+N, ... of the
    order, so N processes share one model's items without running any twice."""
    if text is None:
        return 0, 1
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise SystemExit(f"--part {text!r}: expected I/N, for example 0/2") from None
    if count < 1 or not 0 <= index < count:
        raise SystemExit(f"--part {text!r}: I must be in 0..N-1 and N at least 1")
    return index, count


def run_chunk(ws: Workspace, model: str, items: list[tuple[str, str]], stop_at: float | None,
              threads: int, source: str) -> list[dict[str, Any]]:
    """One ``shardscope run`` of ``items`` on ``model``; the finished episodes as result rows."""
    db = ws.dir / f"chunk-{time.monotonic_ns()}.duckdb"
    suites = sorted({s for s, _ in items})
    args = ["run", "--db", str(db), "-s", ",".join(suites), "-m", model, "-a", SCAFFOLD,
            "-t", ",".join(t for _, t in items), "--no-progress", "--name", f"bench {model}"]
    for param in PARAMS:
        args += ["-p", param]
    load_start, started = os.getloadavg()[0], time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "shardscope", *args], env=ws.env, cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while child.poll() is None:
        if stop_at is not None and time.time() >= stop_at:
            child.send_signal(signal.SIGTERM)  # the run stops cleanly, finished episodes kept
            child.wait()
            break
        time.sleep(2)
    stderr = child.stderr.read() if child.stderr else ""
    wall = time.perf_counter() - started
    if child.returncode not in (0, -signal.SIGTERM, 128 + signal.SIGTERM) and not db.exists():
        print(f"  run failed (exit {child.returncode}): {stderr.strip()[-800:]}", file=sys.stderr)
        return []
    query = ws.shardscope("query", "--db", str(db), "--format", "json",
                          f"SELECT {', '.join(EPISODE_COLUMNS)} FROM episodes WHERE outcome IS NOT NULL")
    if query.returncode != 0:
        print(f"  query failed: {query.stderr.strip()[-800:]}", file=sys.stderr)
        return []
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    extra = {"threads": threads, "commit": source, "load_start": round(load_start, 2),
             "load_end": round(os.getloadavg()[0], 2), "chunk_items": len(items),
             "chunk_wall_s": round(wall, 1), "recorded_at": stamp}
    rows = []
    for episode in json.loads(query.stdout or "[]"):
        duration = episode.pop("duration_s")
        rows.append({**episode, "wall_s": round(duration or 0.0, 2), **extra})
    db.unlink(missing_ok=True)
    return rows


def run(args: argparse.Namespace, models: list[str], expected_hash: str) -> int:
    ws = Workspace(models, args.threads)
    order = stratified_order(ws.import_suites(), args.seed)
    wanted = order if args.full else order[:args.sample]
    index, count = part_of(args.part)
    wanted = wanted[index::count]
    stop_at, source = until_epoch(args.until), commit()
    while stop_at is None or time.time() < stop_at:
        have = done_keys(read_results(args.results), expected_hash)
        todo = {m: [i for i in wanted if (m, *i) not in have] for m in models}
        if not any(todo.values()):
            print("every planned item is recorded")
            break
        for model in models:
            chunk = todo[model][:args.chunk]
            if not chunk or (stop_at is not None and time.time() >= stop_at):
                continue
            rows = run_chunk(ws, model, chunk, stop_at, args.threads, source)
            stray = {r["scaffold_hash"] for r in rows} - {expected_hash}
            if stray:
                raise SystemExit(f"the run recorded scaffold hash(es) {stray}, expected "
                                 f"{expected_hash}: the bench's hash computation is out of date")
            append_results(args.results, rows)
            mean = sum(r["wall_s"] for r in rows) / len(rows) if rows else float("nan")
            print(f"{model:30s} {len(rows)}/{len(chunk)} items recorded, {mean:.1f} s/item, "
                  f"load {os.getloadavg()[0]:.1f}", flush=True)
            if not rows:
                return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--full", action="store_true", help="every item of every suite")
    size.add_argument("--sample", type=int, metavar="N",
                      help="the first N items of the seeded stratified order (per model)")
    parser.add_argument("--summary", action="store_true", help="print the summary only")
    parser.add_argument("--until", metavar="HH:MM", help="stop cleanly at this UTC time")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads per model")
    parser.add_argument("--chunk", type=int, default=6, help="items per model per child run")
    parser.add_argument("--seed", type=int, default=SEED, help="the order's seed")
    parser.add_argument("--part", metavar="I/N",
                        help="take every N-th item from the I-th (0-based), so N processes "
                             "share a model's items; each appends to its own --results copy")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    part_of(args.part)  # a malformed --part stops here, before any child run
    models = args.models.split(",")
    from shardscope.config.catalog import BUILTIN_CATALOG, read_catalog

    # The child runs get a models file that only sets threads over the shipped local entries.
    known = [e.id for e in read_catalog(BUILTIN_CATALOG) if e.backend == "local"]
    unknown = [m for m in models if m not in known]
    if unknown:
        print(f"error: --models: {', '.join(unknown)} not in the catalog's local models: "
              f"{', '.join(known)}", file=sys.stderr)
        return 2
    expected = scaffold_hash()
    try:
        rows = read_results(args.results)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"plan: {len(models)} models x {sum(SUITES.values())} items ({SCAFFOLD} "
          f"{expected[:12]}, temperature 0, seed 0); {len(rows)} lines in {args.results}")
    status = 0
    if not args.summary and (args.full or args.sample):
        status = run(args, models, expected)
        rows = read_results(args.results)
    print("\n".join(summary_lines(cells(rows, SUITES, models, expected), rows)))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
