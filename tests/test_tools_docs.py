"""search_docs ranks the right document first; read_doc reads and pages documents."""

from __future__ import annotations

from pathlib import Path

import pytest

from shardscope.config import CONFIG_DIR
from shardscope.scaffolds.tasks.world import read_corpus
from shardscope.scaffolds.tools import ToolContext, default_registry


@pytest.fixture(scope="module")
def corpus() -> dict[str, str]:
    return read_corpus(CONFIG_DIR / "data" / "corpus")


def _search(corpus, query: str, tmp_path: Path, **extra):
    ctx = ToolContext(workdir=tmp_path, corpus=corpus)
    return default_registry().get("search_docs").run({"query": query, **extra}, ctx)


@pytest.mark.parametrize(
    ("query", "best"),
    [
        ("who leads the Crowmen", "bandits-report"),
        ("how many silver marks in a gold crown", "currency"),
        ("toll at the Harrow Gate for a cart", "trade-routes"),
        ("multure taken by the miller", "the-mill"),
        ("tithe on harvests", "kings-tax-code"),
        ("fine for moving a boundary stone", "laws-of-the-ford"),
        ("sheep grazing on the common", "herding-customs"),
    ],
)
def test_search_ranks_the_right_document_first(
    corpus, tmp_path: Path, query: str, best: str
) -> None:
    result = _search(corpus, query, tmp_path)
    assert result.ok
    assert result.output.splitlines()[0].startswith(f"1. {best} ")


def test_search_is_deterministic_and_limited(corpus, tmp_path: Path) -> None:
    first = _search(corpus, "village reeve market", tmp_path, limit=3)
    assert first.output == _search(corpus, "village reeve market", tmp_path, limit=3).output
    assert len(first.output.splitlines()) == 3


def test_search_snippet_shows_the_matching_text(corpus, tmp_path: Path) -> None:
    line = _search(corpus, "Gallows Wood", tmp_path).output.splitlines()[0]
    assert "Gallows Wood" in line


def test_search_without_a_match_says_so(corpus, tmp_path: Path) -> None:
    result = _search(corpus, "xylophone", tmp_path)
    assert result.ok and "No document matches" in result.output


def test_read_doc_reads_pages_and_reports_unknown_ids(tmp_path: Path) -> None:
    ctx = ToolContext(workdir=tmp_path, corpus={"a": "x" * 500, "b": "short"}, max_output_chars=200)
    read = default_registry().get("read_doc")
    assert read.run({"doc_id": "b"}, ctx).output == "short"
    page = read.run({"doc_id": "a"}, ctx)
    assert page.truncated and "offset=200" in page.output
    rest = read.run({"doc_id": "a", "offset": 400}, ctx)
    assert rest.output == "x" * 100 and not rest.truncated
    missing = read.run({"doc_id": "c"}, ctx)
    assert missing.error_type == "unknown_document" and "a, b" in (missing.error_message or "")
