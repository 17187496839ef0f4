"""The tool_call checker (BFCL's AST rules) against BFCL's published ground truth: every
answer passes, in every allowed variant; systematically perturbed answers fail."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shardscope.scaffolds.tasks import Task, load_suite
from shardscope.scaffolds.tasks.tool_checks import (
    OMITTED,
    check_irrelevance,
    check_tool_calls,
    type_of,
)
from shardscope.scaffolds.types import ToolCall

bfcl = pytest.importorskip("shardscope.scaffolds.tasks.bfcl")
CALL_CATEGORIES = ("simple", "multiple", "parallel", "parallel_multiple")
# Published answers (variants) that contradict their own item's function schema, so no
# schema-respecting checker can accept them (found by this test; BFCL v4 2026.3.23):
SCHEMA_CONTRADICTIONS = {
    "simple_python_149": {1},  # [["Apple"], ["Microsoft"]] for an array of strings
    "simple_python_307": {0, 2},  # venue = true for a string parameter
    "parallel_multiple_12": {0, 2},  # permeability belongs to the other function
    "parallel_multiple_21": {0, 1, 2, 3},  # x = "data['sales']" for an array of floats
    "parallel_multiple_26": {0, 2},  # "type" is a key of transactions' items, not a parameter
    "parallel_multiple_94": {0, 1, 2, 3},  # fruit names for an array of integers
}


@pytest.fixture(scope="module")
def suites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Task]]:
    if bfcl.importlib.util.find_spec(bfcl.PACKAGE) is None:
        pytest.skip("bfcl-eval is not installed (extra 'benchmarks', --no-deps)")
    out = tmp_path_factory.mktemp("bfcl")
    tasks = {}
    for category in (*CALL_CATEGORIES, "irrelevance"):
        converted = bfcl.convert(category)
        assert converted.skipped == []
        path = Path(out) / f"{converted.suite_name}.toml"
        path.write_text(converted.text, encoding="utf-8")
        tasks[category] = list(load_suite(path).tasks)
    return tasks


def _value(allowed: list[Any]) -> Any:
    """A concrete value from an allowed-values list (nested dicts resolved the same way)."""
    value = next(v for v in allowed if v != OMITTED)
    return _concrete(value)


def _concrete(value: Any) -> Any:
    if isinstance(value, dict) and all(isinstance(v, list) for v in value.values()):
        return {k: _value(v) for k, v in value.items() if any(x != OMITTED for x in v)}
    if isinstance(value, list):
        return [_concrete(v) for v in value]
    return value


def answer_calls(task: Task, variant: int = 0) -> list[ToolCall]:
    """The ground truth as calls: each parameter's ``variant``-th allowed value (wrapping),
    optional parameters left out on odd variants."""
    calls = []
    for i, call in enumerate(task.check.calls):
        ((name, params),) = call.items()
        args = {}
        for param, allowed in params.items():
            present = [v for v in allowed if v != OMITTED]
            if not present or (OMITTED in allowed and variant % 2):
                continue
            args[param] = _concrete(present[variant % len(present)])
        calls.append(ToolCall(f"c{i}", name, args))
    return calls


def _judge(task: Task, calls: list[ToolCall]) -> str:
    return check_tool_calls(task.check, task.declared, calls).outcome


@pytest.mark.parametrize("category", CALL_CATEGORIES)
def test_every_published_answer_passes(suites: dict[str, list[Task]], category: str) -> None:
    failures = []
    contradicted = []
    for task in suites[category]:
        for variant in range(4):
            calls = answer_calls(task, variant)
            result = check_tool_calls(task.check, task.declared, calls)
            if variant in SCHEMA_CONTRADICTIONS.get(task.id, ()):
                contradicted.append(result.outcome)
                continue
            if result.outcome != "success":
                failures.append(f"{task.id} v{variant}: {result.detail}")
            reordered = list(reversed(calls))  # order-free for several calls
            if _judge(task, reordered) != "success":
                failures.append(f"{task.id} reversed")
    assert failures == [], failures[:10]
    assert set(contradicted) <= {"failure"}


def _perturbations(task: Task) -> Iterator[tuple[str, list[ToolCall]]]:
    calls = answer_calls(task)
    schemas = {f.name: f.parameters for f in task.declared.functions}
    first = calls[0]
    props = schemas[first.name]["properties"]
    yield "wrong name", [ToolCall("x", first.name + "_x", first.arguments), *calls[1:]]
    yield "extra parameter", [ToolCall("x", first.name, {**first.arguments, "zz_extra": 1}),
                              *calls[1:]]
    yield "too few calls", calls[:-1]
    yield "too many calls", [*calls, calls[0]]
    answer = task.check.calls[0][first.name]
    required = [p for p in schemas[first.name].get("required", [])
                if p in first.arguments and OMITTED not in answer.get(p, ())]
    if required:
        args = dict(first.arguments)
        del args[required[0]]
        yield "missing required", [ToolCall("x", first.name, args), *calls[1:]]
    for param, value in first.arguments.items():
        kind = type_of(props[param])
        wrong_type: Any = {"string": 12345, "integer": "7", "float": "7.5", "boolean": "yes",
                           "array": "not a list", "tuple": "not a list", "dict": ["x"]}.get(kind)
        if wrong_type is not None:
            yield f"wrong type {param}", [ToolCall("x", first.name, {**first.arguments,
                                                                     param: wrong_type}), *calls[1:]]
        wrong = _wrong_value(value)
        if wrong is not None:
            yield f"wrong value {param}", [ToolCall("x", first.name, {**first.arguments,
                                                                      param: wrong}), *calls[1:]]
        break


def _wrong_value(value: Any) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1000003
    if isinstance(value, str):
        return value + " zqx"
    if isinstance(value, list):
        return [*copy.deepcopy(value), value[0]] if value else ["zqx"]
    return None


@pytest.mark.parametrize("category", CALL_CATEGORIES)
def test_perturbed_answers_fail(suites: dict[str, list[Task]], category: str) -> None:
    passed = []
    kinds: set[str] = set()
    for task in suites[category]:
        if task.id in SCHEMA_CONTRADICTIONS:
            continue
        for kind, calls in _perturbations(task):
            kinds.add(kind.split(" ")[0] + " " + kind.split(" ")[1])
            if _judge(task, calls) == "success":
                passed.append(f"{task.id}: {kind}")
    assert passed == [], passed[:10]
    assert {"wrong name", "extra parameter", "too few", "too many", "missing required",
            "wrong type", "wrong value"} <= kinds


def test_type_and_string_rules(suites: dict[str, list[Task]]) -> None:
    task = suites["simple"][0]  # calculate_triangle_area(base: int, height: int, unit: str)
    ok = _judge(task, [ToolCall("a", "calculate_triangle_area", {"base": 10, "height": 5,
                                                                 "unit": "Units"})])
    as_float = _judge(task, [ToolCall("a", "calculate_triangle_area", {"base": 10.0, "height": 5})])
    as_bool = _judge(task, [ToolCall("a", "calculate_triangle_area", {"base": True, "height": 5})])
    assert (ok, as_float, as_bool) == ("success", "failure", "failure")
    floats = next(t for t in suites["simple"] if any(
        type_of(p) == "float" for f in t.declared.functions
        for p in f.parameters["properties"].values()))
    calls = answer_calls(floats)
    name = calls[0].name
    props = floats.declared.functions[0].parameters["properties"]
    param = next(p for p, s in props.items() if type_of(s) == "float" and p in calls[0].arguments)
    value = calls[0].arguments[param]
    if float(value).is_integer():  # an int is accepted where a float is declared
        as_int = [ToolCall("a", name, {**calls[0].arguments, param: int(value)})]
        assert _judge(floats, as_int) == "success"


def test_irrelevance_is_correct_only_without_a_call() -> None:
    assert check_irrelevance([]).outcome == "success"
    assert check_irrelevance([ToolCall("a", "f", {})]).outcome == "failure"
