"""Drawing one episode's conversation and one LLM call's token stream."""

from __future__ import annotations

import html
import json
import math
from typing import Any

import pandas as pd
import streamlit as st

from shardscope.tracer.transcript import ChatMessage, StepView, parse_messages

AVATARS = {"user": ":material/person:", "assistant": ":material/smart_toy:",
           "system": ":material/settings:", "tool": ":material/build:"}


def message(msg: ChatMessage) -> None:
    with st.chat_message(msg.role, avatar=AVATARS.get(msg.role, ":material/chat:")):
        st.caption(msg.role)
        if msg.text:
            st.text(msg.text)
        for call in msg.tool_calls:
            st.markdown(f"calls **`{call.get('name')}`** (`{call.get('id')}`)")
            st.code(_json(call.get("arguments")), language="json")
        for result in msg.tool_results:
            st.markdown(f"result of `{result.get('id')}`")
            st.text(str(result.get("response")))


def step(view: StepView) -> None:
    """One loop iteration: what was fed in, retries, the model's output, the tools it ran."""
    with st.container(border=True):
        st.markdown(_step_title(view))
        if view.fed_in:
            st.caption("fed in at this step")
            for msg in view.fed_in:
                message(msg)
        for attempt in view.attempts:
            st.warning(f"attempt {attempt.get('attempt')} failed: {attempt.get('error_type')} — "
                       f"{attempt.get('error_message')}", icon=":material/replay:")
        for call in view.llm_calls:
            if call.get("status_code") == "ERROR":
                st.error(f"LLM call failed: {call.get('error_type')} — {call.get('status_message')}")
        if view.output:
            st.caption("the model's output")
            for msg in view.output:
                message(msg)
        for tool in view.tool_calls:
            _tool(tool)
        if view.protocol_error:
            st.warning(f"protocol error: {view.protocol_error}", icon=":material/rule:")
        for call in view.llm_calls:
            _prompt(call, view.index)


def _step_title(view: StepView) -> str:
    action = view.action or {}
    kind = action.get("type", "none")
    detail = f" `{action['tool']}`" if action.get("tool") else ""
    if kind == "final":
        detail = f": {str(action.get('answer'))[:80]}"
    tokens = sum(int(c.get("output_tokens") or 0) for c in view.llm_calls)
    return (f"**Step {view.index}** · action **{kind}**{detail} · {len(view.llm_calls)} LLM call(s), "
            f"{tokens} output tokens · {len(view.tool_calls)} tool call(s)")


def _tool(tool: dict[str, Any]) -> None:
    ok = bool(tool.get("ok"))
    state = "ok" if ok else f"failed ({tool.get('error_type')})"
    st.markdown(f":material/build: **`{tool.get('tool_name')}`** — {state} — "
                f"{_ms(tool.get('duration_ms'))}")
    cells = st.columns(2)
    with cells[0]:
        st.caption("arguments")
        st.code(_json(tool.get("arguments")), language="json")
    with cells[1]:
        st.caption("result" if ok else "error")
        st.code(str(tool.get("result") if ok else tool.get("error_message") or tool.get("result")),
                language=None)


def _prompt(call: dict[str, Any], index: int) -> None:
    system = parse_messages(_system_as_message(call.get("system_instructions")))
    messages = parse_messages(call.get("input_messages"))
    with st.expander(f"Everything the model saw in step {index} ({len(system) + len(messages)} "
                     "messages)"):
        for msg in system + messages:
            message(msg)


def _system_as_message(raw: Any) -> Any:
    if not isinstance(raw, str):
        return None
    return json.dumps([{"role": "system", "parts": json.loads(raw)}])


def _json(value: Any) -> str:
    if isinstance(value, str):
        text = value
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            return text
    return json.dumps(value, indent=2, ensure_ascii=False)


def _ms(value: Any) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:,.1f} ms"


def logprob_color(logprob: float | None) -> str:
    """Green for confident tokens, through yellow, to red for unlikely ones; grey if unknown."""
    if logprob is None or (isinstance(logprob, float) and math.isnan(logprob)):
        return "#e0e0e0"
    p = math.exp(min(0.0, logprob))
    hue = 120 * p  # 0 = red, 120 = green
    return f"hsl({hue:.0f}, 70%, 82%)"


def token_text(tokens: pd.DataFrame) -> str:
    """The streamed text, one highlighted span per token (logprob in its tooltip)."""
    spans = []
    for row in tokens.itertuples():
        logprob = None if pd.isna(row.logprob) else float(row.logprob)
        tip = f"#{row.token_index} · {row.offset_ms:.1f} ms" + (
            f" · logprob {logprob:.3f} (p={math.exp(logprob):.1%})" if logprob is not None else "")
        text = html.escape(str(row.token)).replace("\n", "↵<br>")
        spans.append(f'<span title="{html.escape(tip)}" style="background:{logprob_color(logprob)};'
                     f'border-radius:3px;padding:1px 0;white-space:pre-wrap">{text}</span>')
    return ('<div class="shardscope-tokens" style="font-family:monospace;line-height:1.9">'
            + "".join(spans) + "</div>")
