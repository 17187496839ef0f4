"""A malformed suite file gets an error naming the file, the task and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from shardscope.config.errors import ConfigError
from shardscope.scaffolds.tasks import (
    SuiteError,
    UnknownSuiteError,
    get_suite,
    load_suite,
    load_suites,
)

VALID = """
[suite]
name = "mini"
description = "A tiny suite for tests."
tools = ["calculator"]

[[tasks]]
id = "mini-001"
prompt = "{sheep} How many sheep? Answer with a number."
reference = "7"
check = { type = "numeric", expected = 7, tolerance = 0 }

[[tasks.shards]]
name = "sheep"
kind = "fact"
description = "the flock"
content = "Alda has 7 sheep."
replacement = "Alda has 9 sheep."
"""


def _write(tmp_path: Path, text: str, name: str = "mini.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _error(tmp_path: Path, text: str) -> str:
    path = _write(tmp_path, text)
    with pytest.raises(SuiteError) as info:
        load_suite(path)
    assert isinstance(info.value, ConfigError)
    message = str(info.value)
    assert "mini.toml" in message, message
    return message


def test_the_valid_suite_loads(tmp_path: Path) -> None:
    suite = load_suite(_write(tmp_path, VALID))
    assert suite.name == "mini" and [t.id for t in suite.tasks] == ["mini-001"]
    assert suite.tasks[0].tools == ("calculator",) and suite.tasks[0].check.tolerance == 0


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (('reference = "7"\n', ""), "task 'mini-001': reference is required but missing"),
        (
            ("expected = 7, tolerance = 0", "expected = 7, tolerance = 'abc'"),
            "task 'mini-001': check.tolerance must be a number, got 'abc'",
        ),
        (
            ("expected = 7, tolerance = 0", "expected = 7, tolerence = 0"),
            "task 'mini-001': check.tolerence is not a known field; did you mean 'tolerance'?",
        ),
        (
            ('kind = "fact"', 'kind = "fact"\ncontnet = "x"'),
            "task 'mini-001': shards.sheep.contnet is not a known field; did you mean 'content'?",
        ),
        (
            ('kind = "fact"', 'kind = "gossip"'),
            "task 'mini-001': shards.sheep.kind must be one of fact, document, rows, "
            "tool_result, file, function, got 'gossip'",
        ),
        (
            ('content = "Alda has 7 sheep."\n', ""),
            "task 'mini-001': shards.sheep.content is required but missing",
        ),
        (
            ('replacement = "Alda has 9 sheep."', 'replacement = "Alda has 7 sheep."'),
            "task 'mini-001': shards.sheep.replacement must differ from content",
        ),
        (
            ("{sheep} How", "{sheep} {goats} How"),
            "task 'mini-001': prompt has placeholder {goats} but no fact shard of that name "
            "(fact shards: sheep)",
        ),
        (("{sheep} How", "How"), "task 'mini-001': prompt does not use fact shard 'sheep'"),
        (
            ('tools = ["calculator"]', 'tools = ["calculator", "shell"]'),
            "suite: suite.tools names unknown tool 'shell'",
        ),
        (
            ('reference = "7"', 'reference = "7"\ntools = ["abacus"]'),
            "task 'mini-001': tools names unknown tool 'abacus'",
        ),
        (
            ('check = { type = "numeric"', 'check = { type = "fuzzy"'),
            "task 'mini-001': check.type must be one of exact, numeric, regex, tests_pass, "
            "tool_call, irrelevance, got 'fuzzy'",
        ),
        (
            ('prompt = "{sheep}', 'prompt = 42\nx = "{sheep}'),
            "task 'mini-001': prompt must be a string, got 42",
        ),
        (('id = "mini-001"', 'id = "mini 001"'), "task '#1': id must be letters, digits"),
        (
            ('description = "A tiny suite for tests."', 'descripton = "A tiny suite."'),
            "suite: suite.description is required",
        ),
        (
            ('name = "sheep"', 'name = "the sheep"'),
            "task 'mini-001': shards[0].name must be an identifier",
        ),
    ],
)
def test_errors_name_file_task_and_field(
    tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    old, new = change
    assert old in VALID
    message = _error(tmp_path, VALID.replace(old, new, 1))
    assert expected in message, message


def test_unknown_top_level_key(tmp_path: Path) -> None:
    message = _error(tmp_path, VALID + "\n[extras]\nfoo = 1\n")
    assert "suite: extras is not a known field" in message


def test_duplicate_task_id(tmp_path: Path) -> None:
    second = VALID.split("[[tasks]]", 1)[1]
    message = _error(tmp_path, VALID + "\n[[tasks]]" + second)
    assert "task 'mini-001': id is a duplicate" in message


def test_duplicate_shard_name(tmp_path: Path) -> None:
    shard = VALID.split("[[tasks.shards]]", 1)[1]
    message = _error(tmp_path, VALID + "\n[[tasks.shards]]" + shard)
    assert "task 'mini-001': shards[1].name is a duplicate: 'sheep'" in message


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    message = _error(tmp_path, VALID + "\nthis is not toml\n")
    assert "not valid TOML" in message


def test_a_task_without_shards(tmp_path: Path) -> None:
    text = VALID.split("[[tasks.shards]]")[0].replace("{sheep} ", "")
    assert "task 'mini-001': shards is required but missing" in _error(tmp_path, text)


def test_bad_regex(tmp_path: Path) -> None:
    text = VALID.replace(
        'check = { type = "numeric", expected = 7, tolerance = 0 }',
        'check = { type = "regex", pattern = "(" }',
    )
    assert "task 'mini-001': check.pattern is not a valid regular expression" in _error(
        tmp_path, text
    )


def test_resources_are_checked(tmp_path: Path) -> None:
    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "laws.md").write_text("Brawling costs 5 pennies.")
    doc_shard = """
