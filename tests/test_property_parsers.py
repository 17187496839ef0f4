"""Property tests (Hypothesis) for every parser a user or a network peer feeds: the suite
TOML loader, settings (config file and environment), the model catalog, OTLP/JSON decoding
and the CLI's option parsers. Whatever the input, the answer is a result or one of our
errors, never another exception (issue 16, finding 9). Bounded: a few hundred examples each,
no deadline (the machine is shared)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shardscope.commands.options import parse_assignments, scaffold_params, split_list, whole_number
from shardscope.commands.run import _concurrency
from shardscope.config.catalog import read_catalog
from shardscope.config.errors import ShardscopeError
from shardscope.config.settings import load_settings
from shardscope.scaffolds.tasks.loader import load_suite
from shardscope.tracer.otlp_decode import JSON, Decoder, PayloadError, Rejected, parse_traces
from shardscope.tracer.redact import Redactor

BOUNDED = settings(max_examples=150, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
KEYS = st.sampled_from(["db", "lock_timeout", "ui_port", "exporters", "capture_content",
                        "flush_interval", "sql_timeout", "sql_memory_limit", "models",
                        "backend", "model", "tasks", "id", "prompt", "answer", "shardscope",
                        "name", "check", "shards", "x"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70),
                    st.floats(allow_nan=True), st.text(max_size=20))
JSONISH = st.recursive(SCALARS, lambda kids: st.one_of(
    st.lists(kids, max_size=4), st.dictionaries(st.one_of(KEYS, st.text(max_size=8)), kids,
                                                max_size=5)), max_leaves=25)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if value == value and abs(value) != float("inf") else "nan"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in value.items()
                               if v is not None) + "}"
    return json.dumps(str(value))


TOML_DOCS = st.one_of(
    st.dictionaries(KEYS, JSONISH, max_size=6).map(
        lambda d: "\n".join(f"{k} = {_toml_value(v)}" for k, v in d.items() if v is not None)),
    st.text(max_size=200),
    st.binary(max_size=200),  # written as is: not always UTF-8
)


def _write(text: str | bytes, name: str) -> Path:
    directory = Path(tempfile.mkdtemp())
    path = directory / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    return path


@BOUNDED
@given(TOML_DOCS)
def test_config_file_is_settings_or_a_config_error(text: str | bytes) -> None:
    path = _write(text, "shardscope.toml")
    try:
        load_settings({"SHARDSCOPE_CONFIG": str(path), "HOME": str(path.parent)})
    except ShardscopeError:
        pass


@BOUNDED
@given(st.dictionaries(st.sampled_from(["SHARDSCOPE_DB", "SHARDSCOPE_LOCK_TIMEOUT",
                                        "SHARDSCOPE_UI_PORT", "SHARDSCOPE_EXPORTERS",
                                        "SHARDSCOPE_CAPTURE_CONTENT", "SHARDSCOPE_SQL_TIMEOUT",
                                        "SHARDSCOPE_SQL_MEMORY_LIMIT", "SHARDSCOPE_NOSUCH",
                                        "SHARDSCOPE_FLUSH_INTERVAL"]),
                       st.text(max_size=30), max_size=4))
def test_environment_is_settings_or_a_config_error(env: dict[str, str]) -> None:
    try:
        load_settings({**env, "HOME": "/nonexistent"})
    except ShardscopeError:
        pass


@BOUNDED
@given(TOML_DOCS)
def test_catalog_is_a_catalog_or_a_config_error(text: str | bytes) -> None:
    try:
        read_catalog(_write(text, "models.toml"))
    except ShardscopeError:
        pass


@BOUNDED
@given(TOML_DOCS)
def test_suite_is_a_suite_or_a_suite_error(text: str | bytes) -> None:
    try:
        load_suite(_write(text, "suite.toml"))
    except ShardscopeError:
        pass


SPAN = st.fixed_dictionaries({}, optional={
    "traceId": st.one_of(st.just("5b8efff798038103d269b633813fc60c"), st.text(max_size=40)),
    "spanId": st.one_of(st.just("eee19b7ec3c1b174"), st.text(max_size=20)),
    "name": st.text(max_size=10), "kind": st.integers(-3, 9),
    "startTimeUnixNano": st.one_of(st.integers(-5, 2**65), st.text(max_size=5)),
    "endTimeUnixNano": st.one_of(st.integers(-5, 2**65), st.text(max_size=5)),
    "attributes": st.lists(st.fixed_dictionaries({"key": st.text(max_size=8)}, optional={
        "value": st.dictionaries(st.sampled_from(["stringValue", "intValue", "boolValue",
                                                  "doubleValue", "arrayValue"]), JSONISH,
                                 max_size=1)}), max_size=3),
    "events": st.lists(JSONISH, max_size=2), "status": JSONISH,
})
OTLP = st.one_of(
    st.builds(lambda spans, extra: {"resourceSpans": [{"scopeSpans": [{"spans": spans}],
                                                       **extra}]},
              st.lists(SPAN, max_size=3), st.dictionaries(st.text(max_size=6), JSONISH, max_size=2)),
    JSONISH,
)


@BOUNDED
@given(OTLP)
def test_otlp_json_decodes_or_is_rejected(document: Any) -> None:
    body = json.dumps(document).encode("utf-8", "surrogatepass")
    decoder = Decoder(Redactor({}), "writer")
    try:
        decoder.traces(parse_traces(body, JSON))
    except (PayloadError, Rejected):
        pass


@BOUNDED
@given(st.lists(st.text(max_size=20), max_size=5))
def test_cli_option_parsers_answer_or_raise_ours(values: list[str]) -> None:
    assert all("," not in v and v == v.strip() and v for v in split_list(values))
    for parse in (lambda: parse_assignments(values, "--param"), lambda: scaffold_params(values),
                  lambda: [_concurrency("p", v) for v in values],
                  lambda: [whole_number(v, "--x") for v in values]):
        try:
            parse()
        except ShardscopeError:
            pass
