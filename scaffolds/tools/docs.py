"""Search and read over the episode's document corpus (doc id -> markdown text).

Ranking is BM25 over lower-cased word tokens with a light plural/possessive folding; ties
break by doc id so results are deterministic.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from shardscope.scaffolds.tools.base import Tool, ToolContext, ToolResult
from shardscope.scaffolds.types import ToolSpec

_WORD = re.compile(r"[a-z0-9]+")
_STOPWORDS = frozenset(
    """
    a an and are as at be by did do does for from has have how in is it its many much of
    on or that the their there this to was what when where which who whom why with
""".split()
)
K1, B = 1.5, 0.75
SNIPPET_CHARS = 160


def tokens(text: str) -> list[str]:
    """Word tokens for indexing and querying: lower-case, stopwords out, plurals folded."""
    return [_fold(w) for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]


def _fold(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("sses", "xes", "ches", "shes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def rank(corpus: Mapping[str, str], query: str) -> list[tuple[str, float]]:
    """(doc id, BM25 score) for every doc matching a query term, best first."""
    terms = list(dict.fromkeys(tokens(query)))
    if not terms or not corpus:
        return []
    docs = {doc_id: Counter(tokens(text)) for doc_id, text in corpus.items()}
    avg_len = sum(sum(c.values()) for c in docs.values()) / len(docs) or 1.0
    scores: dict[str, float] = {}
    for term in terms:
        having = [d for d, counts in docs.items() if term in counts]
        idf = math.log(1 + (len(docs) - len(having) + 0.5) / (len(having) + 0.5))
        for doc_id in having:
            tf = docs[doc_id][term]
            length = sum(docs[doc_id].values())
            norm = tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / avg_len))
            scores[doc_id] = scores.get(doc_id, 0.0) + idf * norm
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def snippet(text: str, query: str, width: int = SNIPPET_CHARS) -> str:
    """A one-line excerpt of ``text`` around the first query term it contains."""
    flat = " ".join(text.split())
    lowered = flat.lower()
    positions = [lowered.find(t) for t in _query_stems(query)]
    found = [p for p in positions if p >= 0]
    start = max(0, min(found) - width // 3) if found else 0
    excerpt = flat[start : start + width]
    return ("..." if start else "") + excerpt + ("..." if start + width < len(flat) else "")


def _query_stems(query: str) -> list[str]:
    return [t for t in tokens(query) if len(t) > 2] or tokens(query)


class SearchDocs(Tool):
    spec = ToolSpec(
        name="search_docs",
        description=(
            "Search the document library. Returns the best matching document ids with a "
            "snippet each; read a document in full with read_doc."
        ),
        parameters={
            "type": "object",
            "properties": {
                "query": {"type": "string", "minLength": 1, "description": "keywords"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 20, "default": 5},
            },
            "required": ["query"],
            "additionalProperties": False,
        },
    )

    def execute(self, arguments: dict[str, Any], ctx: ToolContext) -> ToolResult:
        if not ctx.corpus:
            return ToolResult.fail("no_documents", "there are no documents in this task")
        query = arguments["query"]
        hits = rank(ctx.corpus, query)[: arguments.get("limit", 5)]
        if not hits:
            return ToolResult(True, f"No document matches {query!r}. Try other keywords.")
        lines = [
            f"{i}. {doc_id} (score {score:.2f}): {snippet(ctx.corpus[doc_id], query)}"
            for i, (doc_id, score) in enumerate(hits, 1)
        ]
        return ToolResult(True, "\n".join(lines))


class ReadDoc(Tool):
    spec = ToolSpec(
        name="read_doc",
        description="Read a document from the library by its id (as returned by search_docs).",
        parameters={
            "type": "object",
            "properties": {
                "doc_id": {"type": "string", "minLength": 1},
                "offset": {
                    "type": "integer",
                    "minimum": 0,
                    "default": 0,
                    "description": "character offset to start at, to page through long documents",
                },
            },
            "required": ["doc_id"],
            "additionalProperties": False,
        },
    )

    def execute(self, arguments: dict[str, Any], ctx: ToolContext) -> ToolResult:
        doc_id = arguments["doc_id"].strip()
        text = ctx.corpus.get(doc_id)
        if text is None:
            known = ", ".join(sorted(ctx.corpus)) or "none"
            return ToolResult.fail(
                "unknown_document", f"no document {doc_id!r}; documents: {known}"
            )
        offset = arguments.get("offset", 0)
        limit = ctx.max_output_chars
        page = text[offset : offset + limit]
        if offset + limit >= len(text):
            return ToolResult(True, page)
        note = (
            f"\n[... document continues: {len(text):,} characters in all; "
            f"call read_doc with offset={offset + limit} for more]"
        )
        return ToolResult(True, page + note, truncated=True)