[[tasks.shards]]
name = "laws"
kind = "document"
doc = "law"
description = "the law"
replacement = { "5 pennies" = "6 pennies" }
"""
    text = (
        VALID.replace('tools = ["calculator"]', 'tools = ["calculator"]\ncorpus = "docs"')
        + doc_shard
    )
    message = _error(tmp_path, text)
    assert (
        "task 'mini-001': shards.laws.doc 'law' is not a document of the corpus; documents: laws"
        in message
    )
    text = text.replace('doc = "law"', 'doc = "laws"').replace('"5 pennies" =', '"7 pennies" =')
    assert "shards.laws.replacement edit '7 pennies' does not occur in document 'laws'" in _error(
        tmp_path, text
    )
    missing_dir = VALID.replace(
        'tools = ["calculator"]', 'tools = ["calculator"]\ndataset = "nowhere"'
    )
    assert "suite: suite.dataset is not a directory" in _error(tmp_path, missing_dir)
    rows = (
        VALID
        + '\n[[tasks.shards]]\nname = "r"\nkind = "rows"\ntable = "t"\nwhere = "1=1"\n'
        + 'description = "d"\nreplacement = { a = 1 }\n'
    )
    assert "task 'mini-001': shards.r.kind 'rows' needs a dataset" in _error(tmp_path, rows)


def test_tool_result_shard_must_name_a_task_tool(tmp_path: Path) -> None:
    text = (
        VALID
        + '\n[[tasks.shards]]\nname = "calc"\nkind = "tool_result"\ntool = "sql"\n'
        + 'description = "d"\nreplacement = "0"\n'
    )
    assert (
        "task 'mini-001': shards.calc.tool 'sql' is not one of the task's tools (calculator)"
        in _error(tmp_path, text)
    )


def test_user_directory_suites_are_added_and_clashes_refused(tmp_path: Path) -> None:
    _write(tmp_path, VALID)
    suites = load_suites(tmp_path)
    assert "mini" in suites and "arithmetic" in suites
    _write(tmp_path, VALID.replace('name = "mini"', 'name = "arithmetic"'), "clash.toml")
    with pytest.raises(
        SuiteError,
        match=r"clash.toml: suite: name 'arithmetic' is already used by .*arithmetic.toml",
    ):
        load_suites(tmp_path)


def test_unknown_suite_lists_the_known_ones() -> None:
    with pytest.raises(
        UnknownSuiteError,
        match="unknown suite 'algebra'; known suites: arithmetic, bugfix, docs, planted, village",
    ):
        get_suite("algebra")
    assert get_suite("docs").name == "docs"
