"""Likelihood attribution locates function shards (BFCL's: a function's description, a
parameter's description or enum/default hints, a whole distractor function) in the tool
listing the local backend renders, and ablates them into exactly the listing outcome
ablation offers the model instead."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from shardscope.analysis import attribution as attr
from shardscope.scaffolds.backends.local_prompt import tools_block
from shardscope.scaffolds.tasks.instantiate import declared_tools
from shardscope.scaffolds.tasks.loader import load_suite
from shardscope.scaffolds.tasks.suite import Task

AREA = {"name": "area", "description": "Area of a circle.", "parameters": {
    "type": "object", "properties": {
        "radius": {"type": "integer", "description": "The radius."},
        "unit": {"type": "string", "description": "The unit.", "enum": ["cm", "m"],
                 "default": "cm"}},
    "required": ["radius"]}}
VOLUME = {"name": "volume", "description": "Volume of a cube – side³.", "parameters": {
    "type": "object", "properties": {"side": {"type": "integer", "description": "The side."}},
    "required": ["side"]}}
SHARDS = [
    ("desc_area", "area", "description", None, "Volume of a cube."),
    ("param_area__radius", "area", "param", "radius", "The unit."),
    ("hints_area__unit", "area", "hints", "unit", None),
    ("distractor_volume", "volume", "whole", None, None),
]


def _task(tmp_path: Path) -> Task:
    lines = ['[suite]', 'name = "fn"', 'description = "function shards"', 'tools = []', '',
             '[[tasks]]', 'id = "fn_0"', 'prompt = "Area of a circle of radius 3?"',
             f"functions = {json.dumps(json.dumps([AREA, VOLUME], ensure_ascii=False), ensure_ascii=False)}",
             'after_call = "end"',
             'check = { type = "tool_call", calls = \'[{"area": {"radius": [3]}}]\' }']
    for name, function, field, param, replacement in SHARDS:
        lines += ['', '[[tasks.shards]]', f'name = "{name}"', 'kind = "function"',
                  f'function = "{function}"', f'field = "{field}"', f'description = "{name}"']
        lines += [f'param = "{param}"'] if param else []
        lines += [f'replacement = "{replacement}"'] if replacement else []
    path = tmp_path / "fn.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (task,) = load_suite(path).tasks
    return task


def _prompt(listing: str) -> str:
    return f"<|im_start|>system\nYou solve tasks.\n\n{listing}<|im_end|>\n<|im_start|>user\nQ<|im_end|>\n"


@pytest.mark.parametrize("mode", ["removed", "replaced"])
def test_a_function_shard_ablates_into_the_listing_outcome_ablation_offers(
        tmp_path: Path, mode: str) -> None:
    task = _task(tmp_path)
    prompt = _prompt(tools_block(task.declared.functions))
    texts = {t.shard: t for t in attr.shard_texts(task)}
    assert set(texts) == {s[0] for s in SHARDS}
    for name, _, _, _, replacement in SHARDS:
        shard = next(s for s in task.shards if s.name == name)
        new, occurrences, status = attr.ablated_input(prompt, texts[name], mode)
        if mode == "replaced" and replacement is None:
            assert (new, status) == (None, "no_replacement") and occurrences == 1
            continue
        assert (status, occurrences) == ("scored", 1)
        offered = declared_tools(task.declared, shard, mode).functions
        assert new == _prompt(tools_block(offered)) and new != prompt


def test_what_each_ablation_changes(tmp_path: Path) -> None:
    task = _task(tmp_path)
    prompt = _prompt(tools_block(task.declared.functions))
    texts = {t.shard: t for t in attr.shard_texts(task)}
    removed = {n: attr.ablated_input(prompt, texts[n], "removed")[0] or "" for n in texts}
    assert '"volume"' in prompt and '"volume"' not in removed["distractor_volume"]
    assert "Area of a circle." not in removed["desc_area"]
    assert "The radius." not in removed["param_area__radius"]
    assert '"enum"' not in removed["hints_area__unit"] and '"default"' not in removed["hints_area__unit"]
    assert "side³" in prompt  # the listing keeps non-ASCII text as it is (ensure_ascii=False)
    replaced = attr.ablated_input(prompt, texts["desc_area"], "replaced")[0] or ""
    assert '"description": "Volume of a cube."' in replaced


def test_an_undeclared_function_is_unlocatable(tmp_path: Path) -> None:
    task = _task(tmp_path)
    shard = next(s for s in task.shards if s.name == "desc_area")
    ghost = replace(shard, params={**shard.params, "function": "ghost"})
    found = attr.shard_texts(replace(task, shards=(ghost,)))
    assert found[0].texts == () and "ghost" in found[0].why_unlocatable
