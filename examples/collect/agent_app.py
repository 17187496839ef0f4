"""Stands in for "your existing app": an agent instrumented with plain OpenTelemetry, which
knows nothing about shardscope. It emits GenAI-convention spans (invoke_agent → chat →
execute_tool → chat) and, as opentelemetry-instrumentation-openai-v2 does with
OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true, the message content as log events.

Where it exports is configured only by the standard variables, exactly as for
`opentelemetry-instrument`: OTEL_EXPORTER_OTLP_PROTOCOL (grpc or http/protobuf),
OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS, OTEL_SERVICE_NAME.

    python agent_app.py "What is 6 times 7?"
"""

from __future__ import annotations

import json
import os
import sys

from opentelemetry import trace
from opentelemetry._logs import LogRecord
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def exporters() -> tuple:
    """The SDK's OTLP exporters for OTEL_EXPORTER_OTLP_PROTOCOL (they read the endpoint and
    headers variables themselves)."""
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    elif protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    else:
        raise SystemExit(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: use grpc or http/protobuf")
    return OTLPSpanExporter(), OTLPLogExporter()


def content_event(logger, name: str, body: dict) -> None:
    logger.emit(LogRecord(event_name=name, body=body, attributes={"gen_ai.system": "openai"}))


def chat(tracer, logger, question: str, answer: str, tokens: tuple[int, int]) -> None:
    with tracer.start_as_current_span("chat toy-model", kind=trace.SpanKind.CLIENT, attributes={
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "toy-model", "gen_ai.response.model": "toy-model",
        "gen_ai.usage.input_tokens": tokens[0], "gen_ai.usage.output_tokens": tokens[1],
        "gen_ai.response.finish_reasons": ("stop",),
    }):
        content_event(logger, "gen_ai.user.message", {"content": question})
        content_event(logger, "gen_ai.choice", {"index": 0, "finish_reason": "stop",
                                                "message": {"role": "assistant", "content": answer}})


def main() -> None:
    question = sys.argv[1] if len(sys.argv) > 1 else "What is 6 times 7?"
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "toy-agent")})
    span_exporter, log_exporter = exporters()
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(log_exporter))
    tracer = tracer_provider.get_tracer("toy-agent", "1.0")
    logger = logger_provider.get_logger("toy-agent")
    with tracer.start_as_current_span("invoke_agent calculator", attributes={
            "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "calculator"}):
        chat(tracer, logger, question, "call multiply(6, 7)", (31, 9))
        with tracer.start_as_current_span("execute_tool multiply", attributes={
                "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "multiply",
                "gen_ai.tool.call.arguments": json.dumps({"a": 6, "b": 7}),
                "gen_ai.tool.call.result": "42"}):
            pass
        chat(tracer, logger, "multiply returned 42", "6 times 7 is 42.", (52, 8))
    # Flush before exiting, as any short-lived program must.
    tracer_provider.shutdown()
    logger_provider.shutdown()


if __name__ == "__main__":
    main()
