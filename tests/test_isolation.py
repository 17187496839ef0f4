"""The conftest isolates every test from the developer's machine (HOME, XDG, cwd, settings)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from shardscope.config.settings import Settings, config_file_path, load_settings
from tests.conftest import REAL_HOME

ROOT = Path(__file__).resolve().parents[1]


def test_settings_come_from_no_developer_source() -> None:
    # Run as is, and again by the next test with a poisoned HOME, cwd and environment.
    assert config_file_path() is None
    settings = load_settings()
    assert settings == Settings() and dict(settings.source) == {}


def test_home_and_cwd_are_fresh_temp_dirs(tmp_path: Path) -> None:
    home, cwd = Path.home(), Path.cwd()
    assert str(home) != REAL_HOME and home.parent == cwd.parent == tmp_path.parent
    assert list(home.iterdir()) == [] and list(cwd.iterdir()) == []
    assert os.environ["XDG_CONFIG_HOME"] == str(home / ".config")
    assert not [n for n in os.environ if n.startswith("SHARDSCOPE_")
                and n not in {"SHARDSCOPE_STRICT_TRACING", "SHARDSCOPE_MODEL_CACHE"}]


def test_a_config_file_in_the_real_home_is_not_read(tmp_path: Path) -> None:
    developer = tmp_path / "developer-home"
    user_file = developer / ".config/shardscope/config.toml"
    user_file.parent.mkdir(parents=True)
    user_file.write_text('ui_port = 1111\ndb = "from-the-real-home.duckdb"\n')
    (tmp_path / "shardscope.toml").write_text("ui_port = 2222\n")  # in the directory pytest starts in
    env = {**os.environ, "HOME": str(developer), "XDG_CONFIG_HOME": str(developer / ".config")}
    probe = "from shardscope.config.settings import load_settings as l; s = l(); print(s.ui_port, s.db)"

    # Control: outside pytest, that HOME's file is what settings read.
    plain = subprocess.run([sys.executable, "-c", probe], cwd=developer, env=env,
                           capture_output=True, text=True, timeout=120)
    assert plain.stdout.split() == ["1111", "from-the-real-home.duckdb"], plain.stderr
    # Under pytest the conftest hides that file, ./shardscope.toml and SHARDSCOPE_* variables.
    inner = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp",
         str(tmp_path / "inner"), f"{ROOT}/tests/test_isolation.py::test_settings_come_from_no_developer_source"],
        cwd=tmp_path, env={**env, "SHARDSCOPE_UI_PORT": "3333", "SHARDSCOPE_CONFIG": str(user_file)},
        capture_output=True, text=True, timeout=300,
    )
    assert inner.returncode == 0 and "1 passed" in inner.stdout, inner.stdout + inner.stderr
