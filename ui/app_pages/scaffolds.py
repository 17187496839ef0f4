"""Scaffolds: each scaffold's description, parameters, prompts and hash as the code defines
them now, the versions (hashes) the store's episodes ran under, and what differs between two
of them."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from shardscope.analysis.scaffold_cards import diff_versions, scaffold_cards
from shardscope.ui import data


def render() -> None:
    st.title("Scaffolds")
    st.caption("The agent loops every model runs in, byte for byte the same across models. "
               "A scaffold's hash covers its code, prompts and parameters: two episodes used "
               "the same scaffold exactly when their hashes match.")
    ctx = data.current()
    versions = data.scaffold_versions(ctx.path, ctx.version)
    for card in scaffold_cards():
        with st.expander(f"{card.name} · hash {card.hash[:12]}", expanded=False):
            st.write(card.description)
            st.dataframe(pd.DataFrame({"parameter": list(card.params),
                                       "default": [str(v) for v in card.params.values()]}),
                         hide_index=True)
            for key, text in card.prompts.items():
                st.markdown(f"Prompt **{key}**")
                st.code(text, language="text")
    _versions(versions)


def _versions(versions: pd.DataFrame) -> None:
    st.subheader("Versions in this store")
    if versions.empty:
        st.info("No episodes yet: the hashes of the scaffolds runs used appear here.")
        return
    shown = versions.assign(scaffold_hash=versions.scaffold_hash.str[:12])
    st.dataframe(shown[["scaffold", "scaffold_hash", "episodes", "first_seen", "last_seen"]],
                 hide_index=True)
    labels = [f"{r.scaffold} · {r.scaffold_hash[:12]} ({r.episodes} episodes)"
              for r in versions.itertuples()]
    if len(labels) < 2:
        return
    st.subheader("Difference between two hashes")
    left, right = st.columns(2)
    a = left.selectbox("a", range(len(labels)), format_func=labels.__getitem__, index=0,
                       key="scaffold_diff_a")
    b = right.selectbox("b", range(len(labels)), format_func=labels.__getitem__,
                        index=1, key="scaffold_diff_b")
    _diff(versions.iloc[a], versions.iloc[b])


def _diff(a: pd.Series, b: pd.Series) -> None:
    if a.scaffold_hash == b.scaffold_hash:
        st.write("The same hash: the same code, prompts and parameters.")
        return
    diff = diff_versions({"params": a.params, "prompts": a.prompts},
                         {"params": b.params, "prompts": b.prompts})
    if a.scaffold != b.scaffold:
        st.write(f"Two different scaffolds ({a.scaffold} and {b.scaffold}).")
    if diff.params:
        st.markdown("**Parameters**")
        st.dataframe(pd.DataFrame([{"parameter": k, "a": json.dumps(x), "b": json.dumps(y)}
                                   for k, (x, y) in diff.params.items()]), hide_index=True)
    for key, text in diff.prompts.items():
        st.markdown(f"**Prompt {key}**")
        st.code(text, language="diff")
    if diff.code_only:
        st.write("Same parameters and prompts: the code differs (the loop, the runtime or the "
                 "parsers).")
    elif not diff.params and not diff.prompts:
        st.write("Same parameters; prompts were not recorded by the older store, so the "
                 "difference is in the prompts or the code.")


if __name__ == "__main__":
    render()
