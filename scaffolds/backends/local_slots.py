"""Parallel slots for the ``local`` backend: several generations in one llama.cpp context.

A :class:`SlotEngine` owns one llama.cpp context with room for ``slots`` sequences
(``n_seq_max``; each sequence has the backend's ``n_ctx``). Requests from any coroutine are
queued; a scheduler loop on the process's one llama.cpp thread admits them into free slots
and then, step after step, puts the next token of every decoding sequence (and the next
chunk of every prompt still being read) into ONE batch, so one ``llama_decode`` advances all
of them: continuous batching. A new prompt goes to the free slot whose cached tokens share
the longest prefix with it, and only the rest is evaluated (the prefix cache of agent loops).

Sampling, stop sequences, max_tokens, end-of-generation and the token counts follow
llama-cpp-python's ``create_completion`` (0.3.x) so that ModelOutputs look the same as on the
one-at-a-time path. Logprobs are not offered here (the backend refuses them in slot mode).

The loop gives the thread back after a short time slice and queues itself again, so that
other work on the llama.cpp thread (another model, scoring) takes its turn.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# How long one scheduler run keeps the llama.cpp thread before queueing itself again.
SLICE_S = 0.25
PENALTY_LAST_N = 64  # llama-cpp-python's last_n_tokens_size default


@dataclass(frozen=True)
class Sampling:
    """llama.cpp sampler settings of one request (llama-cpp-python's defaults)."""

    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    typical_p: float = 1.0
    repeat_penalty: float = 1.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    seed: int | None = None

    @classmethod
    def of(cls, kwargs: dict[str, Any]) -> Sampling:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in kwargs.items() if k in names})


def build_sampler(sampling: Sampling, n_vocab: int) -> Any:
    """The sampler chain ``Llama._init_sampler`` builds for the same settings."""
    from llama_cpp import _internals

    sampler: Any = _internals.LlamaSampler()  # type: ignore[no-untyped-call]
    sampler.add_penalties(n_vocab=n_vocab, penalty_last_n=PENALTY_LAST_N,
                          penalty_repeat=sampling.repeat_penalty,
                          penalty_freq=sampling.frequency_penalty,
                          penalty_present=sampling.presence_penalty)
    seed = sampling.seed if sampling.seed is not None else random.randint(0, 2**32 - 2)
    if sampling.temperature < 0:
        sampler.add_dist(seed)
    elif sampling.temperature == 0:
        sampler.add_greedy()
    else:
        sampler.add_top_k(sampling.top_k)
        sampler.add_typical(sampling.typical_p, 1)
        sampler.add_top_p(sampling.top_p, 1)
        sampler.add_min_p(sampling.min_p, 1)
        sampler.add_temp(sampling.temperature)
        sampler.add_dist(seed)
    return sampler


@dataclass
class SlotRequest:
    """One generation: its prompt, limits, and where its chunks go (a thread-safe callback)."""

    tokens: list[int]
    sampling: Sampling
    max_tokens: int
    stop: list[bytes]
    deliver: Callable[[Any], None]  # completion-chunk dicts, then Finished or Failed
    prefix_cache: bool = True  # False: evaluate the whole prompt, whatever the slot holds
    cancelled: threading.Event = field(default_factory=threading.Event)
    id: str = field(default_factory=lambda: f"cmpl-{uuid.uuid4()}")
    # scheduler state (llama.cpp thread only)
    slot: int = -1
    reused: int = 0  # prompt tokens whose KV came from the slot's cache
    pending: list[int] = field(default_factory=list)  # prompt tokens not yet evaluated
    next_token: int | None = None  # sampled, not yet in the KV cache
    text: bytes = b""
    generated: int = 0
    sampled: int = 0
    emitted: int = 0  # bytes of ``text`` already delivered
    multibyte_fix: int = 0
    sampler: Any = None


@dataclass(frozen=True)
class Finished:
    finish_reason: str
    sampled: int  # tokens sampled, the one that ended generation included
    reused: int


@dataclass(frozen=True)
class Failed:
    exc: BaseException


