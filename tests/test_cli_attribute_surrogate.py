"""`shardscope attribute --surrogate`: the ContextCite-style Lasso over random shard masks, on
the real embedded SmolLM2 model. Its answer is copied from one note among irrelevant ones;
the copied note's weight must lead in every episode and the fits must hold out (cross-
validated R²), through the library and through the CLI on a recorded store."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
from pathlib import Path

import pytest

from shardscope.analysis import attribution as attr
from shardscope.analysis.surrogate import fit_surrogate
from shardscope.scaffolds.backends.registry import build_backend, load_catalog
from shardscope.scaffolds.types import GenerationConfig, Message
from tests.test_attribution_planted import NAMES, NOISE
from tests.test_cli_attribute import cli

SUITE = """
[suite]
name = "notes"
description = "An access code copied from one note among irrelevant ones."
tools = []

[[tasks]]
id = "notes-001"
prompt = "Notes:\\n{n0}\\n{code}\\n{n1}\\n\\nWhat is the access code of Orla's locker? Reply with the code only."
reference = "4000"
check = { type = "numeric", expected = 4000 }

[[tasks.shards]]
name = "code"
kind = "fact"
description = "the note with the code"
content = "The access code of Orla's locker is 4000."
replacement = "The access code of Orla's locker is 5111."

[[tasks.shards]]
name = "n0"
kind = "fact"
description = "an irrelevant note"
content = "The harbour ferry was painted blue last spring."
replacement = "The harbour ferry was painted red last spring."

[[tasks.shards]]
name = "n1"
kind = "fact"
description = "another irrelevant note"
content = "Owls nest in the old mill tower."
replacement = "Bats nest in the old mill tower."
"""


def surrogate_of_a_recorded_run(tmp_path: Path, suite: str, *, max_tokens: int
                                ) -> subprocess.CompletedProcess[str]:
    """`attribute --surrogate 8` on a store of one real SmolLM2 step over ``suite``."""
    suites = tmp_path / "suites"
    suites.mkdir()
    (suites / "notes.toml").write_text(suite, encoding="utf-8")
    config = f'suites_dir = "{suites}"\n'
    db = tmp_path / "s.duckdb"
    ran = cli(tmp_path, "run", "--db", str(db), "-s", "notes", "-m", "smollm2-135m-instruct",
              "-a", "react-tools", "-p", "react-tools.max_steps=1",
              "-p", f"react-tools.max_tokens_per_call={max_tokens}", "--no-progress",
              config=config)
    assert ran.returncode == 0, ran.stderr
    return cli(tmp_path, "attribute", "--db", str(db), "--surrogate", "8", config=config)


def test_bad_surrogate_arguments_are_one_line_errors(tmp_path: Path) -> None:
    few = cli(tmp_path, "attribute", "--surrogate", "4", "--db", str(tmp_path / "s.duckdb"))
    assert few.returncode == 2 and "Traceback" not in few.stderr and "--surrogate" in few.stderr
    mixed = cli(tmp_path, "attribute", "--surrogate", "8", "--mode", "replaced",
                "--db", str(tmp_path / "s.duckdb"))
    assert mixed.returncode == 1 and "Traceback" not in mixed.stderr
    assert "--surrogate removes shards and stores nothing" in mixed.stderr


@pytest.mark.llm
@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_copied_note_leads_every_fit_on_smollm2(smollm2_path: Path) -> None:
    entry = load_catalog().get("smollm2-135m-instruct")
    backend = build_backend(dataclasses.replace(entry, options={**entry.options, "n_threads": 1}))
    backend.load()
    fits = []
    for i in range(6):
        code = str(4000 + 137 * i)
        a = f"The access code of {NAMES[i]}'s locker is {code}."
        notes = [NOISE[(i + k) % len(NOISE)] for k in range(3)]
        prompt = ("Notes:\n" + "\n".join([*notes[:2], a, notes[2]]) + f"\n\nWhat is the access "
                  f"code of {NAMES[i]}'s locker? Reply with the code only.")
        out = asyncio.run(backend.generate([Message(role="user", content=prompt)], (),
                                           GenerationConfig(temperature=0, max_tokens=16)))
        text = str(out.raw_response["text"])
        assert code in text, text  # SmolLM2 copies the code (greedy)
        shards = [attr.ShardText("A", "fact", (a,), {})] + [
            attr.ShardText(f"N{k}", "fact", (n + "\n",), {}) for k, n in enumerate(notes)]
        fits.append(fit_surrogate(str(out.raw_request["prompt"]), text, shards,
                                  backend.score_continuation, masks=16))
    for fit in fits:
        weights = dict(zip(fit.shards, fit.weights, strict=True))
        noise = max(abs(weights[k]) for k in ("N0", "N1", "N2"))
        # measured: A 11.9-14.3 nats, the notes |w| <= 1.4, R² 0.99-1.00
        assert weights["A"] > 5 * max(noise, 1.0), weights
        assert fit.r2_heldout > 0.9 and fit.spread > 1.0, fit


@pytest.mark.llm
@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_attribute_surrogate_on_a_recorded_smollm2_store(tmp_path: Path, smollm2_path: Path) -> None:
    done = surrogate_of_a_recorded_run(tmp_path, SUITE, max_tokens=24)
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "surrogate weights" in text and "1 call(s) fitted" in text
    assert "cost: 8 forward passes" in text
    assert "notes/notes-001 step 0: 3 shards, held-out R²" in done.stderr
    weight = {cells[1]: float(cells[4]) for cells in (
        [c.strip() for c in line.strip("│ ").split("│")] for line in done.stdout.splitlines()
        if line.startswith("│ smollm2"))}
    assert set(weight) == {"code", "n0", "n1"}, done.stdout
    assert weight["code"] > 5 * max(abs(weight["n0"]), abs(weight["n1"]), 1.0), weight  # 12.24


@pytest.mark.llm
@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_a_selection_without_two_located_shards_is_a_one_line_error(
        tmp_path: Path, smollm2_path: Path) -> None:
    one = SUITE[:SUITE.index('[[tasks.shards]]\nname = "n0"')]  # the code's note only
    done = surrogate_of_a_recorded_run(
        tmp_path, one.replace("{n0}\\n", "").replace("{n1}\\n", ""), max_tokens=8)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no call of the selection has two or more shards located"), last
    assert "1 call(s) have fewer" in last
