"""A loopback HTTP server that speaks OpenAI chat completions and Anthropic Messages, with a
script of faults per test: 429 + Retry-After, 500, 529 overloaded, slow or held answers (timeouts),
malformed JSON, streams cut mid-way or ending without their terminal event, error events.

The real ``openai``, ``anthropic`` and ``litellm`` clients talk to it unchanged. Every request
is recorded (path, headers, JSON body) so tests can count attempts and inspect what was sent.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

OPENAI_PATH = "/v1/chat/completions"
ANTHROPIC_PATH = "/v1/messages"


@dataclass(frozen=True)
class Reply:
    """What the server does with one request."""

    kind: str = "ok"  # ok | status | malformed | cut | no_end | error_event
    status: int = 200
    message: str = ""
    error_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    delay_s: float = 0.0
    text: str = "Hello from the fake provider."
    tool_call: tuple[str, str] | None = None  # (name, arguments JSON text)
    cut_after: int = 2  # stream events sent before a cut
    echo_auth: bool = False  # put the request's credential into the answer (secrets tests)
    gate: threading.Event | None = None  # answer only once the test sets it (or after 300 s)


def ok(text: str = "Hello from the fake provider.", **kw: Any) -> Reply:
    return Reply(text=text, **kw)


def tool(name: str, arguments: dict[str, Any] | str, text: str = "") -> Reply:
    raw = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return Reply(text=text, tool_call=(name, raw))


def status(code: int, message: str = "scripted failure", *, retry_after: str | None = None,
           error_type: str | None = None, echo_auth: bool = False) -> Reply:
    headers = (("Retry-After", retry_after),) if retry_after is not None else ()
    return Reply("status", code, message, error_type, headers, echo_auth=echo_auth)


def slow(delay_s: float, **kw: Any) -> Reply:
    return Reply(delay_s=delay_s, **kw)


def held(gate: threading.Event, **kw: Any) -> Reply:
    """An answer that waits for ``gate``: a client that gives up first provably did not wait."""
    return Reply(gate=gate, **kw)


def malformed() -> Reply:
    return Reply("malformed")


def cut(after: int = 2) -> Reply:
    return Reply("cut", cut_after=after)


def no_end(after: int = 2) -> Reply:
    return Reply("no_end", cut_after=after)


def error_event(error_type: str = "overloaded_error", after: int = 2) -> Reply:
    return Reply("error_event", error_type=error_type, message="Overloaded", cut_after=after)


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeProvider:
    """The server; ``script(...)`` queues replies, unscripted requests get ``ok()``."""

    replies: deque[Reply] = field(default_factory=deque)
    requests: list[Recorded] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"provider": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def next_reply(self, recorded: Recorded) -> Reply:
        with self._lock:
            self.requests.append(recorded)
            return self.replies.popleft() if self.replies else ok()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    provider: FakeProvider

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        recorded = Recorded(self.path, dict(self.headers.items()), body)
        reply = self.provider.next_reply(recorded)
        shape = _Anthropic() if self.path.startswith(ANTHROPIC_PATH) else _OpenAI()
        if reply.delay_s:
            time.sleep(reply.delay_s)
        if reply.gate is not None:
            reply.gate.wait(300)
        try:
            self._answer(reply, shape, body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout): nothing to answer

    def _answer(self, reply: Reply, shape: _Shape, body: dict[str, Any]) -> None:
        secret = self.headers.get("Authorization", "") + self.headers.get("x-api-key", "")
        if reply.kind == "status":
            message = reply.message + (f" (you sent {secret})" if reply.echo_auth else "")
            self._json(reply.status, shape.error(reply.status, message, reply.error_type), reply.headers)
        elif reply.kind == "malformed":
            self._raw(200, b'{"id": "broken", "choices": [ {"message": ', "application/json")
        elif body.get("stream"):
            self._stream(shape.events(body, reply, secret), reply)
        else:
            self._json(200, shape.response(body, reply, secret), ())

    def _json(self, code: int, payload: Any, headers: tuple[tuple[str, str], ...]) -> None:
        self._raw(code, json.dumps(payload).encode(), "application/json", headers)

    def _raw(self, code: int, data: bytes, kind: str, headers: tuple[tuple[str, str], ...] = ()) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, events: list[str], reply: Reply) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if reply.kind in ("cut", "no_end", "error_event"):
            events = events[: reply.cut_after]
        if reply.kind == "error_event":
            error = {"type": "error", "error": {"type": reply.error_type, "message": reply.message}}
            events.append(f"event: error\ndata: {json.dumps(error)}\n\n")
        for event in events:
            data = event.encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        if reply.kind == "cut":
            # Promise a chunk and hang up half-way: the client sees a broken body.
            self.wfile.write(b"400\r\ndata: {\"partial")
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def _words(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)] if text else []


def _prompt_tokens(body: dict[str, Any]) -> int:
    return sum(len(str(m.get("content", "")).split()) for m in body.get("messages", [])) + 3


class _Shape:
    def error(self, code: int, message: str, error_type: str | None) -> Any: ...
    def response(self, body: dict[str, Any], reply: Reply, secret: str) -> Any: ...
    def events(self, body: dict[str, Any], reply: Reply, secret: str) -> list[str]: ...


class _OpenAI(_Shape):
    def error(self, code: int, message: str, error_type: str | None) -> Any:
        kind = error_type or {429: "rate_limit_exceeded", 401: "invalid_request_error"}.get(code, "server_error")
        return {"error": {"message": message, "type": kind, "code": None, "param": None}}

    def _text(self, reply: Reply, secret: str) -> str:
        return reply.text + (f" Your key: {secret}" if reply.echo_auth else "")

    def response(self, body: dict[str, Any], reply: Reply, secret: str) -> Any:
        text = self._text(reply, secret)
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if reply.tool_call:
            message["tool_calls"] = [{"id": "call_fake_1", "type": "function",
                                      "function": {"name": reply.tool_call[0], "arguments": reply.tool_call[1]}}]
        choice: dict[str, Any] = {"index": 0, "message": message,
                                  "finish_reason": "tool_calls" if reply.tool_call else "stop"}
        if body.get("logprobs"):
            choice["logprobs"] = {"content": [
                {"token": w, "logprob": -0.5, "bytes": None,
                 "top_logprobs": [{"token": w, "logprob": -0.5, "bytes": None}]} for w in _words(text)]}
        return {"id": "chatcmpl-fake-1", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model"), "choices": [choice],
                "usage": {"prompt_tokens": _prompt_tokens(body), "completion_tokens": len(_words(text)),
                          "total_tokens": _prompt_tokens(body) + len(_words(text))}}

    def events(self, body: dict[str, Any], reply: Reply, secret: str) -> list[str]:
        text = self._text(reply, secret)

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
            payload = {"id": "chatcmpl-fake-1", "object": "chat.completion.chunk",
                       "created": int(time.time()), "model": body.get("model"),
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish, **extra}]}
            return f"data: {json.dumps(payload)}\n\n"

        events = [chunk({"role": "assistant", "content": ""})]
        for word in _words(text):
            extra = {"logprobs": {"content": [{"token": word, "logprob": -0.25, "bytes": None,
                                               "top_logprobs": []}]}} if body.get("logprobs") else {}
            events.append(chunk({"content": word}, **extra))
        if reply.tool_call:
            name, arguments = reply.tool_call
            events.append(chunk({"tool_calls": [{"index": 0, "id": "call_fake_1", "type": "function",
                                                 "function": {"name": name, "arguments": ""}}]}))
            for i in range(0, len(arguments), 8):
                events.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": arguments[i:i + 8]}}]}))
        events.append(chunk({}, "tool_calls" if reply.tool_call else "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {"id": "chatcmpl-fake-1", "object": "chat.completion.chunk", "created": int(time.time()),
                     "model": body.get("model"), "choices": [],
                     "usage": {"prompt_tokens": _prompt_tokens(body), "completion_tokens": len(_words(text)),
                               "total_tokens": _prompt_tokens(body) + len(_words(text))}}
            events.append(f"data: {json.dumps(usage)}\n\n")
        events.append("data: [DONE]\n\n")
        return events


class _Anthropic(_Shape):
    def error(self, code: int, message: str, error_type: str | None) -> Any:
        kind = error_type or {429: "rate_limit_error", 529: "overloaded_error", 401: "authentication_error",
                              400: "invalid_request_error", 404: "not_found_error"}.get(code, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}

    def response(self, body: dict[str, Any], reply: Reply, secret: str) -> Any:
        text = reply.text + (f" Your key: {secret}" if reply.echo_auth else "")
        content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
        if reply.tool_call:
            content.append({"type": "tool_use", "id": "toolu_fake_1", "name": reply.tool_call[0],
                            "input": json.loads(reply.tool_call[1])})
        return {"id": "msg_fake_1", "type": "message", "role": "assistant", "model": body.get("model"),
                "content": content, "stop_reason": "tool_use" if reply.tool_call else "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": _prompt_tokens(body), "output_tokens": len(_words(text))}}

    def events(self, body: dict[str, Any], reply: Reply, secret: str) -> list[str]:
        text = reply.text + (f" Your key: {secret}" if reply.echo_auth else "")

        def event(kind: str, **payload: Any) -> str:
            return f"event: {kind}\ndata: {json.dumps({'type': kind, **payload})}\n\n"

        start = {"id": "msg_fake_1", "type": "message", "role": "assistant", "model": body.get("model"),
                 "content": [], "stop_reason": None, "stop_sequence": None,
                 "usage": {"input_tokens": _prompt_tokens(body), "output_tokens": 1}}
        events = [event("message_start", message=start),
                  event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
                  "event: ping\ndata: {\"type\": \"ping\"}\n\n"]
        events += [event("content_block_delta", index=0, delta={"type": "text_delta", "text": w})
                   for w in _words(text)]
        events.append(event("content_block_stop", index=0))
        if reply.tool_call:
            name, arguments = reply.tool_call
            events.append(event("content_block_start", index=1, content_block={
                "type": "tool_use", "id": "toolu_fake_1", "name": name, "input": {}}))
            events += [event("content_block_delta", index=1,
                             delta={"type": "input_json_delta", "partial_json": arguments[i:i + 8]})
                       for i in range(0, len(arguments), 8)]
            events.append(event("content_block_stop", index=1))
        events.append(event("message_delta", delta={"stop_reason": "tool_use" if reply.tool_call else "end_turn",
                                                    "stop_sequence": None},
                            usage={"output_tokens": len(_words(text))}))
        events.append(event("message_stop"))
        return events