class SlotEngine:
    """``slots`` sequences of one model decoded together on the llama.cpp thread."""

    def __init__(self, llama: Any, *, slots: int, n_ctx: int, n_threads: int,
                 submit: Callable[[Callable[[], None]], Any]) -> None:
        """Build on the llama.cpp thread; ``submit`` runs a callable on that thread."""
        import llama_cpp
        from llama_cpp import _internals

        params = type(llama.context_params).from_buffer_copy(llama.context_params)
        params.n_ctx = n_ctx * slots
        params.n_seq_max = slots
        params.kv_unified = False  # a stream per sequence: each has its own n_ctx
        params.n_threads = params.n_threads_batch = n_threads
        self.ctx = _internals.LlamaContext(model=llama._model, params=params, verbose=False)
        self.memory = llama_cpp.llama_get_memory(self.ctx.ctx)
        self.n_batch = int(params.n_batch)
        self.batch = _internals.LlamaBatch(n_tokens=self.n_batch, embd=0, n_seq_max=1,
                                           verbose=False)
        self.llama = llama
        self.vocab = llama._model.vocab
        self.n_vocab = llama.n_vocab()
        self.slots = slots
        self.n_ctx = n_ctx
        self.cached: list[list[int]] = [[] for _ in range(slots)]  # tokens in each slot's KV
        self.owner: list[SlotRequest | None] = [None] * slots
        self._waiting: deque[SlotRequest] = deque()
        self._lock = threading.Lock()
        self._scheduled = False
        self._submit = submit
        self._pieces: dict[int, bytes] = {}
        # For benchmarks: llama_decode calls, the sequences sampled after them, prompt tokens
        # evaluated, seconds inside llama_decode, seconds the scheduler held the thread.
        self.steps = 0
        self.sequences_decoded = 0
        self.prompt_tokens = 0
        self.decode_s = 0.0
        self.busy_s = 0.0

    def busy(self) -> int:
        """Slots holding a request now."""
        return sum(r is not None for r in self.owner)

    def submit(self, request: SlotRequest) -> None:
        """Queue ``request``; its chunks arrive through ``request.deliver``."""
        with self._lock:
            self._waiting.append(request)
            if self._scheduled:
                return
            self._scheduled = True
        self._submit(self._slice)

    # --- the scheduler (llama.cpp thread) -------------------------------------------------
    def _slice(self) -> None:
        started = time.perf_counter()
        try:
            self._steps_until(time.monotonic() + SLICE_S)
        finally:
            self.busy_s += time.perf_counter() - started

    def _steps_until(self, deadline: float) -> None:
        try:
            while time.monotonic() < deadline:
                self._admit()
                if not any(self.owner):
                    with self._lock:
                        if not self._waiting:
                            self._scheduled = False
                            return
                    continue
                self._step()
        except BaseException as exc:  # llama.cpp failed: every request in flight hears it
            self._fail_all(exc)
            return
        try:
            self._submit(self._slice)  # behind whatever else waits for the thread
        except RuntimeError:  # the thread pool is shut down: the process is ending
            self._fail_all(RuntimeError("the llama.cpp thread was shut down"))

    def _admit(self) -> None:
        with self._lock:
            while self._waiting and None in self.owner:
                request = self._waiting.popleft()
                if not request.cancelled.is_set():
                    self._place(request)

    def _place(self, request: SlotRequest) -> None:
        import llama_cpp

        free = [i for i, r in enumerate(self.owner) if r is None]
        common = {i: _common_prefix(self.cached[i], request.tokens) if request.prefix_cache else 0
                  for i in free}
        slot = max(free, key=lambda i: common[i])
        # A fully cached prompt still needs its last token evaluated for fresh logits.
        reuse = min(common[slot], len(request.tokens) - 1)
        if not llama_cpp.llama_memory_seq_rm(self.memory, slot, reuse, -1):
            llama_cpp.llama_memory_seq_rm(self.memory, slot, -1, -1)
            reuse = 0
        self.cached[slot] = self.cached[slot][:reuse]
        request.slot, request.reused, request.pending = slot, reuse, request.tokens[reuse:]
        request.sampler = build_sampler(request.sampling, self.n_vocab)
        self.owner[slot] = request

    def _step(self) -> None:
        """One llama_decode: a token of every decoding sequence, prompt chunks in the room left."""
        want: list[tuple[SlotRequest, int]] = []
        n = 0
        active = [r for r in self.owner if r is not None]
        for request in active:
            if request.cancelled.is_set():
                self._release(request)
            elif request.next_token is not None:
                token, request.next_token = request.next_token, None
                self._put(n, request, token, logits=True)
                want.append((request, n))
                n += 1
        for request in active:
            if request.cancelled.is_set() or not request.pending or n >= self.n_batch:
                continue
            chunk, request.pending = (request.pending[:self.n_batch - n],
                                      request.pending[self.n_batch - n:])
            for k, token in enumerate(chunk):
                self._put(n, request, token, logits=not request.pending and k == len(chunk) - 1)
                n += 1
            self.prompt_tokens += len(chunk)
            if not request.pending:
                want.append((request, n - 1))
        if n == 0:
            return
        self.batch.batch.n_tokens = n
        started = time.perf_counter()
        self.ctx.decode(self.batch)
        self.decode_s += time.perf_counter() - started
        self.steps += 1
        self.sequences_decoded += len(want)
        for request, index in want:
            self._take(request, request.sampler.sample(self.ctx, index))

    def _put(self, k: int, request: SlotRequest, token: int, *, logits: bool) -> None:
        b: Any = self.batch.batch
        cached = self.cached[request.slot]
        b.token[k], b.pos[k], b.n_seq_id[k], b.logits[k] = token, len(cached), 1, int(logits)
        b.seq_id[k][0] = request.slot
        cached.append(token)

    def _take(self, request: SlotRequest, token: int) -> None:
        """A sampled token: end, deliver text, or decode it next step (as create_completion)."""
        import llama_cpp

        request.sampled += 1
        if llama_cpp.llama_vocab_is_eog(self.vocab, token):
            self._finish(request, "stop")
            return
        request.generated += 1
        request.text += self._piece(token)
        request.multibyte_fix = _multibyte_fix(request.text, request.multibyte_fix)
        if request.multibyte_fix > 0:
            request.multibyte_fix -= 1
        else:
            hits = [s for s in request.stop if s in request.text]
            if hits:
                request.text = request.text[:request.text.index(hits[0])]
                self._finish(request, "stop")
                return
            self._deliver_safe_text(request)
            if request.generated >= request.max_tokens:
                self._finish(request, "length")
                return
        request.next_token = token

    def _deliver_safe_text(self, request: SlotRequest) -> None:
        """Deliver what can no longer become part of a stop sequence, whole characters only."""
        text, end = request.text, len(request.text)
        for stop in request.stop:
            for i in range(min(len(stop), end - request.emitted), 0, -1):
                if text.endswith(stop[:i]):
                    end = min(end, len(text) - i)
                    break
        for cut in range(end, max(request.emitted, end - 4) - 1, -1):
            try:
                piece = text[request.emitted:cut].decode("utf-8")
            except UnicodeDecodeError:
                continue
            if piece:
                request.emitted = cut
                request.deliver(_chunk(request.id, piece))
            return

    def _finish(self, request: SlotRequest, reason: str) -> None:
        self._release(request)  # first: whoever hears Finished may find the slot free
        rest = request.text[request.emitted:].decode("utf-8", errors="ignore")
        if rest:
            request.deliver(_chunk(request.id, rest))
        request.deliver(Finished(reason, request.sampled, request.reused))

    def _release(self, request: SlotRequest) -> None:
        # The slot's KV stays: its tokens are a prefix the next prompt may share (a token
        # sampled but never decoded is not in it, nor in ``cached``).
        request.next_token = None
        self.owner[request.slot] = None
        request.sampler = None

    def _piece(self, token: int) -> bytes:
        piece = self._pieces.get(token)
        if piece is None:
            piece = self._pieces[token] = self.llama._model.detokenize([token])
        return piece

    def _fail_all(self, exc: BaseException) -> None:
        import llama_cpp

        with self._lock:
            victims = [r for r in self.owner if r is not None] + list(self._waiting)
            self._waiting.clear()
            self.owner = [None] * self.slots
            self.cached = [[] for _ in range(self.slots)]
            self._scheduled = False
        llama_cpp.llama_memory_clear(self.memory, True)
        for request in victims:
            request.deliver(Failed(exc))


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _multibyte_fix(text: bytes, current: int) -> int:
    """llama-cpp-python's count of tokens to wait for an unfinished UTF-8 character."""
    fix = current
    for k, char in enumerate(text[-3:]):
        k = 3 - k
        for num, pattern in ((2, 192), (3, 224), (4, 240)):
            if num > k and pattern & char == pattern:
                fix = num - k
    return fix


def _chunk(response_id: str, text: str) -> dict[str, Any]:
    return {"id": response_id, "object": "text_completion",
            "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": None}]}
