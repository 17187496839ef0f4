"""Trace explorer: one episode's span tree and waterfall, its conversation step by step, the
token stream of any LLM call (coloured by logprob), and raw attributes on demand."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import streamlit as st

from shardscope.tracer import transcript
from shardscope.tracer.queries.trace import episode_label
from shardscope.ui import charts, conversation, data, widgets


def render() -> None:
    st.title("Trace explorer")
    ctx, _ = widgets.ready_store()
    wanted = st.query_params.get("episode") or None
    page = data.trace_page(ctx.path, ctx.version, wanted)
    if wanted and page.trace is None:
        st.warning(f"No episode `{wanted}` in this store; showing the latest one.")
        page = data.trace_page(ctx.path, ctx.version, None)
    trace = page.trace
    if trace is None:
        st.info("No episode in this store yet.")
        return
    _picker(page.picker, trace.episode)
    _header(trace.episode)
    tabs = st.tabs(["Conversation", "Timeline", "Tokens", "Attributes"])
    with tabs[0]:
        steps = transcript.conversation(trace)
        if not steps:
            st.info("This episode recorded no step.")
        for view in steps:
            conversation.step(view)
    with tabs[1]:
        _timeline(trace.spans)
    with tabs[2]:
        _tokens(ctx, trace.llm_calls)
    with tabs[3]:
        _attributes(ctx, trace.spans)


def _picker(picker: pd.DataFrame, episode: dict[str, Any]) -> None:
    current = str(episode["episode_id"])
    labels = dict(zip(picker["episode_id"], picker["label"], strict=True))
    labels.setdefault(current, episode_label(episode))
    cells = st.columns([3, 1])
    choice = cells[0].selectbox("Episode (the latest 200)", list(labels),
                                format_func=lambda e: labels[e], index=list(labels).index(current))
    typed = cells[1].text_input("or an episode id", placeholder="e.g. 1953288c7579466e").strip()
    target = typed or choice
    if target is not None and target != current:
        st.query_params["episode"] = target
        st.rerun()


def _header(ep: dict[str, Any]) -> None:
    seed = "" if pd.isna(ep.get("seed")) else f" · seed {int(ep['seed'])}"
    st.subheader(f"{ep['model']} · {ep['scaffold']} · {ep['suite']}/{ep['task_id']}{seed}")
    ablation = f" · ablation: {ep['ablation_shard']} {ep['ablation_mode']}" if ep.get("ablation_shard") else ""
    st.markdown(f"{widgets.outcome_badge(ep.get('outcome'))} run `{ep['run_id']}` · episode "
                f"`{ep['episode_id']}` · scaffold hash `{str(ep.get('scaffold_hash'))[:12]}`{ablation}")
    cells = st.columns(6)
    score = ep.get("score")
    cells[0].metric("Score", "–" if score is None or pd.isna(score) else f"{score:g}")
    cells[1].metric("Steps", int(ep["steps"]))
    cells[2].metric("LLM calls", int(ep["llm_calls"]))
    cells[3].metric("Tool calls", int(ep["tool_calls"]),
                    delta=f"{int(ep['tool_errors'])} failed" if ep["tool_errors"] else None,
                    delta_color="inverse")
    cells[4].metric("Tokens in / out", f"{int(ep['input_tokens']):,} / {int(ep['output_tokens']):,}")
    cells[5].metric("Time", widgets.fmt_seconds(ep.get("duration_s")))
    error = ep.get("error")
    if isinstance(error, str) and error:
        (st.error if ep.get("outcome") == "error" else st.warning)(error)
    answer = ep.get("final_answer")
    if isinstance(answer, str):
        st.markdown(f"**Final answer:** `{answer}`")


def _timeline(spans: pd.DataFrame) -> None:
    st.altair_chart(charts.waterfall(spans), width="stretch")
    table = spans[["label", "span_type", "offset_ms", "duration_ms", "status_code", "error_type",
                   "input_tokens", "output_tokens", "tool_name", "span_id"]]
    st.dataframe(table, hide_index=True, width="stretch", key="trace_spans", column_config={
        "label": st.column_config.TextColumn("span", width="large"),
        "offset_ms": st.column_config.NumberColumn("start (ms)", format="%.2f"),
        "duration_ms": st.column_config.NumberColumn("duration (ms)", format="%.2f"),
    })


def _call_label(row: dict[str, Any]) -> str:
    step = "–" if pd.isna(row["step_index"]) else int(row["step_index"])
    tokens = "" if pd.isna(row["output_tokens"]) else f" · {int(row['output_tokens'])} tokens out"
    return f"step {step} · {row['request_model']}{tokens} · {row['span_id']}"


def _tokens(ctx: data.Context, calls: pd.DataFrame) -> None:
    if calls.empty:
        st.info("This episode made no LLM call.")
        return
    labels = {r["span_id"]: _call_label(r) for r in calls.to_dict("records")}
    span_id = st.selectbox("LLM call", list(labels), format_func=lambda s: labels[s],
                           key="trace_call")
    tokens = data.tokens(ctx.path, ctx.version, span_id)
    if tokens.empty:
        st.info("No token stream recorded for this call (it was not streamed, or failed).")
        return
    has_logprobs = tokens["logprob"].notna().any()
    st.caption(f"{len(tokens)} tokens · " + ("coloured by probability (green: confident, red: "
               "unlikely); hover a token for its logprob" if has_logprobs else
               "no logprobs recorded (run with --logprobs to colour tokens by confidence)"))
    st.html(conversation.token_text(tokens))
    st.altair_chart(charts.token_timeline(tokens), width="stretch")
    if has_logprobs:
        mean = tokens["logprob"].mean()
        st.caption(f"mean logprob {mean:.3f} · perplexity {math.exp(-mean):.2f}")
    st.dataframe(tokens, hide_index=True, width="stretch", key="trace_tokens")


def _attributes(ctx: data.Context, spans: pd.DataFrame) -> None:
    labels = {r["span_id"]: f"{r['name']} · {r['span_type']} · {r['span_id']}"
              for r in spans.to_dict("records")}
    span_id = st.selectbox("Span", list(labels), format_func=lambda s: labels[s], key="trace_span")
    if not st.toggle("Show raw attributes", key="trace_raw"):
        st.caption("Raw attributes, resource and events are read from the store on demand.")
        return
    detail = data.span_detail(ctx.path, ctx.version, span_id)
    if detail is None:
        st.warning("This span is not in the store any more.")
        return
    st.json(detail.attributes, expanded=True)
    with st.expander("resource"):
        st.json(detail.resource)
    if not detail.events.empty:
        st.caption("events (token events are in the Tokens tab)")
        st.dataframe(detail.events, hide_index=True, width="stretch", key="trace_events")


if __name__ == "__main__":
    render()
