"""Judging the calls a model made to a task's declared functions, by BFCL's AST rules.

Written from BFCL's documented rules (not from its source):

- the model makes exactly as many calls as the answer has (one in ``simple`` and
  ``multiple``, several in ``parallel`` and ``parallel_multiple``); several calls match the
  expected ones in any order;
- each call names the expected function, gives every required parameter, and no
  parameter the function does not have or the answer does not list;
- each value has the parameter's type (an integer is accepted where a float is declared,
  a tuple comes as a list; a boolean is never a number) and is one of the answer's allowed
  values; ``""`` among the allowed values means the parameter may be left out;
- strings compare case-insensitively, ignoring spaces and the punctuation ``, . / - _ * ^``
  (so "New York, NY" matches "new york ny"); lists compare element by element, in order;
  dictionaries key by key with the same rules.

``irrelevance``: correct exactly when the model made no call at all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from shardscope.scaffolds.tasks.model import Check, CheckResult, DeclaredTools
from shardscope.scaffolds.types import ToolCall

OMITTED = ""  # among the allowed values: the parameter may be left out
BFCL_TYPE = "x-bfcl-type"  # the benchmark's own type name, kept beside the JSON Schema type
_IGNORED_CHARS = re.compile(r"[\s,./\-_*^]")
_JSON_TYPES = {"integer": "integer", "number": "float", "string": "string",
               "boolean": "boolean", "array": "array", "object": "dict"}


def check_irrelevance(calls: Sequence[ToolCall]) -> CheckResult:
    """Success when no function was called (the right move when none fits the request)."""
    if not calls:
        return CheckResult("success", 1.0, "no function called")
    names = ", ".join(c.name for c in calls)
    return CheckResult("failure", 0.0, f"called {names} although no function fits")


def check_tool_calls(spec: Check, declared: DeclaredTools, calls: Sequence[ToolCall]) -> CheckResult:
    """Success when ``calls`` are exactly the expected calls (any order), by the AST rules."""
    expected = list(spec.calls)
    if len(calls) != len(expected):
        return _fail(f"made {len(calls)} call(s), expected {len(expected)}")
    schemas = {f.name: f.parameters for f in declared.functions}
    problems: dict[tuple[int, int], str | None] = {}
    for i, want in enumerate(expected):
        for j, got in enumerate(calls):
            problems[i, j] = call_problem(want, got, schemas)
    if _matching(len(expected), len(calls), problems):
        return CheckResult("success", 1.0, f"{len(calls)} call(s) match")
    if len(expected) == 1:
        return _fail(str(problems[0, 0]))
    first = next(p for p in problems.values() if p is not None)
    return _fail(f"no order of the calls matches the expected ones; e.g. {first}")


def _fail(detail: str) -> CheckResult:
    return CheckResult("failure", 0.0, detail)


def _matching(n: int, m: int, problems: Mapping[tuple[int, int], str | None]) -> bool:
    """Whether every expected call can be paired with its own matching actual call."""
    used: set[int] = set()

    def assign(i: int) -> bool:
        if i == n:
            return True
        for j in range(m):
            if j not in used and problems[i, j] is None:
                used.add(j)
                if assign(i + 1):
                    return True
                used.discard(j)
        return False

    return assign(0)


def call_problem(
    expected: Mapping[str, Any], call: ToolCall, schemas: Mapping[str, Mapping[str, Any]]
) -> str | None:
    """Why ``call`` does not match the one expected call; None when it does."""
    ((name, allowed),) = expected.items()
    if call.name != name:
        return f"called {call.name!r}, expected {name!r}"
    schema = schemas.get(name, {})
    props: Mapping[str, Any] = schema.get("properties", {})
    for param in schema.get("required", ()):
        # the answer's "" wins over the schema's "required" (a few BFCL items have both)
        if param not in call.arguments and OMITTED not in allowed.get(param, ()):
            return f"{name}: required parameter {param!r} is missing"
    for param, value in call.arguments.items():
        if param not in props:
            return f"{name}: {param!r} is not a parameter of the function"
        if param not in allowed:
            return f"{name}: parameter {param!r} is not expected"
        problem = value_problem(value, allowed[param], props[param])
        if problem is not None:
            return f"{name}: {param}: {problem}"
    for param, values in allowed.items():
        if param not in call.arguments and OMITTED not in values:
            return f"{name}: parameter {param!r} is missing"
    return None


def value_problem(value: Any, allowed: Sequence[Any], prop: Mapping[str, Any]) -> str | None:
    """Why ``value`` is not of the parameter's type or not among ``allowed``; None if fine."""
    kind = type_of(prop)
    if value is None and None in allowed:  # an explicit null the answer allows
        return None
    if not has_type(value, kind):
        return f"{value!r} is not of type {kind}"
    if any(matches(value, a, prop) for a in allowed if not (a == OMITTED and kind != "string")):
        return None
    shown = ", ".join(repr(a) for a in allowed if a != OMITTED)
    return f"{value!r} is not an allowed value ({shown})"


def type_of(prop: Mapping[str, Any]) -> str:
    """The parameter's type: the benchmark's name when kept, else from the JSON Schema."""
    raw = prop.get(BFCL_TYPE) or _JSON_TYPES.get(str(prop.get("type")), "any")
    return "dict" if raw == "object" else "float" if raw == "number" else str(raw)


def has_type(value: Any, kind: str) -> bool:
    """BFCL's type rules: int accepted for float, a tuple written as a list, bool apart."""
    if kind == "any":
        return True
    if isinstance(value, bool):
        return kind == "boolean"
    checks: dict[str, type | tuple[type, ...]] = {
        "integer": int, "float": (int, float), "string": str, "boolean": bool,
        "array": list, "tuple": list, "dict": dict,
    }
    return isinstance(value, checks.get(kind, object))


def normalize_string(text: str) -> str:
    return _IGNORED_CHARS.sub("", text).lower()


def matches(value: Any, allowed: Any, prop: Mapping[str, Any]) -> bool:
    """Whether ``value`` equals the allowed value ``allowed`` under the comparison rules."""
    if isinstance(value, str) and isinstance(allowed, str):
        return normalize_string(value) == normalize_string(allowed)
    if isinstance(value, bool) or isinstance(allowed, bool):
        return value is allowed
    if isinstance(value, int | float) and isinstance(allowed, int | float):
        return float(value) == float(allowed)
    if isinstance(value, list) and isinstance(allowed, list):
        items = prop.get("items", {})
        return len(value) == len(allowed) and all(
            _element_matches(v, a, items) for v, a in zip(value, allowed, strict=True)
        )
    if isinstance(value, dict) and isinstance(allowed, dict):
        return _dict_matches(value, allowed, prop)
    return bool(value == allowed)


def _element_matches(value: Any, allowed: Any, items: Mapping[str, Any]) -> bool:
    if isinstance(allowed, dict) and isinstance(value, dict):
        return _dict_matches(value, allowed, items)
    return has_type(value, type_of(items)) and matches(value, allowed, items)


def _dict_matches(value: Mapping[str, Any], allowed: Mapping[str, Any], prop: Mapping[str, Any]) -> bool:
    """A dict whose allowed values are per key (``{key: [values]}``) or a literal dict."""
    props: Mapping[str, Any] = prop.get("properties", {})
    per_key = all(isinstance(v, list) for v in allowed.values())
    if not per_key:
        return bool(value == allowed)
    for key, sub in value.items():
        if key not in allowed:
            return False
        if value_problem(sub, allowed[key], props.get(key, {})) is not None:
            return False
    return all(key in value or OMITTED in values for key, values in allowed.items())
