"""Stored spans and log records → the OTLP File Exporter format (OpenTelemetry specification,
``protocol/file-exporter.md``): JSON Lines, UTF-8, one ``TracesData`` (the shape of an
``ExportTraceServiceRequest``) per line in ``traces.jsonl`` and one ``LogsData`` per line in
``logs.jsonl``, each in the OTLP JSON encoding (hex trace and span ids, lowerCamelCase
fields, enums as numbers, 64-bit integers as decimal strings).

A line holds at most :data:`SPANS_PER_LINE` spans, so each line is a request any OTLP/HTTP
receiver accepts as it is (``POST /v1/traces`` with ``Content-Type: application/json``), and
`shardscope collect` stores it back exactly: attribute values keep their types (nested
mappings as ``kvlistValue``, bytes as ``bytesValue``), ids and nanosecond times are kept.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import orjson

from shardscope.tracer.encoding import BYTES_KEY
from shardscope.tracer.queries.export import ExportFilter, otlp_logs_sql, otlp_spans_sql

SPANS_PER_LINE = 512  # the OTLP SDKs' batch size; a line is one export request
LOGS_PER_LINE = 512
_KINDS = {"INTERNAL": 1, "SERVER": 2, "CLIENT": 3, "PRODUCER": 4, "CONSUMER": 5}
_STATUS = {"UNSET": 0, "OK": 1, "ERROR": 2}
_INT64 = range(-(2**63), 2**63)


def any_value(value: Any) -> dict[str, Any]:
    """A decoded attribute value as an OTLP JSON ``AnyValue``."""
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        if value in _INT64:
            return {"intValue": str(value)}
        return {"stringValue": str(value)}  # OTLP has no bigger integer
    if isinstance(value, float):
        if math.isnan(value):
            return {"doubleValue": "NaN"}
        if math.isinf(value):
            return {"doubleValue": "Infinity" if value > 0 else "-Infinity"}
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    if isinstance(value, dict):
        if len(value) == 1 and isinstance(value.get(BYTES_KEY), str):
            return {"bytesValue": value[BYTES_KEY]}  # base64 already, as OTLP JSON writes bytes
        return {"kvlistValue": {"values": key_values(value)}}
    return {"stringValue": str(value)}


def key_values(mapping: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": any_value(v)} for k, v in mapping.items()]


def _attributes(text: str | None) -> list[dict[str, Any]]:
    if not text:
        return []
    # The stored JSON may hold NaN/Infinity (the stdlib writes them; orjson does not read them).
    value = json.loads(text)
    return key_values(value) if isinstance(value, dict) else []


def _links(text: str | None) -> list[dict[str, Any]]:
    if not text:
        return []
    return [{"traceId": link["trace_id"], "spanId": link["span_id"],
             "attributes": key_values(link.get("attributes") or {})}
            for link in json.loads(text)]


def _span(row: dict[str, Any]) -> dict[str, Any]:
    span: dict[str, Any] = {
        "traceId": row["trace_id"], "spanId": row["span_id"], "name": row["name"],
        "kind": _KINDS.get(row["kind"] or "", 1),
        "startTimeUnixNano": str(row["start_ns"]), "endTimeUnixNano": str(row["end_ns"]),
        "attributes": _attributes(row["attributes"]),
    }
    if row["parent_span_id"]:
        span["parentSpanId"] = row["parent_span_id"]
    if row["trace_state"]:
        span["traceState"] = row["trace_state"]
    if row["flags"] is not None:
        span["flags"] = row["flags"]
    events = row["events"] or []
    if events:
        span["events"] = [
            {"timeUnixNano": str(e["time_ns"]), "name": e["name"],
             "attributes": _attributes(e["attributes"]),
             **({"droppedAttributesCount": e["dropped_attributes"]}
                if e["dropped_attributes"] else {})}
            for e in events]
    links = _links(row["links"])
    if links:
        span["links"] = links
    for column, field in (("dropped_attributes", "droppedAttributesCount"),
                          ("dropped_events", "droppedEventsCount"),
                          ("dropped_links", "droppedLinksCount")):
        if row[column]:
            span[field] = row[column]
    status: dict[str, Any] = {"code": _STATUS.get(row["status_code"] or "", 0)}
    if row["status_message"]:
        status["message"] = row["status_message"]
    span["status"] = status
    return span


def _resource(row: dict[str, Any]) -> dict[str, Any]:
    resource = {"attributes": _attributes(row["resource"])}
    return resource


def _scope(row: dict[str, Any]) -> dict[str, Any]:
    scope: dict[str, Any] = {}
    if row["scope_name"]:
        scope["name"] = row["scope_name"]
    if row["scope_version"]:
        scope["version"] = row["scope_version"]
    if row.get("scope_attributes"):
        scope["attributes"] = _attributes(row["scope_attributes"])
    return scope


def _grouped(rows: list[dict[str, Any]], item: Callable[[dict[str, Any]], dict[str, Any]],
             outer: str, inner: str, items: str) -> dict[str, Any]:
    """Rows → one request: grouped by resource, then by scope, keeping row order."""
    resources: dict[tuple[Any, ...], dict[tuple[Any, ...], list[dict[str, Any]]]] = {}
    heads: dict[tuple[Any, ...], tuple[dict[str, Any], dict[tuple[Any, ...], dict[str, Any]]]] = {}
    for row in rows:
        rkey = (row["resource"], row["resource_schema_url"])
        skey = (row["scope_name"], row["scope_version"], row.get("scope_attributes"),
                row.get("scope_schema_url"))
        if rkey not in resources:
            resources[rkey] = {}
            heads[rkey] = (row, {})
        scopes = resources[rkey]
        if skey not in scopes:
            scopes[skey] = []
            heads[rkey][1][skey] = row
        scopes[skey].append(item(row))
    out = []
    for rkey, scopes in resources.items():
        head, scope_heads = heads[rkey]
        group: dict[str, Any] = {"resource": _resource(head), inner: []}
        if head["resource_schema_url"]:
            group["schemaUrl"] = head["resource_schema_url"]
        for skey, values in scopes.items():
            scope_group: dict[str, Any] = {"scope": _scope(scope_heads[skey]), items: values}
            if scope_heads[skey].get("scope_schema_url"):
                scope_group["schemaUrl"] = scope_heads[skey]["scope_schema_url"]
            group[inner].append(scope_group)
        out.append(group)
    return {outer: out}


def trace_requests(rows: Iterable[dict[str, Any]], per_line: int = SPANS_PER_LINE
                   ) -> Iterator[tuple[dict[str, Any], int]]:
    """Stored span rows (with their events) → TracesData requests of ``per_line`` spans."""
    for chunk in _chunks(rows, per_line):
        yield _grouped(chunk, _span, "resourceSpans", "scopeSpans", "spans"), len(chunk)


def _log(row: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {"timeUnixNano": str(row["time_ns"] or 0),
                              "attributes": _attributes(row["attributes"])}
    if row["observed_time_ns"]:
        record["observedTimeUnixNano"] = str(row["observed_time_ns"])
    if row["severity_number"]:
        record["severityNumber"] = row["severity_number"]
    if row["severity_text"]:
        record["severityText"] = row["severity_text"]
    if row["body"] is not None:
        record["body"] = any_value(json.loads(row["body"]))
    if row["event_name"]:
        record["eventName"] = row["event_name"]
    if row["trace_id"]:
        record["traceId"] = row["trace_id"]
    if row["span_id"]:
        record["spanId"] = row["span_id"]
    if row["flags"]:
        record["flags"] = row["flags"]
    if row["dropped_attributes"]:
        record["droppedAttributesCount"] = row["dropped_attributes"]
    return record


def log_requests(rows: Iterable[dict[str, Any]], per_line: int = LOGS_PER_LINE
                 ) -> Iterator[tuple[dict[str, Any], int]]:
    for chunk in _chunks(rows, per_line):
        yield _grouped(chunk, _log, "resourceLogs", "scopeLogs", "logRecords"), len(chunk)


def _chunks(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any],
          batch_rows: int = 2048) -> Iterator[dict[str, Any]]:
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description or ()]
    while batch := cursor.fetchmany(batch_rows):
        for row in batch:
            yield dict(zip(names, row, strict=True))


def write_jsonl(path: Path, requests: Iterable[tuple[dict[str, Any], int]],
                advance: Callable[[int], None] = lambda n: None) -> tuple[int, int]:
    """Write one request per line; returns (lines, items)."""
    lines = items = 0
    with path.open("wb") as out:
        for request, count in requests:
            out.write(orjson.dumps(request) + b"\n")
            lines += 1
            items += count
            advance(count)
    return lines, items


def export_otlp(con: duckdb.DuckDBPyConnection, flt: ExportFilter, directory: Path,
                advance: Callable[[int], None] = lambda n: None) -> dict[str, tuple[int, int]]:
    """``traces.jsonl`` and (when there are log records) ``logs.jsonl`` under ``directory``;
    returns, per file, (lines, spans or records)."""
    directory.mkdir(parents=True, exist_ok=True)
    sql, params = otlp_spans_sql(flt)
    written = {"traces.jsonl": write_jsonl(directory / "traces.jsonl",
                                           trace_requests(_rows(con, sql, params)), advance)}
    sql, params = otlp_logs_sql(flt)
    logs = list(_rows(con, sql, params))
    if logs:
        written["logs.jsonl"] = write_jsonl(directory / "logs.jsonl", log_requests(logs))
    return written


def read_requests(path: Path) -> Iterator[bytes]:
    """The lines of an OTLP JSON Lines file, each an export request body (blank lines skipped)."""
    with path.open("rb") as lines:
        for line in lines:
            if line.strip():
                yield line.strip()

