"""Instantiating a task: fact placeholders, ablations of each shard kind, bad ablations."""

from __future__ import annotations

from pathlib import Path

import pytest

from shardscope.scaffolds.tasks import Ablation, AblationError, get_suite
from shardscope.scaffolds.tasks.instantiate import tidy


def test_facts_fill_the_prompt_and_removal_tidies_it(tmp_path: Path) -> None:
    task = get_suite("arithmetic").task("arith-001")
    base = task.instantiate(tmp_path / "a")
    question = "How many sheep does Alda have now? Answer with a number."
    assert (
        base.prompt
        == f"Alda the herder has 7 sheep. At the market she buys 5 more sheep. {question}"
    )
    removed = task.instantiate(tmp_path / "b", Ablation("flock", "removed"))
    assert removed.prompt == f"At the market she buys 5 more sheep. {question}"
    assert removed.shards == ("bought",)
    replaced = task.instantiate(tmp_path / "c", Ablation("flock", "replaced"))
    assert replaced.prompt.startswith("Alda the herder has 9 sheep.")
    assert replaced.shards == ("flock", "bought")


def test_tidy_collapses_gaps() -> None:
    assert tidy("A  .  B\n\n\n\nC ") == "A. B\n\nC"


def test_tool_result_shard_removes_or_overrides_the_tool(tmp_path: Path) -> None:
    task = get_suite("arithmetic").task("arith-007")
    assert task.instantiate(tmp_path / "a").tools == ("calculator",)
    assert task.instantiate(tmp_path / "b", Ablation("calculator", "removed")).tools == ()
    replaced = task.instantiate(tmp_path / "c", Ablation("calculator", "replaced"))
    assert replaced.tools == ("calculator",)
    assert replaced.tool_context.tool_overrides == {"calculator": "76"}


def test_document_shard_removed_from_or_edited_in_the_corpus(tmp_path: Path) -> None:
    task = get_suite("docs").task("docs-004")
    base = task.instantiate(tmp_path / "a").tool_context.corpus
    assert "every Thursday" in base["market-law"] and len(base) == 15
    removed = task.instantiate(
        tmp_path / "b", Ablation("market_law", "removed")
    ).tool_context.corpus
    assert "market-law" not in removed and len(removed) == 14
    replaced = task.instantiate(
        tmp_path / "c", Ablation("market_law", "replaced")
    ).tool_context.corpus
    assert "every Tuesday" in replaced["market-law"] and "Thursday" not in replaced["market-law"]


def test_file_shard_and_patch_in_the_workdir(tmp_path: Path) -> None:
    task = get_suite("bugfix").task("bugfix-001")
    base = task.instantiate(tmp_path / "a").tool_context.workdir
    assert "if bushels <= TITHE_EXEMPT_BELOW:" in (base / "ledger" / "tax.py").read_text()
    removed = task.instantiate(
        tmp_path / "b", Ablation("failing_test", "removed")
    ).tool_context.workdir
    assert (
        not (removed / "tests" / "test_tax.py").exists()
        and (removed / "tests" / "test_coins.py").exists()
    )
    replaced = task.instantiate(tmp_path / "c", Ablation("spec", "replaced")).tool_context.workdir
    assert "is exempt too" in (replaced / "SPEC.md").read_text()


def test_instances_are_independent(tmp_path: Path) -> None:
    task = get_suite("village").task("village-001")
    first = task.instantiate(tmp_path / "a")
    second = task.instantiate(tmp_path / "b", Ablation("jory_tanner", "removed"))
    assert first.tool_context.dataset_path != second.tool_context.dataset_path
    assert first.tool_context.dataset_path.is_relative_to(tmp_path / "a")
    assert not first.tool_context.dataset_path.is_relative_to(first.tool_context.workdir)


def test_bad_ablations_are_refused_with_the_known_shards(tmp_path: Path) -> None:
    task = get_suite("arithmetic").task("arith-001")
    with pytest.raises(
        AblationError, match="task 'arith-001' has no shard 'goats'; its shards: flock, bought"
    ):
        task.instantiate(tmp_path, Ablation("goats", "removed"))
    with pytest.raises(AblationError, match="unknown ablation mode 'halved'"):
        task.instantiate(tmp_path, Ablation("flock", "halved"))  # type: ignore[arg-type]
