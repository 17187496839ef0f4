"""A real Phoenix receives a real run over OTLP and shows it the way its users expect.

A demo-sized matrix (three scripted models, six tasks, two seeds: 36 episodes) runs through the
real ``Runner`` with ``exporters = ["duckdb", "otlp"]`` and the OTLP endpoint at Phoenix's
``/v1/traces``. Phoenix (``arize-phoenix`` from PyPI, in its own venv, see
tests/helpers/phoenix_venv.py) stores what it understood; the assertions read it back through
Phoenix's own REST API, so they see what Phoenix's UI renders.

Phoenix reads OpenInference attributes; for ``gen_ai.*`` spans it synthesizes them on ingest
(``phoenix/trace/gen_ai/conversion.py``): the span kind from ``gen_ai.operation.name`` (chat ->
LLM, execute_tool -> TOOL, invoke_agent -> AGENT), ``llm.model_name`` from
``gen_ai.request.model`` on any span, ``llm.tools.N.tool.json_schema`` from
``gen_ai.tool.definitions`` (only a JSON string of flat definitions), ``llm.output_messages`` and
``llm.input_messages`` from the message attributes (JSON strings; one invalid item drops the
list), ``llm.token_count.*`` from ``gen_ai.usage.*`` and ``session.id`` from
``gen_ai.conversation.id``. So every assertion below is on one of those synthesized attributes
(or Phoenix's trace ids), never on an attribute the test wrote for Phoenix.

The second test keeps a screenshot of one episode's trace in Phoenix's UI, in headless Chromium,
under $TMPDIR/shardscope-phoenix-shots/ (not in the repository).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from shardscope.config.settings import Settings
from shardscope.scaffolds.backends.scripted import Scripted, ScriptedBackend
from shardscope.scaffolds.backends.traced import TracedModel
from shardscope.scaffolds.runner.matrix import MatrixSpec
from shardscope.scaffolds.runner.runner import Runner
from shardscope.scaffolds.types import ToolCall
from shardscope.tracer.setup import setup_tracing
from tests import fakes
from tests.helpers.phoenix_server import Phoenix, running_phoenix
from tests.helpers.wait import wait_until

pytestmark = pytest.mark.slow

MODELS = ("toy-a", "toy-b", "toy-c")
TASKS, SEEDS = 6, 2
EPISODES = len(MODELS) * TASKS * SEEDS
FINISH_REASONS = {"stop", "length", "content_filter", "tool_call", "error"}
SHOTS = Path(tempfile.gettempdir()) / "shardscope-phoenix-shots"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def _policy(model: str):
    """toy-a and toy-b add with the tool, then answer; toy-c answers at once, wrongly."""
    def answer(messages, tools, config):
        if model == "toy-c":
            return Scripted(text="Final Answer: 6")
        if len(messages) <= 2:
            return Scripted(tool_calls=(ToolCall("c1", "add", {"a": 2, "b": 3}),))
        return Scripted(text="Final Answer: 5")

    return answer


@dataclass(frozen=True)
class Shown:
    """The run as shardscope stored it and as Phoenix shows it."""

    phoenix: Phoenix
    spans: list[dict[str, Any]]
    episodes: dict[str, dict[str, Any]]  # episode_id -> the `episodes` row
    llm_tokens: dict[str, tuple[int, int]]  # model -> (input, output) summed in `llm_calls`
    otlp_stats: dict[str, Any]
    store_spans: int


@pytest.fixture(scope="module")
def shown(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shown]:
    workdir = tmp_path_factory.mktemp("phoenix")
    with running_phoenix(workdir / "phoenix") as phoenix:
        db = workdir / "store.duckdb"
        stats = _run_matrix(db, phoenix.otlp_traces)
        sent = stats["spans_written"]
        # Phoenix answers the OTLP request before its bulk inserter stores the spans.
        spans = wait_until(lambda: (s := phoenix.spans()) and len(s) >= sent and s,
                           lambda: f"{sent} spans in Phoenix (log: {phoenix.log})")
        episodes, tokens, stored = _store_facts(db)
        yield Shown(phoenix, spans, episodes, tokens, stats, stored)
    SHOTS.mkdir(parents=True, exist_ok=True)  # kept for a look after the run, with the shots
    shutil.copy(phoenix.log, SHOTS / "phoenix.log")


def _run_matrix(db: Path, endpoint: str) -> dict[str, Any]:
    settings = Settings(db=db, flush_interval=0.1, exporters=("duckdb", "otlp"),
                        otlp_endpoint=endpoint)
    tracing = setup_tracing(settings, strict=True)
    models = {name: TracedModel(ScriptedBackend(model=name, policy=_policy(name)), tracing,
                                model_id=name) for name in MODELS}
    spec = MatrixSpec(suites=("toy",), models=MODELS, scaffolds=("react-tools",), seeds=SEEDS)
    runner = Runner(tracing, fakes.resources(models, tasks=TASKS), progress=False)
    try:
        report = asyncio.run(runner.run(spec))
    finally:
        tracing.shutdown()
    assert report.ran == EPISODES
    return dict(tracing.stats()["otlp"])


def _store_facts(db: Path) -> tuple[dict[str, dict[str, Any]], dict[str, tuple[int, int]], int]:
    with duckdb.connect(str(db), read_only=True) as con:
        cursor = con.execute("SELECT * FROM episodes")
        names = [d[0] for d in cursor.description]
        rows = (dict(zip(names, row, strict=True)) for row in cursor.fetchall())
        episodes = {row["episode_id"]: row for row in rows}
        tokens = {model: (int(i), int(o)) for model, i, o in con.execute(
            "SELECT model, sum(input_tokens), sum(output_tokens) FROM llm_calls GROUP BY model"
        ).fetchall()}
        (count,) = con.execute("SELECT count(*) FROM spans").fetchone() or (0,)
    return episodes, tokens, int(count)


def _kind(spans: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [s for s in spans if s["span_kind"] == kind]


def _attr(span: dict[str, Any], key: str) -> Any:
    return span["attributes"].get(key)


def test_every_span_arrives_and_the_run_is_stored(shown: Shown) -> None:
    assert shown.otlp_stats["write_errors"] == 0 and shown.otlp_stats["lost_spans"] == 0
    assert len(shown.spans) == shown.otlp_stats["spans_written"] == shown.store_spans
    assert len(shown.episodes) == EPISODES


def test_one_trace_per_episode(shown: Shown) -> None:
    agents = _kind(shown.spans, "AGENT")
    assert len(agents) == EPISODES
    by_trace: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for span in shown.spans:
        by_trace[span["context"]["trace_id"]].append(span)
    agent_traces = {a["context"]["trace_id"] for a in agents}
    assert len(agent_traces) == EPISODES, "several episodes share a trace"
    for agent in agents:
        trace = by_trace[agent["context"]["trace_id"]]
        assert agent["parent_id"] is None, f"{agent['name']} is not its trace's root"
        episode = _attr(agent, "shardscope.episode.id")
        assert {_attr(s, "shardscope.episode.id") for s in trace} == {episode}
        assert _attr(agent, "gen_ai.conversation.id") == episode
    in_episodes = {s["context"]["trace_id"] for s in shown.spans if s["span_kind"] in ("LLM", "TOOL")}
    assert in_episodes <= agent_traces


def test_the_run_is_one_phoenix_session_of_episode_traces(shown: Shown) -> None:
    """``session.id`` is the run id: Phoenix's Sessions page lists the run, one trace per episode."""
    (run_id,) = {row["run_id"] for row in shown.episodes.values()}
    sessions = shown.phoenix.get("/v1/projects/default/sessions", limit=1000)["data"]
    assert [s["session_id"] for s in sessions] == [run_id]
    traces = {t["trace_id"] for t in sessions[0]["traces"]}
    agent_traces = {a["context"]["trace_id"] for a in _kind(shown.spans, "AGENT")}
    assert agent_traces <= traces and len(agent_traces) == EPISODES
    assert sessions[0]["token_count_prompt"] == sum(i for i, _ in shown.llm_tokens.values())


