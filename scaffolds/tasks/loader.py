"""Loading suite files (TOML, see docs/tasks.md) into validated ``Suite`` objects."""

from __future__ import annotations

import dataclasses
import json
import re
import string
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, cast

from shardscope.config import CONFIG_DIR
from shardscope.scaffolds.tasks import world as W
from shardscope.scaffolds.tasks.errors import SuiteError, UnknownSuiteError
from shardscope.scaffolds.tasks.fields import Fields, Where, display
from shardscope.scaffolds.tasks.model import (
    AFTER_CALL,
    CHECK_TYPES,
    FUNCTION_FIELDS,
    SHARD_KINDS,
    AfterCall,
    Check,
    CheckType,
    DeclaredTools,
    Edit,
    Shard,
    World,
)
from shardscope.scaffolds.tasks.suite import Suite, Task
from shardscope.scaffolds.types import ToolSpec

SUITES_DIR = CONFIG_DIR / "suites"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SHARD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LIMITS = {"timeout_s": 0.1, "memory_mb": 64, "max_output_chars": 200, "max_rows": 1}
_SHARD_KEYS = {"document": "doc", "file": "path", "tool_result": "tool"}


def load_suite(path: Path | str, known_tools: Iterable[str] | None = None) -> Suite:
    """The suite in the TOML file ``path``; SuiteError naming file, task and field if malformed."""
    path = Path(path)
    where = Where(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SuiteError(f"{display(path)}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise SuiteError(f"{display(path)}: not a text file (a suite is UTF-8 TOML)") from None
    except OSError as exc:
        raise SuiteError(f"{display(path)}: cannot read the suite file: {exc.strerror}") from None
    tools_known = frozenset(known_tools) if known_tools is not None else _builtin_tools()
    top = Fields(data, where, "")
    head = Fields(top.table_of("suite", required=True), where, "suite.")
    name = head.string("name")
    if not _ID.match(name):
        raise head.error("name", f"must be letters, digits, '-', '_' or '.', got {name!r}")
    description = head.string("description")
    tools = _tools(head, "tools", tools_known) or ()
    world = _world(head, path)
    metadata = head.table_of("metadata") or {}
    head.done()
    tasks = _tasks(top.tables("tasks"), where, name, tools, tools_known, world)
    top.done()
    return Suite(name, description, tools, tasks, path, metadata)


def load_suites(directory: Path | str | None = None) -> dict[str, Suite]:
    """The shipped suites (``config/suites/``) plus those in ``directory``, by name."""
    suites: dict[str, Suite] = {}
    dirs = [SUITES_DIR]
    if directory is not None and Path(directory).resolve() != SUITES_DIR.resolve():
        if not Path(directory).is_dir():
            raise SuiteError(f"suites directory {directory} does not exist")
        dirs.append(Path(directory))
    tools = _builtin_tools()
    for folder in dirs:
        for file in sorted(folder.glob("*.toml")):
            suite = load_suite(file, tools)
            if suite.name in suites:
                raise SuiteError(
                    f"{display(file)}: suite: name {suite.name!r} is already used by "
                    f"{display(suites[suite.name].path)}"
                )
            suites[suite.name] = suite
    return suites


def get_suite(name: str, directory: Path | str | None = None) -> Suite:
    """The suite called ``name``; UnknownSuiteError listing the known suites if none."""
    suites = load_suites(directory)
    if name not in suites:
        raise UnknownSuiteError(
            f"unknown suite {name!r}; known suites: {', '.join(sorted(suites))}"
        )
    return suites[name]


def _builtin_tools() -> frozenset[str]:
    from shardscope.scaffolds.tools import default_registry

    return frozenset(default_registry().names())


def _tools(fields: Fields, key: str, known: frozenset[str]) -> tuple[str, ...] | None:
    tools = fields.strings(key)
    for tool in tools or ():
        if tool not in known:
            raise fields.error(
                key, f"names unknown tool {tool!r}; known tools: {', '.join(sorted(known))}"
            )
    return tools


def _resource_dir(fields: Fields, key: str, suite_file: Path) -> Path | None:
    """A directory named relative to the suite file, else to shardscope's config/ directory."""
    raw: str | None = fields.string(key, required=False)
    if raw is None:
        return None
    tried = [suite_file.parent / raw, CONFIG_DIR / raw]
    for candidate in tried:
        if candidate.is_dir():
            return candidate.resolve()
    shown = " or ".join(display(p) for p in tried)
    raise fields.error(key, f"is not a directory: looked for {shown}")


def _world(head: Fields, path: Path) -> World:
    corpus_dir = _resource_dir(head, "corpus", path)
    dataset_dir = _resource_dir(head, "dataset", path)
    package_dir = _resource_dir(head, "package", path)
    tables: tuple[str, ...] = ()
    if dataset_dir is not None:
        if not (dataset_dir / W.SCHEMA_FILE).is_file():
            raise head.error("dataset", f"directory {display(dataset_dir)} has no {W.SCHEMA_FILE}")
        tables = W.dataset_tables(dataset_dir)
        missing = [t for t in tables if not (dataset_dir / f"{t}.csv").is_file()]
        if missing:
            raise head.error("dataset", f"has no CSV file for table(s) {', '.join(missing)}")
    return World(
        corpus=W.read_corpus(corpus_dir) if corpus_dir else {},
        dataset_dir=dataset_dir,
        dataset_tables=tables,
        package_dir=package_dir,
        limits=_limits(head),
    )


def _limits(head: Fields) -> dict[str, float]:
    table = head.table_of("limits")
    if table is None:
        return {}
    fields = Fields(table, head.where, "suite.limits.")
    limits = {}
    for key, minimum in _LIMITS.items():
        value = fields.number(key, required=False, minimum=minimum)
        if value is not None:
            limits[key] = value if key == "timeout_s" else int(value)
    fields.done()
    return limits


def _tasks(
    raw: list[Any],
    where: Where,
    suite: str,
    tools: tuple[str, ...],
    known: frozenset[str],
    world: World,
) -> tuple[Task, ...]:
    if not raw:
        raise where.error("tasks", "must hold at least one [[tasks]] table")
    tasks: list[Task] = []
    seen: set[str] = set()
    for index, table in enumerate(raw, 1):
        task = _task(table, where, index, suite, tools, known, world)
        if task.id in seen:
            raise where.for_task(task.id).error(
                "id", f"is a duplicate: another task already has id {task.id!r}"
            )
        seen.add(task.id)
        tasks.append(task)
    return tuple(tasks)


def _task(
    table: Any,
    where: Where,
    index: int,
    suite: str,
    suite_tools: tuple[str, ...],
    known: frozenset[str],
    world: World,
) -> Task:
    fields = Fields(table, where.for_task(f"#{index}"), "")
    task_id = fields.string("id")
    if not _ID.match(task_id):
        raise fields.error("id", f"must be letters, digits, '-', '_' or '.', got {task_id!r}")
    fields = Fields(table, where.for_task(task_id), "")
    fields.string("id")
    prompt = fields.string("prompt")
    tools = _tools(fields, "tools", known)
    tools = suite_tools if tools is None else tools
    declared = _declared(fields, known)
    check = _check(fields, world, declared)
    needs_reference = check.type not in ("tests_pass", "tool_call", "irrelevance")
    reference = fields.string("reference", required=needs_reference)
    reference_sql = fields.string("reference_sql", required=False)
    if reference_sql is not None and world.dataset_dir is None:
        raise fields.error("reference_sql", "needs a dataset: set suite.dataset")
    patch = _patch(fields, world)
    shards = _shards(fields, world, tools, patch, declared)
    _check_placeholders(fields, prompt, shards)
    metadata = fields.table_of("metadata") or {}
    fields.done()
    return Task(
        task_id,
        prompt,
        shards,
        check,
        tools,
        metadata,
        reference,
        reference_sql,
        patch,
        world,
        suite,
        declared,
    )


def _json_or_toml(fields: Fields, key: str, required: bool = False) -> Any:
    """A value written either as TOML or as a JSON string (imported suites use JSON, which
    keeps nulls and nesting exactly as the benchmark has them)."""
    value = fields.value(key, required=required)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise fields.error(key, f"is a string but not valid JSON: {exc}") from None
    return value


def _declared(task: Fields, known: frozenset[str]) -> DeclaredTools:
    raw = _json_or_toml(task, "functions")
    after = task.string("after_call", required=False, default="end")
    result = task.string("call_result", required=False, default="ok")
    if raw is None:
        return DeclaredTools()
    if not isinstance(raw, list) or not raw:
        raise task.error("functions", "must be a non-empty list of functions")
    if after not in AFTER_CALL:
        raise task.error("after_call", f"must be one of {', '.join(AFTER_CALL)}, got {after!r}")
    specs: list[ToolSpec] = []
    for i, item in enumerate(raw):
        fn = Fields(item, task.where, f"functions[{i}].")
        name = fn.string("name")
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$", name):
            raise fn.error("name", f"must be letters, digits, '_' or '-' (at most 64), got {name!r}")
        if name in known or any(s.name == name for s in specs):
            raise fn.error("name", f"{name!r} is already a tool name")
        description = fn.string("description", required=False, default="")
        parameters = fn.table_of("parameters") or {"type": "object", "properties": {}}
        if parameters.get("type") != "object" or not isinstance(
            parameters.get("properties", {}), Mapping
        ):
            raise fn.error("parameters", "must be a JSON schema of type 'object' with properties")
        fn.done()
        specs.append(ToolSpec(name, description, dict(parameters)))
    return DeclaredTools(tuple(specs), cast(AfterCall, after), result)


def _check(task: Fields, world: World, declared: DeclaredTools) -> Check:
    fields = Fields(task.table_of("check", required=True), task.where, "check.")
    kind = cast(CheckType, fields.choice("type", CHECK_TYPES))
    if kind in ("tool_call", "irrelevance"):
        check = _tool_check(fields, kind, declared)
    elif kind == "numeric":
        check = Check(
            kind,
            expected=float(fields.number("expected")),
            tolerance=float(fields.number("tolerance", required=False, default=1e-6, minimum=0)),
            relative=float(fields.number("relative", required=False, default=0.0, minimum=0)),
        )
    elif kind == "exact":
        check = Check(
            kind, expected=fields.string("expected"), aliases=fields.strings("aliases") or ()
        )
    elif kind == "regex":
        pattern = fields.string("pattern")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise fields.error("pattern", f"is not a valid regular expression: {exc}") from None
        check = Check(kind, pattern=pattern, ignore_case=fields.boolean("ignore_case", True))
    else:
        if world.package_dir is None:
            raise fields.error("type", "'tests_pass' needs a package: set suite.package")
        tests = fields.string("tests", required=False, default="tests")
        if not (world.package_dir / tests).exists():
            raise fields.error(
                "tests", f"{tests!r} does not exist in the package {display(world.package_dir)}"
            )
        check = Check(
            kind,
            tests=tests,
            answer_file=fields.string("answer_file", required=False),
            prelude=fields.string("prelude", required=False, default=""),
            entry_point=fields.string("entry_point", required=False),
        )
    fields.done()
    return check


def _tool_check(fields: Fields, kind: CheckType, declared: DeclaredTools) -> Check:
    if not declared.functions:
        raise fields.error("type", f"{kind!r} needs declared functions: set the task's functions")
    if kind == "irrelevance":
        return Check(kind)
    calls = _json_or_toml(fields, "calls", required=True)
    if not isinstance(calls, list) or not calls:
        raise fields.error("calls", "must be a non-empty list of {function: {param: [values]}}")
    names = declared.names()
    for i, call in enumerate(calls):
        if not isinstance(call, Mapping) or len(call) != 1:
            raise fields.error(f"calls[{i}]", "must be a table with exactly one function name")
        ((name, params),) = call.items()
        if name not in names:
            raise fields.error(
                f"calls[{i}]", f"names {name!r}, not a declared function ({', '.join(names)})"
            )
        if not isinstance(params, Mapping) or not all(
            isinstance(v, list) for v in params.values()
        ):
            raise fields.error(f"calls[{i}].{name}", "must map each parameter to a list of values")
    return Check(kind, calls=tuple(calls))


def _patch(task: Fields, world: World) -> tuple[Edit, ...]:
    """The edits that plant the bug; each must be reversible (its text unique in the file)."""
    edits = []
    texts: dict[str, str] = {}
    for i, raw in enumerate(task.tables("patch", required=False)):
        fields = Fields(raw, task.where, f"patch[{i}].")
        if world.package_dir is None:
            raise fields.error("file", "needs a package: set suite.package")
        file, find = fields.string("file"), fields.string("find")
        replace = fields.string("replace")
        fields.done()
        source = world.package_dir / file
        if not source.is_file():
            raise fields.error(
                "file", f"{file!r} is not a file of the package {display(world.package_dir)}"
            )
        text = texts.get(file) or source.read_text(encoding="utf-8")
        if text.count(find) != 1:
            raise fields.error(
                "find", f"must occur exactly once in {file}, found {text.count(find)} times"
            )
        texts[file] = text.replace(find, replace)
        if texts[file].count(replace) != 1:
            raise fields.error(
                "replace", f"must occur only once in the patched {file}, so the fix is unambiguous"
            )
        edits.append(Edit(find, replace, file))
    return tuple(edits)


def _shards(
    task: Fields,
    world: World,
    tools: tuple[str, ...],
    patch: tuple[Edit, ...],
    declared: DeclaredTools,
) -> tuple[Shard, ...]:
    raw = task.tables("shards")
    if not raw:
        raise task.error("shards", "must declare at least one shard ([[tasks.shards]])")
    shards: list[Shard] = []
    for i, table in enumerate(raw):
        fields = Fields(table, task.where, f"shards[{i}].")
        shard = _shard(fields, world, tools, patch, declared)
        if any(s.name == shard.name for s in shards):
            raise task.error(
                f"shards[{i}].name", f"is a duplicate: {shard.name!r} is declared twice"
            )
        shards.append(shard)
    return tuple(shards)


def _shard(
    fields: Fields,
    world: World,
    tools: tuple[str, ...],
    patch: tuple[Edit, ...],
    declared: DeclaredTools,
) -> Shard:
    name = fields.string("name")
    if not _SHARD_NAME.match(name):
        raise fields.error("name", f"must be an identifier (letters, digits, '_'), got {name!r}")
    fields.prefix = f"shards.{name}."
    kind = fields.choice("kind", SHARD_KINDS)
    description = fields.string("description")
    if kind in ("fact", "tool_result"):
        shard = _text_shard(fields, name, kind, description, tools)
    elif kind == "function":
        shard = _function_shard(fields, name, description, declared)
    elif kind == "rows":
        shard = _rows_shard(fields, name, description, world)
    else:
        shard = _edit_shard(fields, name, kind, description, world, patch)
    implied = fields.string("implied_answer", required=False)
    if implied is not None:
        shard = dataclasses.replace(shard, implied_answer=str(implied))
    fields.done()
    return shard


def _text_shard(
    fields: Fields, name: str, kind: str, description: str, tools: tuple[str, ...]
) -> Shard:
    params: dict[str, Any] = {}
    content = None
    if kind == "fact":
        content = fields.string("content")
        removed = fields.string("removed", required=False)
        if removed is not None:
            params["removed"] = removed
    else:
        tool = fields.string("tool")
        if tool not in tools:
            raise fields.error(
                "tool", f"{tool!r} is not one of the task's tools ({', '.join(tools) or 'none'})"
            )
        params["tool"] = tool
    replacement = fields.string("replacement")
    if replacement == content:
        raise fields.error("replacement", "must differ from content")
    return Shard(name, kind, description, content, params, replacement)  # type: ignore[arg-type]


def _function_shard(
    fields: Fields, name: str, description: str, declared: DeclaredTools
) -> Shard:
    function = fields.string("function")
    specs = {s.name: s for s in declared.functions}
    if function not in specs:
        known = ", ".join(specs) or "none"
        raise fields.error("function", f"{function!r} is not a declared function ({known})")
    part = fields.choice("field", FUNCTION_FIELDS)
    params: dict[str, Any] = {"function": function, "field": part}
    if part in ("param", "hints"):
        param = fields.string("param")
        if param not in specs[function].parameters.get("properties", {}):
            raise fields.error("param", f"{param!r} is not a parameter of {function!r}")
        params["param"] = param
    if part == "whole" and len(specs) < 2:
        raise fields.error("field", "'whole' removes a function: the task must declare another")
    replacement = fields.string("replacement", required=False)
    return Shard(name, "function", description, None, params, replacement)


def _rows_shard(fields: Fields, name: str, description: str, world: World) -> Shard:
    table, where = fields.string("table"), fields.string("where")
    if world.dataset_dir is None:
        raise fields.error("kind", "'rows' needs a dataset: set suite.dataset")
    if table not in world.dataset_tables:
        raise fields.error(
            "table",
            f"{table!r} is not a table of the dataset; tables: {', '.join(world.dataset_tables)}",
        )
    values = fields.table_of("replacement", required=True) or {}
    if not values:
        raise fields.error("replacement", "must set at least one column, e.g. { amount = 0 }")
    for column, value in values.items():
        if isinstance(value, Mapping | list):
            raise fields.error(f"replacement.{column}", f"must be a single value, got {value!r}")
    return Shard(name, "rows", description, None, {"table": table, "where": where}, values)


def _edit_shard(
    fields: Fields, name: str, kind: str, description: str, world: World, patch: tuple[Edit, ...]
) -> Shard:
    key = _SHARD_KEYS[kind]
    target = fields.string(key)
    text = _shard_text(fields, key, kind, target, world, patch)
    values = fields.table_of("replacement", required=True) or {}
    if not values:
        raise fields.error("replacement", 'must hold at least one "old text" = "new text" edit')
    edits = []
    for find, replace in values.items():
        if not isinstance(replace, str):
            raise fields.error(f"replacement.{find!r}", f"must be a string, got {replace!r}")
        if find not in text:
            raise fields.error("replacement", f"edit {find!r} does not occur in {kind} {target!r}")
        edits.append(Edit(find, replace))
    return Shard(name, kind, description, None, {key: target}, tuple(edits))  # type: ignore[arg-type]


def _shard_text(
    fields: Fields, key: str, kind: str, target: str, world: World, patch: tuple[Edit, ...]
) -> str:
    if kind == "document":
        if target not in world.corpus:
            if not world.corpus:
                raise fields.error("kind", "'document' needs a corpus: set suite.corpus")
            raise fields.error(
                key,
                f"{target!r} is not a document of the corpus; documents: {', '.join(world.corpus)}",
            )
        return world.corpus[target]
    if world.package_dir is None:
        raise fields.error("kind", "'file' needs a package: set suite.package")
    path = world.package_dir / target
    if not path.is_file():
        raise fields.error(
            key, f"{target!r} is not a file of the package {display(world.package_dir)}"
        )
    return W.apply_edits(path.read_text(encoding="utf-8"), [e for e in patch if e.file == target])


def _check_placeholders(fields: Fields, prompt: str, shards: tuple[Shard, ...]) -> None:
    facts = {s.name for s in shards if s.kind == "fact"}
    try:
        parsed = list(string.Formatter().parse(prompt))
    except ValueError as exc:
        raise fields.error(
            "prompt", f"has a malformed placeholder ({exc}); write {{{{ and }}}} for literal braces"
        ) from None
    used = set()
    for _, field_name, spec, conversion in parsed:
        if field_name is None:
            continue
        if field_name not in facts:
            known = ", ".join(sorted(facts)) or "none"
            problem = f"has placeholder {{{field_name}}} but no fact shard of that name"
            raise fields.error("prompt", f"{problem} (fact shards: {known})")
        if spec or conversion:
            raise fields.error(
                "prompt", f"placeholder {{{field_name}}} must be plain, without ':' or '!'"
            )
        used.add(field_name)
    for name in sorted(facts - used):
        raise fields.error(
            "prompt", f"does not use fact shard {name!r}: add {{{name}}} where the fact belongs"
        )
