"""Teacher-forced scoring through an OpenAI-compatible server's ``/v1/completions``: the
log-probability of each token of a recorded continuation given a text input, for likelihood
attribution of models served over HTTP.

Two wire shapes return log-probabilities of the *prompt's* tokens:

- ``echo: true`` with ``logprobs``: the llama.cpp server (``python -m llama_cpp.server``) and
  vLLM. ``choices[0].logprobs`` holds ``tokens``,
  ``token_logprobs`` and ``text_offset`` of the prompt followed by the generated token;
- ``prompt_logprobs``: vLLM's own field, one ``{token_id: {logprob, decoded_token}}`` per
  prompt token.

Whether a server does either is a capability found by asking it (:func:`probe`): a hosted
chat API (``api.openai.com`` chat models, Anthropic) returns neither, and then likelihood
attribution says so and points to outcome ablation.

The input and the continuation are sent as one text, so the server tokenizes them together;
a token that straddles their boundary is counted with the continuation; the continuation is
found from the end of the echoed tokens (servers blank or drop special tokens).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from shardscope.scaffolds.backends.errors import BackendError, BadRequestError
from shardscope.scaffolds.backends.local_scoring import ScoredContinuation

ECHO = "echo_logprobs"
PROMPT_LOGPROBS = "prompt_logprobs"
PROBE_TEXT = "The capital of France is Paris."


class CannotScoreError(BackendError):
    """The server returns no log-probabilities of a given text (the message says why)."""


@dataclass
class CompletionsScorer:
    """Scores continuations through ``{base_url}/completions`` of one served model."""

    base_url: str
    model: str
    api_key: str | None = None
    timeout_s: float = 300.0
    capability: str | None = None  # ECHO or PROMPT_LOGPROBS once probed
    template: str | None = None  # the server's chat template ("chatml"), to render requests

    supports_scoring = True

    def _post(self, body: Mapping[str, Any]) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        url = self.base_url.rstrip("/") + "/completions"
        try:
            response = httpx.post(url, json=dict(body), headers=headers, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise BackendError(f"{self.model}: cannot reach {url}: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 400:
            raise CannotScoreError(
                f"{self.model}: {url} answered {response.status_code} to a scoring request "
                f"(echo + logprobs): {response.text[:200]}")
        try:
            payload: Any = response.json()
        except ValueError:
            raise CannotScoreError(f"{self.model}: {url} returned a body that is not JSON") from None
        if not isinstance(payload, dict) or not payload.get("choices"):
            raise CannotScoreError(f"{self.model}: {url} returned no choices to a scoring request")
        return payload

    def probe(self) -> str:
        """Which prompt log-probabilities the server returns (ECHO, PROMPT_LOGPROBS), else a
        CannotScoreError saying what it returned instead."""
        choice = self._request(PROBE_TEXT)
        if _echo_tokens(choice, PROBE_TEXT) is not None:
            found = ECHO
        elif choice.get("prompt_logprobs"):
            found = PROMPT_LOGPROBS
        else:
            raise CannotScoreError(
                f"{self.model}: the server at {self.base_url} returns no log-probabilities of the "
                "prompt's tokens (echo + logprobs, or prompt_logprobs): it is a chat-only API "
                "(the llama.cpp server and vLLM return them)")
        self.capability = found
        return found

    def _request(self, text: str) -> dict[str, Any]:
        return self._reply(text)[0]

    def _reply(self, text: str) -> tuple[dict[str, Any], int]:
        """The first choice, and how many generated tokens follow the echo (from usage)."""
        body = {"model": self.model, "prompt": text, "echo": True, "logprobs": 1,
                "max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 0}
        payload = self._post(body)
        choice = payload["choices"][0]
        usage = payload.get("usage")
        generated = usage.get("completion_tokens", 1) if isinstance(usage, dict) else 1
        return (choice if isinstance(choice, dict) else {}), int(generated or 0)

    def score_continuation(self, prompt: str, continuation: str) -> ScoredContinuation:
        """log p of each token of ``continuation`` after ``prompt`` (blocking)."""
        if not continuation:
            raise BadRequestError(f"{self.model}: the recorded output is empty: nothing to score")
        if self.capability is None:
            self.probe()
        choice, generated = self._reply(prompt + continuation)
        if self.capability == ECHO:
            tokens = _echo_tokens(choice, prompt + continuation, generated)
        else:
            tokens = _prompt_logprob_tokens(choice.get("prompt_logprobs"))
        if tokens is None:
            raise CannotScoreError(f"{self.model}: the scoring reply lost its prompt logprobs")
        return continuation_part(tokens, prompt, continuation)


    def render_messages(self, messages: Sequence[Mapping[str, Any]]) -> str:
        """A recorded chat request's messages as the text the server's template made of them
        (with the assistant turn opened), or a CannotScoreError without a known template."""
        if self.template != "chatml":
            raise CannotScoreError(
                f"{self.model}: its chat requests cannot be rendered as text to score: set "
                'scoring_template = "chatml" in its catalog entry when the server applies '
                "ChatML (SmolLM2, Qwen), the only template known")
        return "".join(f"<|im_start|>{m.get('role')}\n{_text(m.get('content'))}<|im_end|>\n"
                       for m in messages) + "<|im_start|>assistant\n"


def _text(content: Any) -> str:
    if isinstance(content, list):  # parts
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return "" if content is None else str(content)


Token = tuple[str, float | None]  # (text, log p given everything before it)


def _echo_tokens(choice: Mapping[str, Any], sent: str, generated: int = 1) -> list[Token] | None:
    """The echoed prompt's tokens (the ``generated`` ones after it dropped), or None when the
    reply has no per-token log p of it. Special tokens (chat markers) may come back as empty
    texts and the BOS not at all: only the prompt's ordinary text is matched, from its end."""
    logprobs = choice.get("logprobs")
    if not isinstance(logprobs, Mapping):
        return None
    texts, values = logprobs.get("tokens"), logprobs.get("token_logprobs")
    if not isinstance(texts, list) or not isinstance(values, list) or len(texts) < 2:
        return None
    keep = len(texts) - generated if generated else len(texts)
    tokens = [(str(t), None if v is None else float(v)) for t, v in zip(texts[:keep], values[:keep], strict=False)]
    if not tokens or all(v is None for _, v in tokens[1:]):
        return None
    return tokens


