"""Full BFCL (simple, multiple, parallel, irrelevance) and HumanEval runs on the three
embedded models, as the README reports them. Not a test: hours on 2 cores.

    python bench/benchmarks_full.py --full             # everything (see the README for times)
    python bench/benchmarks_full.py --limit 3          # the first 3 items of every suite
    python bench/benchmarks_full.py                    # no model calls: prints the plan

Each (model, suite) is one `shardscope run` in its own process into one store, timed; then
the scores (`shardscope suites score`) and, from the measured seconds per episode, the
extrapolated wall time of the full runs. Local models use ``--threads`` llama.cpp threads
(default 1): on this shared 2-core machine two threads were measured 22x slower than one
(20 tokens: 125.7 s vs 5.6 s) because llama.cpp's threads wait on each other by spinning.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("qwen2.5-coder-0.5b-instruct", "smollm2-135m-instruct", "gemma-3-270m")
SUITES = {"bfcl-simple": 400, "bfcl-multiple": 200, "bfcl-parallel": 200,
          "bfcl-irrelevance": 240, "humaneval": 164}
SCAFFOLD = "react-tools"
PARAMS = ("-p", "react-tools.max_steps=2", "-p", "react-tools.max_tokens_per_call=384")


def shardscope(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shardscope", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="every item of every suite")
    parser.add_argument("--limit", type=int, help="the first N items of every suite")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--suites", default=",".join(SUITES))
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads per model")
    parser.add_argument("--db", type=Path, help="store (default: a new temporary file)")
    args = parser.parse_args()
    models = args.models.split(",")
    suites = args.suites.split(",")
    planned = {s: SUITES[s] if args.full or not args.limit else min(args.limit, SUITES[s])
               for s in suites}
    print(f"plan: {len(models)} models x {sum(planned.values())} items = "
          f"{len(models) * sum(planned.values())} episodes ({SCAFFOLD}, temperature 0, seed 0)")
    if not args.full and not args.limit:
        print("no --full or --limit given: nothing run")
        return 0
    work = Path(tempfile.mkdtemp(prefix="shardscope-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARDSCOPE_")}
    models_file = work / "models.toml"
    models_file.write_text("".join(f'[models."{m}"]\nbackend = "local"\nn_threads = {args.threads}\n\n'
                                   for m in models), encoding="utf-8")
    (work / "empty.toml").write_text("", encoding="utf-8")
    env.update(SHARDSCOPE_CONFIG=str(work / "empty.toml"), SHARDSCOPE_MODELS_FILE=str(models_file),
               SHARDSCOPE_SUITES_DIR=str(work / "suites"), PYTHONPATH=str(ROOT))
    limit = () if args.full else ("--limit", str(args.limit))
    for importer in (["bfcl", "-c", "simple,multiple,parallel,irrelevance"], ["humaneval"]):
        done = shardscope("suites", "import", *importer, *limit, "--out", str(work / "suites"),
                          env=env)
        if done.returncode != 0:
            print(done.stderr, file=sys.stderr)
            return 1
    db = args.db or work / "bench.duckdb"
    times: dict[tuple[str, str], float] = {}
    for model in models:
        for suite in suites:
            start = time.perf_counter()
            done = shardscope("run", "--db", str(db), "-s", suite, "-m", model, "-a", SCAFFOLD,
                              *PARAMS, "--no-progress", "--name", f"bench {model} {suite}",
                              env=env)
            times[model, suite] = time.perf_counter() - start
            status = "ok" if done.returncode == 0 else f"exit {done.returncode}"
            print(f"{model:30s} {suite:18s} {planned[suite]:4d} items {times[model, suite]:8.0f} s"
                  f"  ({times[model, suite] / planned[suite]:.1f} s/item, {status})", flush=True)
            if done.returncode != 0:
                print(done.stderr[-2000:], file=sys.stderr)
    score = shardscope("suites", "score", "--db", str(db), env=env)
    print(score.stdout)
    total = sum(times.values())
    full = sum(times[m, s] / planned[s] * SUITES[s] for m, s in times)
    print(f"store: {db}")
    print(f"wall time {total:.0f} s for {sum(planned.values()) * len(models)} episodes; "
          f"extrapolated to the full suites ({sum(SUITES[s] for s in suites)} items x "
          f"{len(models)} models): {full / 3600:.1f} h")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
