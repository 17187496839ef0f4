"""Teacher-forced scoring on a local GGUF model: the log-probability of each token of a
recorded continuation given an input, with llama.cpp evaluating prompt and continuation in
one pass and computing logits only at the positions that predict the continuation. This is
what likelihood attribution needs: no sampling, only
``log p(recorded output | input)`` under inputs with a shard removed or replaced.

Consecutive calls that share a token prefix (the same prompt up to where a shard sits)
re-evaluate only the part after it: logits at a position depend on the tokens before it
alone, so the stored logits of the shared prefix stay valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from shardscope.scaffolds.backends.errors import BadRequestError

if TYPE_CHECKING:
    from shardscope.scaffolds.backends.local import LoadedModel


@dataclass(frozen=True)
class ScoredContinuation:
    """Per token of the continuation: its text, log p given everything before it, and the
    byte offset where it starts in the continuation (UTF-8)."""

    tokens: tuple[str, ...]
    logprobs: tuple[float, ...]
    byte_offsets: tuple[int, ...]
    prompt_tokens: int
    evaluated_tokens: int  # tokens actually run through the model (the rest was cached)

    @property
    def total(self) -> float:
        return float(sum(self.logprobs))

    def over_bytes(self, start: int, end: int) -> float:
        """Sum of log p over tokens overlapping bytes [start, end) of the continuation."""
        total = 0.0
        for offset, token, lp in zip(self.byte_offsets, self.tokens, self.logprobs, strict=True):
            if offset < end and offset + len(token.encode("utf-8")) > start:
                total += lp
        return total


def score(loaded: LoadedModel, prompt: str, continuation: str, *, add_bos: bool,
          model: str) -> ScoredContinuation:
    """log p of ``continuation``'s tokens after ``prompt`` (blocking; call on the llama thread)."""
    llama = loaded.llama
    prompt_ids = list(llama.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=True))
    output_ids = list(llama.tokenize(continuation.encode("utf-8"), add_bos=False, special=True))
    if not output_ids:
        raise BadRequestError(f"{model}: the recorded output is empty: nothing to score")
    ids = prompt_ids + output_ids
    if len(ids) > llama.n_ctx():
        raise BadRequestError(
            f"{model}: input and output are {len(ids)} tokens, more than its context "
            f"({llama.n_ctx()}); raise n_ctx in the catalog entry")
    with loaded.lock:
        # Only the prompt may come from the cache: the positions predicting the continuation
        # must run to give their logits, even when the cache already holds prompt + output
        # (as it does right after generating that output).
        want_from = len(prompt_ids) - 1
        reused = _reuse_prefix(llama, ids[: want_from + 1])
        logits = _decode(llama, ids, reused, want_from=want_from)
    top = logits.max(axis=1, keepdims=True)
    lse = (top + np.log(np.exp(logits - top).sum(axis=1, keepdims=True)))[:, 0]
    logprobs = logits[np.arange(len(output_ids)), output_ids] - lse
    pieces = [bytes(llama.detokenize([t], special=True)) for t in output_ids]
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in pieces])[:-1]]).astype(int)
    return ScoredContinuation(
        tokens=tuple(p.decode("utf-8", errors="replace") for p in pieces),
        logprobs=tuple(float(v) for v in logprobs),
        byte_offsets=tuple(int(o) for o in offsets),
        prompt_tokens=len(prompt_ids),
        evaluated_tokens=len(ids) - reused,
    )


def _decode(llama: Any, ids: list[int], start: int, want_from: int) -> np.ndarray:
    """Evaluate ``ids[start:]`` after the cached ``ids[:start]``, computing the output layer
    only where it is needed (positions >= ``want_from``, the ones predicting the
    continuation): with ``logits_all`` every prompt position paid for the full vocabulary
    projection. Returns those positions' logits, in order."""
    kept: list[np.ndarray] = []
    n_vocab = llama.n_vocab()
    for first in range(start, len(ids), llama.n_batch):
        chunk = ids[first: min(len(ids), first + llama.n_batch)]
        llama._batch.set_batch(batch=chunk, n_past=first, logits_all=False)
        # the last position predicts past the continuation: not wanted
        wanted = [want_from <= first + j < len(ids) - 1 for j in range(len(chunk))]
        for j, flag in enumerate(wanted):
            llama._batch.batch.logits[j] = flag or j == len(chunk) - 1
        llama._ctx.decode(llama._batch)
        outputs = sum(1 for j in range(len(chunk)) if llama._batch.batch.logits[j])
        rows = np.ctypeslib.as_array(llama._ctx.get_logits(), shape=(outputs * n_vocab,))
        rows = rows.reshape(outputs, n_vocab)
        flags = [bool(llama._batch.batch.logits[j]) for j in range(len(chunk))]
        row = 0
        for j, flag in enumerate(flags):
            if flag:
                if wanted[j]:
                    kept.append(np.array(rows[row], dtype=np.float64))
                row += 1
        llama.input_ids[first: first + len(chunk)] = chunk
        llama.n_tokens = first + len(chunk)
    return np.stack(kept) if kept else np.zeros((0, n_vocab))


def _reuse_prefix(llama: Any, ids: list[int]) -> int:
    """Keep the evaluated tokens ``ids`` starts with (at least one token is re-run)."""
    n_tokens = int(llama.n_tokens)
    cached = llama.input_ids[:n_tokens]
    limit = min(n_tokens, len(ids) - 1)
    same = 0
    while same < limit and int(cached[same]) == ids[same]:
        same += 1
    if same == 0 or not llama._ctx.kv_cache_seq_rm(-1, same, -1):
        llama.reset()
        return 0
    llama.n_tokens = same
    return same
