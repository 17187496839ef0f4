"""`shardscope suites check PATH` (issue 17, item 8): a dry run without a model that catches
what loading a suite cannot: a rows shard whose `where` matches no row, a reference_sql that
cannot run, a reference that fails its own check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from shardscope.scaffolds.tasks import load_suite
from shardscope.scaffolds.tasks.selfcheck import check_suite

ROOT = Path(__file__).resolve().parents[1]

BROKEN = '''
[suite]
name = "newcomer"
description = "A suite a newcomer wrote, with three mistakes."
tools = ["sql"]
dataset = "data/village"

[[tasks]]
id = "ok-001"
prompt = "How many herders live in Fernhollow? Answer with a number."
reference = "2"
reference_sql = "SELECT count(*) FROM herders WHERE hamlet = 'Fernhollow'"
check = { type = "numeric", expected = 2 }

[[tasks.shards]]
name = "jory_tanner"
kind = "rows"
table = "herders"
where = "name = 'Jory Tanner'"
description = "Jory's row"
replacement = { hamlet = "Ashgrove" }

[[tasks]]
id = "no-rows-002"
prompt = "How many herders live in Fernhollow? Answer with a number."
reference = "2"
check = { type = "numeric", expected = 2 }

[[tasks.shards]]
name = "ghost"
kind = "rows"
table = "herders"
where = "name = 'Nobody Atall'"
description = "a row that is not there"
replacement = { hamlet = "Ashgrove" }

[[tasks]]
id = "bad-sql-003"
prompt = "How many herders are there? {fact} Answer with a number."
reference = "2"
reference_sql = "SELECT count(*) FROM herdsmen"
check = { type = "numeric", expected = 2 }

[[tasks.shards]]
name = "fact"
kind = "fact"
content = "There are herders."
description = "a fact"
replacement = "There are no herders."

[[tasks]]
id = "wrong-ref-004"
prompt = "What is 2 + 2? {fact}"
reference = "5"
check = { type = "numeric", expected = 4 }

[[tasks.shards]]
name = "fact"
kind = "fact"
content = "Two and two make four."
description = "the sum"
replacement = "Two and two make five."
'''


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "newcomer.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_check_finds_each_mistake_and_passes_the_good_task(tmp_path: Path) -> None:
    report = check_suite(load_suite(_write(tmp_path, BROKEN)))
    assert report.tasks == 4 and report.ablations == 8 and report.references >= 4
    problems = "\n".join(report.problems)
    assert "task 'no-rows-002': shard 'ghost' removed" in problems
    assert "match nothing in table 'herders'" in problems
    assert "task 'bad-sql-003': reference_sql cannot run" in problems
    assert "task 'wrong-ref-004': reference '5' fails its own check" in problems
    assert "ok-001" not in problems
    assert len(report.problems) == 4  # ghost removed + replaced, bad sql, wrong reference


def test_the_command_exits_1_with_one_line_per_problem(tmp_path: Path) -> None:
    path = _write(tmp_path, BROKEN)
    out = subprocess.run([sys.executable, "-m", "shardscope", "suites", "check", str(path)],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert out.returncode == 1, out.stderr
    assert "4 problems" in out.stdout and "Traceback" not in out.stderr + out.stdout
    assert "reference_sql cannot run" in out.stdout


def test_the_command_passes_a_shipped_suite_and_refuses_a_missing_path(tmp_path: Path) -> None:
    good = subprocess.run([sys.executable, "-m", "shardscope", "suites", "check",
                           str(ROOT / "config" / "suites" / "arithmetic.toml")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert good.returncode == 0 and "0 problems" in good.stdout, good.stdout + good.stderr
    missing = subprocess.run([sys.executable, "-m", "shardscope", "suites", "check",
                              str(tmp_path / "nope.toml")],
                             capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr


IMPLIED = '''
[suite]
name = "implied"
description = "Replacements whose implied answers are right, wrong, or the original answer."
tools = ["sql"]
dataset = "data/village"

[[tasks]]
id = "rows-001"
prompt = "How many herders live in Fernhollow? Answer with a number."
reference = "2"
reference_sql = "SELECT count(*) FROM herders WHERE hamlet = 'Fernhollow'"
check = { type = "numeric", expected = 2 }

[[tasks.shards]]
name = "jory_right"
kind = "rows"
table = "herders"
where = "name = 'Jory Tanner'"
description = "Jory's row, moved away: one herder is left"
replacement = { hamlet = "Ashgrove" }
implied_answer = "1"

[[tasks.shards]]
name = "jory_wrong"
kind = "rows"
table = "herders"
where = "name = 'Jory Tanner'"
description = "the same row, with a miscounted implied answer"
replacement = { hamlet = "Ashgrove" }
implied_answer = "3"

[[tasks]]
id = "fact-002"
prompt = "What is 2 + 2? {fact} Answer with a number."
reference = "4"
check = { type = "numeric", expected = 4 }

[[tasks.shards]]
name = "fact"
kind = "fact"
content = "Two and two make four."
description = "the sum"
replacement = "Two and two make five."
implied_answer = "4.0"
'''


def test_check_verifies_implied_answers(tmp_path: Path) -> None:
    """An implied answer is checked against reference_sql on the replaced dataset where the
    task has one, and must never be the original answer; the right one passes."""
    report = check_suite(load_suite(_write(tmp_path, IMPLIED)))
    assert report.problems == [
        "task 'rows-001': shard 'jory_wrong': implied_answer '3', but reference_sql answers "
        "'1' on the replaced dataset",
        "task 'fact-002': shard 'fact': implied_answer '4.0' passes the task's own check: the "
        "replacement would imply the original answer",
    ]


def test_every_shipped_implied_answer_passes_the_check() -> None:
    from shardscope.scaffolds.tasks import load_suites

    suites = load_suites()
    implied = sum(s.implied_answer is not None for suite in suites.values()
                  for t in suite.tasks for s in t.shards)
    assert implied >= 36 + 22 + 15 + 20  # arithmetic, docs, village, planted
    for suite in suites.values():
        assert check_suite(suite).problems == [], suite.name
