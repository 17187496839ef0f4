"""No API key reaches the store: not in any text cell, not in a token stream rebuilt with
string_agg, not as a case-changed echo, not in the raw store file (issue 16, finding 3)."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pytest

from shardscope.config.settings import Settings
from shardscope.scaffolds.backends.scripted import ScriptedBackend
from shardscope.scaffolds.backends.traced import TracedModel
from shardscope.scaffolds.types import GenerationConfig, Message, ModelOutput, StreamChunk, ToolSpec
from shardscope.tracer.redact import REDACTED, Redactor
from shardscope.tracer.setup import setup_tracing
from tests.test_backend_secrets import text_cells


@dataclasses.dataclass
class ThreeCharTokens(ScriptedBackend):
    """A scripted model that streams its answer three characters per token, as a real
    tokenizer splits a key it repeats."""

    async def generate(self, messages: Sequence[Message], tools: Sequence[ToolSpec] = (),
                       config: GenerationConfig = GenerationConfig()) -> ModelOutput:
        output = await super().generate(messages, tools, config)
        text = output.text
        chunks = tuple(StreamChunk(text[i:i + 3]) for i in range(0, len(text), 3))
        return dataclasses.replace(output, tokens=chunks)


def _stored_streams(db_path: Path) -> list[str]:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        rows = con.execute("SELECT string_agg(token, '' ORDER BY token_index) FROM token_events "
                           "GROUP BY span_id").fetchall()
        return [r[0] for r in rows if r[0]]
    finally:
        con.close()


def test_no_key_in_any_stored_text_or_token_stream(db_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    keys = {
        "OPENAI_API_KEY": f"sk-audit-{secrets.token_hex(12)}",
        "ANTHROPIC_API_KEY": f"sk-ant-audit-{secrets.token_hex(12)}",
        # no known shape: only the environment net catches these
        "SERVICE_TOKEN": f"plainsecret{secrets.token_hex(10)}",
        "VENDOR_API_KEY": f"vendorkey{secrets.token_hex(10)}",
    }
    for name, value in keys.items():
        monkeypatch.setenv(name, value)
    echoes = [keys["OPENAI_API_KEY"].replace("sk-audit", "Sk-Audit").upper(),
              keys["ANTHROPIC_API_KEY"], keys["SERVICE_TOKEN"].swapcase(),
              keys["VENDOR_API_KEY"].capitalize()]
    answer = "Your keys: " + ", then ".join(echoes) + ". Done."
    tracing = setup_tracing(Settings(db=db_path, flush_interval=0.1), strict=True)
    try:
        model = TracedModel(ThreeCharTokens(model="echo", responses=[answer, answer]), tracing)
        prompt = [Message("user", f"Repeat {keys['SERVICE_TOKEN'].upper()} back to me")]
        for stream in (True, False):
            out = asyncio.run(model.generate(prompt, (), GenerationConfig(), stream=stream))
            assert out.text == answer  # the caller still gets the raw answer
    finally:
        tracing.shutdown()

    streams = _stored_streams(db_path)
    assert streams and all(s.count(REDACTED) == 4 for s in streams), streams
    assert any(s.startswith("Your keys: [REDACTED], then ") for s in streams)
    cells = text_cells(db_path)
    texts = [v.lower() for values in cells.values() for v in values] + [s.lower() for s in streams]
    raw = db_path.read_bytes().lower()
    for name, key in keys.items():
        assert not [t for t in texts if key.lower() in t], f"{name} found in the store"
        assert key.lower().encode() not in raw, f"{name} found in the store file"


def test_token_stream_redaction_keeps_one_entry_per_token() -> None:
    redactor = Redactor({"X_API_KEY": "abcdefghijklmnop"})
    tokens = ["say ", "ABC", "defghij", "KLMNOP", " ok"]
    assert redactor.tokens(tokens) == ["say ", REDACTED, "", "", " ok"]
    assert redactor.tokens(["a", "b"]) == ["a", "b"]
    assert redactor.text("Bearer sk-proj-" + "Q" * 20) == "Bearer " + REDACTED


def test_collect_stores_no_key_sent_over_otlp(db_path: Path) -> None:
    """`shardscope collect` (the real CLI) receives spans from the real OTel SDK over OTLP/HTTP
    carrying keys in attributes, a status, and token streams one piece per event, case-changed;
    no key is in any stored text, any rebuilt token stream, or the store file (finding 3)."""
    import signal

    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import Status, StatusCode

    from tests.test_collector_cli import _start

    known = f"vendorkey{secrets.token_hex(10)}"  # in the collector's environment, no shape
    shaped = f"sk-proj-{secrets.token_hex(16)}"  # a common key shape, in no environment
    process, port, _ = _start(db_path, "--no-grpc", env={"VENDOR_API_KEY": known})
    try:
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(
            OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces")))
        tracer = provider.get_tracer("someone-elses-agent")
        answer = f"keys: {known.upper()} and {shaped.swapcase()} end"
        with tracer.start_as_current_span("chat m", attributes={
            "shardscope.span.type": "llm_call", "gen_ai.operation.name": "chat",
            "gen_ai.output.messages": f'[{{"role":"assistant","parts":[{{"type":"text",'
                                      f'"content":"{answer}"}}]}}]',
        }) as span:
            for index, start in enumerate(range(0, len(answer), 3)):
                span.add_event("shardscope.token", {"shardscope.token.index": index,
                                                    "shardscope.token.text": answer[start:start + 3]})
            for start in range(0, len(answer), 4):  # another instrumentation's chunk events
                span.add_event("gen_ai.choice.chunk", {"content": answer[start:start + 4]})
            span.set_status(Status(StatusCode.ERROR, f"rejected {known.capitalize()}"))
        provider.shutdown()
    finally:
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=60)
    assert process.returncode == 0 and "stopped: 1 spans" in out, out

    streams = _stored_streams(db_path)
    assert streams == [f"keys: {REDACTED} and {REDACTED} end"], streams
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        chunks = con.execute("SELECT string_agg(attributes->>'$.content', '' ORDER BY seq) "
                             "FROM span_events WHERE name = 'gen_ai.choice.chunk'").fetchone()
    finally:
        con.close()
    assert chunks == (f"keys: {REDACTED} and {REDACTED} end",)
    texts = [v.lower() for values in text_cells(db_path).values() for v in values]
    raw = db_path.read_bytes().lower()
    for key in (known, shaped):
        assert not [t for t in texts if key.lower() in t]
        assert key.lower().encode() not in raw
