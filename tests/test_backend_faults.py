"""Retries against a fault-injecting loopback server, through the real openai, anthropic and
litellm clients: which errors are retried, Retry-After, timeouts, broken bodies and streams,
and what lands in the store (llm_calls.attempts, the llm_attempts view)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from shardscope.scaffolds.backends.errors import (
    AuthenticationError,
    BadRequestError,
    CallTimeoutError,
    ModelNotFoundError,
    OverloadedError,
    RateLimitError,
    ServerError,
)
from shardscope.scaffolds.backends.provider_errors import error_for_status, parse_retry_after
from shardscope.scaffolds.backends.registry import open_model
from shardscope.scaffolds.backends.traced import RetryPolicy
from shardscope.scaffolds.types import GenerationConfig, Message
from tests.servers import fake_provider as fp
from tests.servers.backend_helpers import RecordingSleep, fake_catalog, rows

HOSTED = ["fake-openai", "fake-anthropic", "fake-litellm"]
MESSAGES = [Message("system", "Answer briefly."), Message("user", "Say hello.")]


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-faults-0123456789abcdef")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-faults-0123456789abcdef")


@pytest.fixture
def catalog(fake_provider: fp.FakeProvider, tmp_path: Path, keys: None):
    return fake_catalog(tmp_path, fake_provider.base_url)


def call(model, *, stream: bool = False, config: GenerationConfig | None = None):
    return asyncio.run(model.generate(MESSAGES, (), config or GenerationConfig(timeout_s=5), stream=stream))


def attempts(db_path: Path) -> list[dict]:
    return rows(db_path, "SELECT * FROM llm_attempts ORDER BY attempt")


def the_call(db_path: Path) -> dict:
    (row,) = rows(db_path, "SELECT * FROM llm_calls")
    return row


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("model_id", HOSTED)
def test_rate_limit_waits_for_retry_after_then_succeeds(
    model_id, stream, catalog, fake_provider, tracing, db_path
) -> None:
    fake_provider.script(fp.status(429, "slow down", retry_after="1"), fp.ok("Hello after waiting."))
    sleep = RecordingSleep()
    output = call(open_model(catalog.get(model_id), tracing, sleep=sleep), stream=stream)
    tracing.shutdown()

    assert output.text == "Hello after waiting."
    assert sleep.waits == [1.0]  # the server's Retry-After, not the exponential backoff
    assert len(fake_provider.requests) == 2  # SDK retries are off: every request is ours
    (failed,) = attempts(db_path)
    assert (failed["attempt"], failed["error_type"], failed["status_code"]) == (1, "rate_limited", 429)
    assert (failed["retry_after_s"], failed["wait_s"]) == (1.0, 1.0)
    row = the_call(db_path)
    assert (row["attempts"], row["status_code"], row["streamed"]) == (2, "UNSET", stream)


@pytest.mark.parametrize("model_id", HOSTED)
def test_server_errors_are_retried_with_backoff(model_id, catalog, fake_provider, tracing, db_path) -> None:
    fake_provider.script(fp.status(500), fp.status(503), fp.ok("Recovered."))
    sleep = RecordingSleep()
    policy = RetryPolicy(max_attempts=4, initial_wait_s=0.5)
    assert call(open_model(catalog.get(model_id), tracing, sleep=sleep, retry=policy)).text == "Recovered."
    tracing.shutdown()

    assert len(sleep.waits) == 2
    assert 0.4 <= sleep.waits[0] <= 0.6 and 0.8 <= sleep.waits[1] <= 1.2  # 0.5 * 2**n, +-20 %
    assert [(a["error_type"], a["status_code"]) for a in attempts(db_path)] == [
        ("server_error", 500), ("server_error", 503)]
    assert the_call(db_path)["attempts"] == 3


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("model_id", HOSTED)
def test_overloaded_529_is_retried(model_id, stream, catalog, fake_provider, tracing, db_path) -> None:
    fake_provider.script(fp.status(529, "Overloaded"), fp.ok("Capacity again."))
    output = call(open_model(catalog.get(model_id), tracing, sleep=RecordingSleep()), stream=stream)
    tracing.shutdown()
    assert output.text == "Capacity again."
    assert [(a["error_type"], a["status_code"]) for a in attempts(db_path)] == [("overloaded", 529)]


def test_anthropic_overloaded_error_event_mid_stream_is_retried(catalog, fake_provider, tracing, db_path) -> None:
    fake_provider.script(fp.error_event("overloaded_error", after=4), fp.ok("Second try worked."))
    model = open_model(catalog.get("fake-anthropic"), tracing, sleep=RecordingSleep())
    output = call(model, stream=True)
    tracing.shutdown()
    assert output.text == "Second try worked."
    assert [a["error_type"] for a in attempts(db_path)] == ["overloaded"]
    # Tokens of the failed attempt never mix with the answer's.
    tokens = rows(db_path, "SELECT token FROM token_events ORDER BY token_index")
    assert "".join(t["token"] for t in tokens) == "Second try worked."


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("model_id", HOSTED)
def test_per_call_timeout_then_give_up(model_id, stream, catalog, fake_provider, tracing, db_path) -> None:
    answer = threading.Event()  # both answers are held until the call has given up
    fake_provider.script(fp.held(answer), fp.held(answer))
    model = open_model(catalog.get(model_id), tracing, sleep=RecordingSleep(), retry=RetryPolicy(max_attempts=2))
    try:
        with pytest.raises(CallTimeoutError):  # so neither attempt waited for its answer
            call(model, stream=stream, config=GenerationConfig(timeout_s=0.3))
    finally:
        answer.set()
    tracing.shutdown()

    failed = attempts(db_path)
    assert [a["error_type"] for a in failed] == ["timeout", "timeout"]
    assert all(a["duration_ms"] >= 250 for a in failed)  # each waited out its own timeout
    row = the_call(db_path)
    assert (row["status_code"], row["error_type"], row["attempts"]) == ("ERROR", "timeout", 2)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("model_id", HOSTED)
def test_malformed_json_is_retried(model_id, stream, catalog, fake_provider, tracing, db_path) -> None:
    fake_provider.script(fp.malformed(), fp.ok("Valid now."))
    output = call(open_model(catalog.get(model_id), tracing, sleep=RecordingSleep()), stream=stream)
    tracing.shutdown()
    assert output.text == "Valid now."
    (failed,) = attempts(db_path)
    assert failed["error_type"] in {"malformed_response", "stream_interrupted"} if stream else (
        failed["error_type"] == "malformed_response")


@pytest.mark.parametrize("fault", [fp.cut, fp.no_end], ids=["connection-cut", "no-terminal-event"])
@pytest.mark.parametrize("model_id", HOSTED)
def test_stream_cut_mid_way_is_retried(model_id, fault, catalog, fake_provider, tracing, db_path) -> None:
    fake_provider.script(fault(after=3), fp.ok("The full answer arrives."))
    output = call(open_model(catalog.get(model_id), tracing, sleep=RecordingSleep()), stream=True)
    tracing.shutdown()

    assert output.text == "The full answer arrives."
    (failed,) = attempts(db_path)
    assert failed["error_type"] == "stream_interrupted"
    tokens = rows(db_path, "SELECT token, offset_ms FROM token_events ORDER BY token_index")
    assert "".join(t["token"] for t in tokens) == "The full answer arrives."
    assert [t["offset_ms"] for t in tokens] == sorted(t["offset_ms"] for t in tokens)


@pytest.mark.parametrize("model_id", HOSTED)
def test_authentication_error_fails_at_once(model_id, catalog, fake_provider, tracing, db_path) -> None:
    fake_provider.script(fp.status(401, "invalid x-api-key"))
    sleep = RecordingSleep()
    with pytest.raises(AuthenticationError) as raised:
        call(open_model(catalog.get(model_id), tracing, sleep=sleep))
    tracing.shutdown()

    assert "API_KEY" in str(raised.value)  # says which variable to fix
    assert len(fake_provider.requests) == 1 and sleep.waits == []
    (failed,) = attempts(db_path)
    assert (failed["error_type"], failed["status_code"], failed["wait_s"]) == ("authentication_error", 401, None)
    row = the_call(db_path)
    assert (row["status_code"], row["error_type"], row["attempts"]) == ("ERROR", "authentication_error", 1)


@pytest.mark.parametrize(("code", "error"), [(400, BadRequestError), (422, BadRequestError), (404, ModelNotFoundError)])
@pytest.mark.parametrize("model_id", ["fake-openai", "fake-anthropic"])
def test_bad_request_and_unknown_model_fail_at_once(model_id, code, error, catalog, fake_provider, tracing) -> None:
    fake_provider.script(fp.status(code, "no such thing"))
    with pytest.raises(error):
        call(open_model(catalog.get(model_id), tracing, sleep=RecordingSleep()))
    assert len(fake_provider.requests) == 1


def test_gives_up_after_the_last_attempt(catalog, fake_provider, tracing, db_path) -> None:
    fake_provider.script(*[fp.status(500)] * 3)
    model = open_model(catalog.get("fake-openai"), tracing, sleep=RecordingSleep(), retry=RetryPolicy(max_attempts=3))
    with pytest.raises(ServerError):
        call(model)
    tracing.shutdown()
    assert len(fake_provider.requests) == 3
    assert [a["attempt"] for a in attempts(db_path)] == [1, 2, 3]
    assert attempts(db_path)[-1]["wait_s"] is None  # the last failure was not followed by a wait
    row = the_call(db_path)
    assert (row["status_code"], row["error_type"], row["attempts"]) == ("ERROR", "server_error", 3)


def test_a_retry_after_beyond_the_policy_fails_at_once(catalog, fake_provider, tracing) -> None:
    fake_provider.script(fp.status(429, retry_after="3600"))
    sleep = RecordingSleep()
    with pytest.raises(RateLimitError) as raised:
        call(open_model(catalog.get("fake-anthropic"), tracing, sleep=sleep))
    assert raised.value.retry_after == 3600.0 and sleep.waits == []


# --- the mapping itself -----------------------------------------------------------------------


def test_retry_after_in_seconds_milliseconds_and_http_dates() -> None:
    assert parse_retry_after({"Retry-After": "7"}) == 7.0
    assert parse_retry_after({"retry-after": "0.5"}) == 0.5
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    now = 1_700_000_000.0
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(now + 30))
    assert parse_retry_after({"Retry-After": date}, now=now) == pytest.approx(30.0)
    assert parse_retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0  # past
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after(None) is None


@pytest.mark.parametrize(
    ("status", "kind", "expected"),
    [
        (429, None, RateLimitError),
        (500, None, ServerError),
        (502, None, ServerError),
        (503, None, ServerError),
        (529, None, OverloadedError),
        (200, "overloaded_error", OverloadedError),  # an error event inside a stream
        (500, "overloaded_error", OverloadedError),
        (401, None, AuthenticationError),
        (403, None, AuthenticationError),
        (400, None, BadRequestError),
        (422, None, BadRequestError),
        (404, None, ModelNotFoundError),
        (408, None, CallTimeoutError),
    ],
)
def test_status_codes_map_to_our_errors(status: int, kind: str | None, expected: type) -> None:
    error = error_for_status("prov", status, "text", headers={"Retry-After": "3"}, kind=kind)
    assert type(error) is expected
    assert error.retryable == expected.retryable
    if expected in (RateLimitError, OverloadedError):
        assert error.retry_after == 3.0
