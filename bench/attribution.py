"""Likelihood attribution against outcome ablation: wall time for the same shards, tasks and
models, in one run, on the embedded local models through llama.cpp.

A baseline run (``shardscope run``) records the episodes first (not timed). Then, timed:
``shardscope ablate --mode removed`` re-runs every episode once per shard (reusing the
stored baselines), and ``shardscope attribute --mode removed`` scores the recorded outputs
with each shard removed (one forward pass per call and shard). Both run as the CLI in their
own process, so each pays its own start-up and model load. Both run llama.cpp on the same
number of threads (``--threads``, default 1: on a shared 2-core machine two threads
spin-wait for each other), through a models file that overrides the catalog.

Last line: ``attribution_ratio: <attribute seconds / ablate seconds>`` (target <= 0.2).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


CPU: list[float] = []  # CPU seconds (user + system) of each CLI process, in call order


def cli(cwd: Path, *args: str) -> float:
    """Run the CLI; its wall time in seconds (exits on failure, showing stderr). Its CPU time
    goes to ``CPU``: on a shared machine wall time also measures the neighbours' load."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHARDSCOPE_")}
    env.update(SHARDSCOPE_CONFIG=str(cwd / "config.toml"), PYTHONPATH=str(ROOT))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "shardscope", *args], cwd=cwd, env=env,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    if done.returncode != 0:
        sys.exit(f"shardscope {' '.join(args)} failed:\n{done.stderr}")
    last = [line for line in done.stdout.splitlines() if line.startswith("cost:")]
    if last:
        print("  " + last[0])
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="smollm2-135m-instruct,qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--suite", default="arithmetic")
    parser.add_argument("--limit", type=int, default=3, help="tasks")
    parser.add_argument("--max-steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp threads, both sides")
    args = parser.parse_args()
    matrix = ["-s", args.suite, "-m", args.models, "-a", "react-tools", "--limit", str(args.limit),
              "-p", f"react-tools.max_steps={args.max_steps}", "-p",
              "react-tools.max_tokens_per_call=48", "--no-progress"]
    with tempfile.TemporaryDirectory(prefix="bench-attribution-") as tmp:
        cwd = Path(tmp)
        models = cwd / "models.toml"
        models.write_text("".join(
            f'[models."{m}"]\nn_threads = {args.threads}\nscoring_threads = {args.threads}\n\n'
            for m in args.models.split(",")), encoding="utf-8")
        (cwd / "config.toml").write_text(f'models_file = "{models.as_posix()}"\n', encoding="utf-8")
        db = ["--db", str(cwd / "bench.duckdb")]
        baseline = cli(cwd, "run", *db, *matrix)
        print(f"baselines recorded in {baseline:.1f} s (not compared)")
        ablate = cli(cwd, "ablate", *db, *matrix, "--mode", "removed")
        print(f"outcome ablation (shardscope ablate --mode removed): {ablate:.1f} s")
        attribute = cli(cwd, "attribute", *db, "--mode", "removed")
        print(f"likelihood attribution (shardscope attribute --mode removed): {attribute:.1f} s")
    print(f"CPU seconds: ablate {CPU[1]:.1f}, attribute {CPU[2]:.1f} "
          f"(cpu ratio {CPU[2] / CPU[1]:.3f})")
    print(f"attribution_ratio: {attribute / ablate:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
