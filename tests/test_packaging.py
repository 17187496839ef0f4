"""The wheel installs one import name, and nothing in the user's directory can shadow it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from shardscope.tracer.store import Store

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_has_exactly_one_top_level_name(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
         "-w", str(tmp_path), str(REPO)],
        check=True, capture_output=True, timeout=600,
    )
    (wheel,) = tmp_path.glob("shardscope-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"shardscope"}
    # package data moves with the code
    for data in ("shardscope/config/models.toml", "shardscope/config/suites/village.toml",
                 "shardscope/config/data/village/schema.sql"):
        assert data in names


def test_status_works_from_a_directory_that_shadows_the_old_names(tmp_path: Path) -> None:
    work = tmp_path / "project"
    work.mkdir()
    (work / "config.py").write_text("raise SystemExit('the user config.py was imported')\n")
    for name in ("tracer", "ui", "scaffolds"):
        (work / name).mkdir()
        (work / name / "__init__.py").write_text(f"raise SystemExit('the user {name}/ was imported')\n")
    db = tmp_path / "store.duckdb"
    with Store(db).writer():
        pass
    result = subprocess.run(
        [sys.executable, "-m", "shardscope", "status", "--db", str(db)],
        cwd=work, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "was imported" not in result.stdout + result.stderr
    assert "schema" in result.stdout.lower()


def test_attribute_names_load_neither_duckdb_nor_the_sdk() -> None:
    code = (
        "import sys, shardscope.tracer.attributes\n"
        "print(sorted(m for m in ('duckdb', 'pyarrow', 'opentelemetry.sdk') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=True)
    assert result.stdout.strip() == "[]"