def test_span_kinds_llm_tool_agent(shown: Shown) -> None:
    kinds = Counter((s["name"].split()[0], s["span_kind"]) for s in shown.spans)
    llm_calls = 2 * TASKS * SEEDS * 2 + TASKS * SEEDS  # toy-a/b call twice, toy-c once
    assert kinds[("chat", "LLM")] == llm_calls
    assert kinds[("execute_tool", "TOOL")] == 2 * TASKS * SEEDS
    assert kinds[("invoke_agent", "AGENT")] == EPISODES
    for (prefix, kind), _ in kinds.items():
        if prefix in ("chat", "execute_tool", "invoke_agent"):
            assert kind != "UNKNOWN", prefix
    tools = _kind(shown.spans, "TOOL")
    assert {_attr(t, "tool.name") for t in tools} == {"add"}
    assert all(_attr(t, "output.value") == "5" for t in tools)


def test_tool_definitions_present(shown: Shown) -> None:
    for llm in _kind(shown.spans, "LLM"):
        schema = _attr(llm, "llm.tools.0.tool.json_schema")
        assert schema is not None, f"Phoenix shows no tools on {llm['name']}"
        schema = json.loads(schema) if isinstance(schema, str) else schema
        assert schema["function"]["name"] == "add"
        assert schema["function"]["description"] == "Add two integers a and b."
        assert schema["function"]["parameters"]["required"] == ["a", "b"]


