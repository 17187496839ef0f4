"""Per-token CPU cost of llama.cpp prompt evaluation (prefill) at several batch sizes against
one-token decoding, on the embedded local models: the floor of likelihood attribution's cost
against outcome ablation (scoring evaluates at prefill speed what an ablated episode
generates at decode speed, and both re-evaluate the prompt from the shard on).

Prints, per model and batch size, tokens per CPU second of this process (one llama.cpp thread).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from shardscope.config.settings import Settings
from shardscope.scaffolds.backends.local import load_model
from shardscope.scaffolds.backends.local_weights import resolve
from shardscope.scaffolds.backends.registry import build_backend, load_catalog


def rate(llama: Any, ids: list[int], batch: int) -> float:
    """Tokens per CPU second evaluating ``ids`` from an empty cache, ``batch`` at a time."""
    llama.reset()
    llama._ctx.kv_cache_clear()
    started = time.process_time()
    for first in range(0, len(ids), batch):
        chunk = ids[first: first + batch]
        llama._batch.set_batch(batch=chunk, n_past=first, logits_all=False)
        llama._ctx.decode(llama._batch)
    return len(ids) / (time.process_time() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="smollm2-135m-instruct,qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--tokens", type=int, default=256)
    args = parser.parse_args()
    catalog = load_catalog(Settings().models_file)
    for model in args.models.split(","):
        backend = build_backend(catalog.get(model))
        loaded = load_model(resolve(backend.weights), n_ctx=2048, logits_all=False, n_threads=1)
        text = "The quick brown fox jumps over the lazy dog. " * 64
        ids = list(loaded.llama.tokenize(text.encode(), add_bos=True))[: args.tokens]
        rates = {b: rate(loaded.llama, ids, b) for b in (1, 8, 64, 512)}
        print(f"{model}: tokens per CPU second, " + ", ".join(
            f"batch {b}: {r:.0f}" for b, r in rates.items())
            + f"; prefill/decode {rates[512] / rates[1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
