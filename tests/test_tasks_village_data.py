"""The village dataset's CSVs are exactly what its seeded generator writes, in any process."""

from __future__ import annotations

import os
import subprocess
import sys

from shardscope.config import CONFIG_DIR

GENERATOR = CONFIG_DIR / "data" / "village" / "generate.py"


def test_committed_csvs_match_the_generator_whatever_the_hash_seed() -> None:
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, str(GENERATOR), "--check"], capture_output=True, text=True, env=env
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.strip() == "up to date"
