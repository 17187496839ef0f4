"""A safe arithmetic evaluator: the expression is parsed with ``ast`` and only numbers,
arithmetic operators and a few named functions are evaluated. Never ``eval``.

Magnitudes are capped so that ``9**9**9`` is refused before it is computed.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from shardscope.scaffolds.tools.base import Tool, ToolContext, ToolResult
from shardscope.scaffolds.types import ToolSpec

MAX_EXPRESSION_CHARS = 500
MAX_NODES = 200
MAX_MAGNITUDE = 1e100  # results beyond this are refused
MAX_DIGITS = 100  # log10 bound used to refuse a power before computing it

Number = int | float


class CalcError(Exception):
    """The expression cannot be evaluated; the message is for the model."""


_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_FUNCTIONS: dict[str, Callable[..., Number]] = {
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "sqrt": math.sqrt,
    "floor": math.floor,
    "ceil": math.ceil,
}
_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}


def evaluate(expression: str) -> Number:
    """The value of an arithmetic expression; raises CalcError with a readable reason."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalcError(f"expression is longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        raise CalcError(f"cannot parse {expression!r} as arithmetic") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise CalcError(f"expression has more than {MAX_NODES} parts; split it into steps")
    return _eval(tree.body)


def _eval(node: ast.AST) -> Number:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise CalcError(f"only numbers are allowed, got {node.value!r}")
        return _checked(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _eval(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        return _binary(node)
    if isinstance(node, ast.Call):
        return _call(node)
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise CalcError(
            f"unknown name {node.id!r}; only numbers, + - * / // % **, "
            f"parentheses and {', '.join(sorted(_FUNCTIONS))} are allowed"
        )
    if isinstance(node, ast.Tuple):
        raise CalcError("write numbers without thousands separators (1234, not 1,234)")
    raise CalcError(f"{type(node).__name__} is not allowed; only arithmetic is")


def _binary(node: ast.BinOp) -> Number:
    if isinstance(node.op, ast.BitXor):
        raise CalcError("'^' is not a power operator here; write ** for powers")
    left, right = _eval(node.left), _eval(node.right)
    if isinstance(node.op, ast.Pow):
        return _power(left, right)
    func = _BINARY.get(type(node.op))
    if func is None:
        raise CalcError(f"operator {type(node.op).__name__} is not allowed")
    try:
        return _checked(func(left, right))
    except ZeroDivisionError:
        raise CalcError("division by zero") from None


def _power(base: Number, exponent: Number) -> Number:
    if abs(base) not in (0, 1) and abs(exponent) * math.log10(abs(base)) > MAX_DIGITS:
        raise CalcError(f"{base}**{exponent} is too large to compute (limit about 1e{MAX_DIGITS})")
    if base == 0 and exponent < 0:
        raise CalcError("division by zero (0 to a negative power)")
    if abs(exponent) > 10_000:  # base is 0, 1 or -1: the answer is known, the loop is not
        exponent = exponent % 2 if isinstance(exponent, int) else exponent
    try:
        result = base**exponent
    except OverflowError:
        raise CalcError(f"{base}**{exponent} is too large to compute") from None
    if isinstance(result, complex):
        raise CalcError("a negative number to a fractional power has no real value")
    return _checked(result)


def _call(node: ast.Call) -> Number:
    if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS:
        shown = ast.unparse(node.func)
        raise CalcError(
            f"function {shown!r} is not allowed; allowed: {', '.join(sorted(_FUNCTIONS))}"
        )
    if node.keywords:
        raise CalcError("keyword arguments are not allowed")
    args = [_eval(arg) for arg in node.args]
    if node.func.id == "round" and len(args) == 2 and abs(args[1]) > 100:
        raise CalcError("round(): the number of digits must be between -100 and 100")
    try:
        return _checked(_FUNCTIONS[node.func.id](*args))
    except (TypeError, ValueError) as exc:
        raise CalcError(f"{node.func.id}(): {exc}") from None


def _checked(value: Number) -> Number:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        raise CalcError("the result is not a finite number")
    if abs(value) > MAX_MAGNITUDE:
        raise CalcError(f"the result is larger than {MAX_MAGNITUDE:g}; refused")
    return value


def format_number(value: Number) -> str:
    """Integers as they are; floats to 12 significant digits, integral ones without '.0'."""
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return format(value, ".12g")


class Calculator(Tool):
    spec = ToolSpec(
        name="calculator",
        description=(
            "Evaluate an arithmetic expression. Supports + - * / // % ** and parentheses, "
            "and the functions round, min, max, abs, sqrt, floor, ceil. Example: (12 + 8) * 3"
        ),
        parameters={
            "type": "object",
            "properties": {"expression": {"type": "string", "description": "e.g. 1200 * 0.1 + 35"}},
            "required": ["expression"],
            "additionalProperties": False,
        },
    )

    def execute(self, arguments: dict[str, Any], ctx: ToolContext) -> ToolResult:
        try:
            value = evaluate(arguments["expression"])
        except CalcError as exc:
            return ToolResult.fail("calculation_error", str(exc))
        return ToolResult(True, format_number(value))