def _prompt_logprob_tokens(entries: Sequence[Any] | None) -> list[Token] | None:
    """vLLM's ``prompt_logprobs``: per prompt token a {token_id: {logprob, decoded_token}}
    holding the actual token (first, None: nothing precedes it)."""
    if not entries:
        return None
    tokens: list[Token] = []
    for entry in entries:
        if not entry:
            tokens.append(("", None))
            continue
        best = next(iter(entry.values())) if isinstance(entry, Mapping) else None
        if not isinstance(best, Mapping):
            return None
        tokens.append((str(best.get("decoded_token", "")), float(best["logprob"])))
    return tokens


def continuation_part(tokens: Sequence[Token], prompt: str, continuation: str) -> ScoredContinuation:
    """The last tokens of ``prompt + continuation`` that spell ``continuation`` (the first may
    start inside the prompt: it straddles the boundary), as a ScoredContinuation with byte
    offsets relative to the continuation. Matched from the end, since servers drop or blank
    special tokens of the prompt but the continuation is ordinary text."""
    want = len(continuation.encode("utf-8"))
    taken, size = 0, 0
    while taken < len(tokens) and size < want:
        taken += 1
        size += len(tokens[-taken][0].encode("utf-8"))
    picked = list(tokens[len(tokens) - taken:])
    spelled = "".join(t for t, _ in picked)
    if size < want or not spelled.endswith(continuation):
        raise CannotScoreError("the scored reply's last tokens do not spell the recorded output "
                               f"(they spell {spelled[-60:]!r})")
    start = want - size  # <= 0: a straddling token starts inside the prompt
    texts, values, offsets = [], [], []
    for text, value in picked:
        if value is None:
            raise CannotScoreError("the server returned no log p for a continuation token")
        texts.append(text)
        values.append(value)
        offsets.append(max(start, 0))
        start += len(text.encode("utf-8"))
    return ScoredContinuation(tuple(texts), tuple(values), tuple(offsets),
                              prompt_tokens=len(tokens) - taken, evaluated_tokens=len(tokens))
