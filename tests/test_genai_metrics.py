"""GenAI client metrics through the real SDK MeterProvider: what a run records equals what the
store's `genai_metrics` view derives from its spans, and with the `otlp` exporter on the
metrics reach an OTLP/HTTP receiver on loopback."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader

from shardscope.config.settings import Settings
from shardscope.scaffolds.backends.errors import BackendError
from shardscope.scaffolds.backends.scripted import Scripted, ScriptedBackend
from shardscope.scaffolds.backends.traced import RetryPolicy, TracedModel
from shardscope.scaffolds.runner.matrix import MatrixSpec
from shardscope.scaffolds.runner.runner import Runner
from shardscope.scaffolds.types import Message, ToolCall
from shardscope.tracer import attributes as A
from shardscope.tracer.queries.frames import read_frame
from shardscope.tracer.setup import setup_tracing
from shardscope.tracer.store import Store
from tests import fakes
from tests.helpers.otlp_receiver import otlp_receiver

METRICS = (A.METRIC_OPERATION_DURATION, A.METRIC_TOKEN_USAGE, A.METRIC_TIME_TO_FIRST_CHUNK,
           A.METRIC_TIME_PER_OUTPUT_CHUNK)


def _policy(messages, tools, config):
    if len(messages) <= 2:
        return Scripted(tool_calls=(ToolCall("c", "add", {"a": 2, "b": 3}),))
    return Scripted(text="The sum of two and three is five. Final Answer: 5", delay_s=0.001)


def _points(reader: InMemoryMetricReader) -> dict[tuple[str, str | None], list[HistogramDataPoint]]:
    """Histogram points by (metric, gen_ai.token.type)."""
    data = reader.get_metrics_data()
    out: dict[tuple[str, str | None], list[Any]] = defaultdict(list)
    assert data is not None
    for resource_metrics in data.resource_metrics:
        for scope in resource_metrics.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    out[(metric.name, point.attributes.get(A.GEN_AI_TOKEN_TYPE))].append(point)
    return out


def test_recorded_metrics_equal_the_store_view(db_path: Path) -> None:
    reader = InMemoryMetricReader()
    tracing = setup_tracing(Settings(db=db_path, flush_interval=0.1), strict=True,
                            metric_readers=[reader])
    models = {n: TracedModel(ScriptedBackend(model=f"{n}-v1", policy=_policy), tracing, model_id=n)
              for n in ("toy-a", "toy-b")}
    spec = MatrixSpec(suites=("toy",), models=tuple(models), scaffolds=("react-tools",), seeds=2)
    asyncio.run(Runner(tracing, fakes.resources(models, tasks=3), progress=False).run(spec))
    tracing.force_flush()
    points = _points(reader)
    tracing.shutdown()

    view = read_frame(Store(db_path), "SELECT metric, token_type, count(*) AS n, sum(value) AS total "
                                      "FROM genai_metrics GROUP BY ALL")
    assert set(view.metric) == set(METRICS)
    for row in view.itertuples():
        key = (row.metric, None if row.token_type is None or row.token_type != row.token_type
               else row.token_type)
        recorded = points[key]
        assert sum(p.count for p in recorded) == row.n, key
        assert sum(p.sum for p in recorded) == pytest.approx(row.total, rel=1e-6, abs=1e-9), key
    # 12 episodes x 2 calls; every call streamed; the final answers stream 11 chunks each
    assert int(view[view.metric == A.METRIC_OPERATION_DURATION].n.iloc[0]) == 24
    assert int(view[view.metric == A.METRIC_TIME_PER_OUTPUT_CHUNK].n.iloc[0]) == 12 * 10
    attrs = {k: v for p in points[(A.METRIC_OPERATION_DURATION, None)] for k, v in p.attributes.items()}
    assert attrs[A.GEN_AI_OPERATION_NAME] == "chat" and attrs[A.GEN_AI_PROVIDER_NAME] == "scripted"
    models_seen = {p.attributes[A.GEN_AI_REQUEST_MODEL] for p in points[(A.METRIC_TOKEN_USAGE, "output")]}
    assert models_seen == {"toy-a-v1", "toy-b-v1"}


def test_a_failed_call_records_its_duration_with_error_type(db_path: Path) -> None:
    reader = InMemoryMetricReader()
    tracing = setup_tracing(Settings(db=db_path), strict=True, metric_readers=[reader])
    error = _BadRequest("no such model", status_code=400)
    model = TracedModel(ScriptedBackend(responses=[error]), tracing, retry=RetryPolicy(max_attempts=1))
    with pytest.raises(BackendError):
        asyncio.run(model.generate([Message("user", "hi")]))
    points = _points(reader)
    tracing.shutdown()
    (point,) = points[(A.METRIC_OPERATION_DURATION, None)]
    assert point.attributes[A.ERROR_TYPE] == "bad_request" and point.count == 1
    assert not points.get((A.METRIC_TOKEN_USAGE, "input"))
    (row,) = read_frame(Store(db_path), "SELECT metric, error_type FROM genai_metrics").itertuples()
    assert (row.metric, row.error_type) == (A.METRIC_OPERATION_DURATION, "bad_request")


class _BadRequest(BackendError):
    error_type = "bad_request"


def test_metrics_go_out_over_otlp_with_the_spans(db_path: Path) -> None:
    with otlp_receiver() as received:
        settings = Settings(db=db_path, exporters=("duckdb", "otlp"),
                            otlp_endpoint=received.endpoint)
        tracing = setup_tracing(settings, strict=True)
        model = TracedModel(ScriptedBackend(responses=["one two three"]), tracing)
        asyncio.run(model.generate([Message("user", "count")]))
        tracing.shutdown()  # the periodic reader exports what it holds at shutdown
    assert {"/v1/traces", "/v1/metrics"} <= received.paths
    names = {m.name: m for request in received.metric_requests() for rm in request.resource_metrics
             for sm in rm.scope_metrics for m in sm.metrics}
    assert set(METRICS) <= set(names)
    duration = names[A.METRIC_OPERATION_DURATION]
    assert duration.unit == "s" and duration.histogram.data_points[0].count == 1
    # the conventions' bucket boundaries
    assert list(duration.histogram.data_points[0].explicit_bounds)[:3] == [0.01, 0.02, 0.04]
    assert names[A.METRIC_TOKEN_USAGE].unit == "{token}"


def test_otel_metrics_exporter_none_turns_the_otlp_metrics_off(db_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    settings = Settings(db=db_path, exporters=("duckdb", "otlp"), otlp_endpoint="http://127.0.0.1:9")
    tracing = setup_tracing(settings, strict=True)
    assert tracing.metrics is None and tracing.meter_provider is None
    tracing.shutdown()
    monkeypatch.delenv("OTEL_METRICS_EXPORTER")
    tracing = setup_tracing(settings)
    assert tracing.metrics is not None
    tracing.meter_provider.shutdown(timeout_millis=1000)  # nothing recorded: nothing to send
    tracing.provider.shutdown()
