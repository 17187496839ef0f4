"""`shardscope ablate` and `shardscope compare` as a user runs them, on the embedded SmolLM2
and Qwen2.5-Coder models through llama.cpp: ablated episodes linked to their baselines,
baselines reused on a second ablation run, the influence table, and a report."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_cli_run_real import frame, shardscope

SMOL = "smollm2-135m-instruct"
TASK = "arith-001"
SMALL = ["-p", "react-tools.max_steps=1", "-p", "react-tools.max_tokens_per_call=24"]


@pytest.mark.llm
@pytest.mark.slow
def test_ablate_links_each_ablation_to_its_baseline_and_reuses_baselines(
        tmp_path: Path, smollm2_path: Path) -> None:
    db = tmp_path / "a.duckdb"
    first = shardscope(tmp_path, "ablate", "--db", str(db), "-s", "arithmetic", "-m", SMOL,
                       "-a", "react-tools", "--tasks", TASK, "--mode", "removed", *SMALL,
                       "--no-progress")
    assert first.returncode == 0, first.stderr
    shards = frame(db, "SELECT shards FROM (SELECT attributes->>'$.\"shardscope.task.shards\"' "
                       "AS shards FROM spans WHERE span_type = 'episode' LIMIT 1)").shards[0]
    n_shards = shards.count('"')  // 2
    episodes = frame(db, "SELECT * FROM episodes")
    base = episodes[episodes.ablation_shard.isna()]
    ablated = episodes[episodes.ablation_shard.notna()]
    assert len(base) == 1 and len(ablated) == n_shards >= 2
    assert set(ablated.ablation_mode) == {"removed"} and set(ablated.ablation_kind) == {"fact"}
    assert set(ablated.baseline_episode_key) == {base.episode_key.iloc[0]}
    text = " ".join(first.stdout.split())
    assert "shard influence: success drop when the shard is ablated" in text
    assert all(shard in text for shard in ablated.ablation_shard)
    # Replace instead of remove: the stored baseline is reused, not run again.
    second = shardscope(tmp_path, "ablate", "--db", str(db), "-s", "arithmetic", "-m", SMOL,
                        "-a", "react-tools", "--tasks", TASK, "--mode", "replaced", *SMALL,
                        "--no-progress")
    assert second.returncode == 0, second.stderr
    assert "1 baselines reused from the store" in " ".join(second.stdout.split())
    after = frame(db, "SELECT * FROM episodes")
    assert (after.ablation_shard.isna()).sum() == 1  # still one baseline
    assert set(after.ablation_mode.dropna()) == {"removed", "replaced"}
    runs = frame(db, "SELECT * FROM runs ORDER BY started_at")
    assert list(runs.completed_episodes) == [1 + n_shards, n_shards]
    assert list(runs.planned_episodes) == [1 + n_shards, n_shards]


@pytest.mark.llm
@pytest.mark.slow
def test_compare_two_real_models_writes_a_report(tmp_path: Path, smollm2_path: Path) -> None:
    db = tmp_path / "c.duckdb"
    run = shardscope(tmp_path, "run", "--db", str(db), "-s", "arithmetic",
                     "-m", f"{SMOL},qwen2.5-coder-0.5b-instruct", "-a", "react-tools",
                     "--limit", "2", *SMALL, "--no-progress")
    assert run.returncode == 0, run.stderr
    out = shardscope(tmp_path, "compare", "--db", str(db), "-m", f"{SMOL},qwen2.5-coder-0.5b-instruct",
                     "--embedding", "tfidf", "-o", str(tmp_path / "report.md"))
    assert out.returncode == 0, out.stderr
    text = " ".join(out.stdout.split())
    assert "paired differences in success" in text and "qwen2.5-coder-0.5b-instruct · react-tools" in text
    report = (tmp_path / "report.md").read_text()
    assert "## Paired differences" in report and "## Where trajectories part" in report
    assert (tmp_path / "report_files" / "success.svg").exists()


def test_ablate_rejects_bad_options(tmp_path: Path) -> None:
    bad = shardscope(tmp_path, "ablate", "--db", str(tmp_path / "x.duckdb"), "-s", "arithmetic",
                     "-m", SMOL, "-a", "react-tools", "--mode", "scrambled")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert bad.stderr.strip() == "error: --mode must be removed, replaced or both, got 'scrambled'"
    missing = shardscope(tmp_path, "ablate", "--db", str(tmp_path / "x.duckdb"), "-s", "arithmetic")
    assert missing.returncode == 1 and "missing --models, --scaffolds" in missing.stderr
    assert not (tmp_path / "x.duckdb").exists()