def test_output_messages_present(shown: Shown) -> None:
    for llm in _kind(shown.spans, "LLM"):
        prefix = "llm.output_messages.0.message."
        assert _attr(llm, prefix + "role") == "assistant", f"no output message on {llm['name']}"
        assert _attr(llm, prefix + "finish_reason") in FINISH_REASONS
        content = _attr(llm, prefix + "content")
        call = _attr(llm, prefix + "tool_calls.0.tool_call.function.name")
        assert content in ("Final Answer: 5", "Final Answer: 6") or call == "add"
        assert _attr(llm, "llm.input_messages.0.message.role") == "system"


def test_token_counts(shown: Shown) -> None:
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for llm in _kind(shown.spans, "LLM"):
        prompt = _attr(llm, "llm.token_count.prompt")
        completion = _attr(llm, "llm.token_count.completion")
        # the scripted backend counts words: a reply that is only a tool call has 0 output tokens
        assert isinstance(prompt, int) and isinstance(completion, int) and prompt > 0 <= completion
        assert _attr(llm, "llm.token_count.total") == prompt + completion
        totals[_attr(llm, "llm.model_name")][0] += prompt
        totals[_attr(llm, "llm.model_name")][1] += completion
    assert {m: tuple(t) for m, t in totals.items()} == shown.llm_tokens


def test_the_model_on_the_agent_span(shown: Shown) -> None:
    for agent in _kind(shown.spans, "AGENT"):
        episode = shown.episodes[_attr(agent, "shardscope.episode.id")]
        assert _attr(agent, "llm.model_name") == episode["model"]
        assert _attr(agent, "gen_ai.agent.version") == episode["scaffold_hash"]
        assert _attr(agent, "gen_ai.agent.name") == "react-tools"


@pytest.mark.browser
@pytest.mark.skipif((CHROMIUM is None or CHROMEDRIVER is None) and not os.environ.get("CI"),
                    reason="headless Chromium is not installed: apt-get install chromium "
                           "chromium-driver (.ci/run does; under CI this test fails instead)")
def test_screenshot_of_a_trace_in_phoenix(shown: Shown, tmp_path: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert CHROMIUM and CHROMEDRIVER, "CI must have headless Chromium: .ci/run installs it"

    project = shown.phoenix.get("/v1/projects")["data"][0]["id"]
    agent = next(a for a in _kind(shown.spans, "AGENT") if _attr(a, "shardscope.model.id") == "toy-a")
    trace = agent["context"]["trace_id"]
    answer = next(s for s in _kind(shown.spans, "LLM") if s["context"]["trace_id"] == trace
                  and _attr(s, "llm.output_messages.0.message.content") == "Final Answer: 5")
    url = f"{shown.phoenix.url}/projects/{project}/traces/{trace}"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--window-size=1600,1200", f"--user-data-dir={tmp_path / 'chrome'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        driver.set_page_load_timeout(120)
        # the trace tree with its agent span selected, then the final chat call: its messages
        views = {"phoenix-trace.png": (f"{url}?selectedSpanNodeId={agent['id']}",
                                       ["invoke_agent react-tools", "chat toy-a",
                                        "execute_tool add", "Attributes"]),
                 "phoenix-llm-span.png": (f"{url}?selectedSpanNodeId={answer['id']}",
                                          ["invoke_agent react-tools", "Final Answer: 5"])}
        for name, (page, expected) in views.items():
            driver.get(page)
            _wait_for_text(driver, expected, page)
            shot = SHOTS / name
            assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
            (SHOTS / f"{shot.stem}.txt").write_text(driver.execute_script(
                "return document.body.innerText"))
    finally:
        driver.quit()


def _wait_for_text(driver: Any, expected: list[str], page: str) -> str:
    """The page's text once every expected string is in it and it stayed the same for a poll."""
    seen: list[str] = []

    def rendered() -> str | None:
        text = driver.execute_script("return document.body.innerText")
        stable = bool(seen) and seen[-1] == text
        seen.append(text)
        return text if stable and all(e in text for e in expected) else None

    return wait_until(rendered, lambda: f"{page} to show {expected}; it shows "
                      f"{(seen or [''])[-1][:2000]!r}", timeout=180, interval=0.5)
