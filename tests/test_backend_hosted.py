"""What the hosted backends share (``hosted.Endpoint``, ``hosted.LoopClients``): the key from the
environment only, the host and port the spans record, one SDK client per event loop."""

from __future__ import annotations

import asyncio
import logging

import pytest

from shardscope.scaffolds.backends.errors import AuthenticationError
from shardscope.scaffolds.backends.hosted import NO_KEY, Endpoint, LoopClients


def test_a_named_key_variable_must_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLM_API_KEY", raising=False)
    endpoint = Endpoint("vllm", "http://10.0.0.5:8000/v1", "VLLM_API_KEY", keyless=NO_KEY)
    with pytest.raises(AuthenticationError) as raised:
        endpoint.api_key()
    assert str(raised.value) == (
        "vllm: no API key: set the environment variable VLLM_API_KEY "
        "(keys are read from the environment only)"
    )
    monkeypatch.setenv("VLLM_API_KEY", "")
    with pytest.raises(AuthenticationError):
        endpoint.api_key()
    monkeypatch.setenv("VLLM_API_KEY", "plain-vllm-key-0123456789")
    assert endpoint.api_key() == "plain-vllm-key-0123456789"
    assert endpoint.hint() == "check VLLM_API_KEY"


def test_without_a_variable_the_key_is_the_keyless_one() -> None:
    assert Endpoint("openai", "http://127.0.0.1:8080/v1", keyless=NO_KEY).api_key() == NO_KEY
    assert Endpoint("litellm").api_key() is None  # LiteLLM finds the provider's own variable
    assert Endpoint("litellm").hint("check the provider's API key") == "check the provider's API key"


def test_a_found_key_is_kept_out_of_sdk_log_lines(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("FAKE_HOSTED_KEY", "plainsecret-hosted-0123456789")
    Endpoint("fake", "http://127.0.0.1:9", "FAKE_HOSTED_KEY").api_key()
    caplog.set_level(logging.DEBUG)
    logging.getLogger("openai").debug("sending key plainsecret-hosted-0123456789")
    assert "sending key" in caplog.text and "plainsecret-hosted-0123456789" not in caplog.text


@pytest.mark.parametrize(
    ("endpoint", "address", "port", "host"),
    [
        (Endpoint("openai", default_url="https://api.openai.com"), "api.openai.com", 443, "api.openai.com"),
        (Endpoint("vllm", "http://10.0.0.5:8000/v1"), "10.0.0.5", 8000, "http://10.0.0.5:8000/v1"),
        (Endpoint("anthropic", "http://127.0.0.1/"), "127.0.0.1", 80, "http://127.0.0.1/"),
        (Endpoint("litellm"), None, None, "litellm"),
    ],
)
def test_server_address_and_port_come_from_the_url(
    endpoint: Endpoint, address: str | None, port: int | None, host: str
) -> None:
    assert (endpoint.server_address, endpoint.server_port, endpoint.host) == (address, port, host)


class FakeClient:
    def __init__(self, closed: list[FakeClient]) -> None:
        self.closed = closed

    async def close(self) -> None:
        asyncio.get_running_loop()  # an SDK client closes its connections on the loop
        self.closed.append(self)


def test_one_client_per_event_loop_and_all_are_closed() -> None:
    closed: list[FakeClient] = []
    made: list[FakeClient] = []
    clients = LoopClients(lambda: made.append(FakeClient(closed)) or made[-1])

    async def twice() -> tuple[object, object]:
        return clients.get(), clients.get()

    first, again = asyncio.run(twice())
    assert first is again
    (second, _) = asyncio.run(twice())  # a new loop: the first client is not reused
    assert second is not first and len(made) == 2
    asyncio.run(clients.aclose())
    assert closed == [second]
    asyncio.run(clients.aclose())  # nothing left to close
    assert closed == [second]
