"""Tool calls written as text become real tool calls; malformed ones are reported, not dropped.
And the prompts that ask for them: the GGUFs' own chat templates, with and without tools."""

from __future__ import annotations

import json

import pytest

from shardscope.scaffolds.backends.local_prompt import PromptFormat, tools_block
from shardscope.scaffolds.backends.text_tool_calls import parse_text_tool_calls
from shardscope.scaffolds.types import Message, ToolCall, ToolSpec

TOOLS = {"add", "search"}
ADD = ToolSpec("add", "Add two integers.", {"type": "object", "properties": {"a": {"type": "integer"}}})


def test_a_tool_call_block_becomes_a_call_and_leaves_the_text() -> None:
    text = 'Let me add.\n<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 3}}\n</tool_call>'
    rest, calls = parse_text_tool_calls(text, TOOLS, "call_1")
    assert rest == "Let me add."
    assert calls == (ToolCall("call_1_0", "add", {"a": 2, "b": 3},
                              raw='{"name": "add", "arguments": {"a": 2, "b": 3}}'),)


def test_several_blocks_and_several_objects_in_one_block() -> None:
    text = ('<tool_call>{"name": "add", "arguments": {"a": 1}}</tool_call>'
            '<tool_call>{"name": "search", "arguments": {"q": "x"}}\n{"name": "add", "arguments": {}}</tool_call>')
    _, calls = parse_text_tool_calls(text, TOOLS)
    assert [(c.id, c.name, c.arguments) for c in calls] == [
        ("call_0", "add", {"a": 1}), ("call_1", "search", {"q": "x"}), ("call_2", "add", {})]
    assert all(c.ok for c in calls)


@pytest.mark.parametrize(
    ("block", "name", "reason"),
    [
        ('{"name": "add", "arguments": {"a": 1,}}', "add", "not valid JSON"),
        ('{"name": "add", "arguments": "{a: 1}"}', "add", "string that is not JSON"),
        ('{"arguments": {"a": 1}}', "", "no string 'name'"),
        ('{"name": "add", "arguments": [1, 2]}', "add", "must be a JSON object"),
        ('["add", 1]', "", "must be a JSON object"),
        ("", "", "empty <tool_call> block"),
    ],
)
def test_a_malformed_call_is_kept_with_its_error_and_raw_text(block: str, name: str, reason: str) -> None:
    rest, (call,) = parse_text_tool_calls(f"Calling.<tool_call>{block}</tool_call>", TOOLS)
    assert rest == "Calling."
    assert not call.ok and reason in call.error
    assert (call.name, call.arguments, call.raw) == (name, {}, block)


def test_an_unclosed_block_cut_off_mid_json_says_so() -> None:
    _, (call,) = parse_text_tool_calls('<tool_call>\n{"name": "search", "arguments": {"q": "the', TOOLS)
    assert call.name == "search" and not call.ok
    assert "never closed" in call.error


def test_an_unclosed_block_with_complete_json_is_still_a_call() -> None:
    _, (call,) = parse_text_tool_calls('<tool_call>\n{"name": "add", "arguments": {"a": 4}}', TOOLS)
    assert call.ok and call.arguments == {"a": 4}


def test_arguments_given_as_a_json_string_or_as_parameters() -> None:
    _, calls = parse_text_tool_calls(
        '<tool_call>{"name": "add", "arguments": "{\\"a\\": 5}"}</tool_call>'
        '<tool_call>```json\n{"name": "search", "parameters": {"q": "y"}}\n```</tool_call>', TOOLS)
    assert [(c.name, c.arguments) for c in calls] == [("add", {"a": 5}), ("search", {"q": "y"})]


def test_a_bare_json_object_naming_an_offered_tool_is_a_call() -> None:
    rest, (call,) = parse_text_tool_calls('```json\n{"name": "add", "arguments": {"a": 1}}\n```', TOOLS)
    assert (rest, call.name, call.arguments, call.ok) == ("", "add", {"a": 1}, True)


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "add"}',  # no arguments: a JSON answer, not a call
        "The answer is 5.",
        'use {"name": "add"} like {"title": "nope", "arguments": {}}',
        '{"name": "add", "arguments": 5}',  # arguments that are no object: not a call
    ],
)
def test_other_text_is_left_alone(text: str) -> None:
    assert parse_text_tool_calls(text, TOOLS) == (text, ())


def test_a_bare_call_of_a_tool_not_offered_is_still_a_call_attempt() -> None:
    # Qwen2.5-Coder-0.5B writes {"name": "calculate", ...} when the tool is "calculator": a
    # call with a wrong name (the scaffold says "unknown tool"), not a final answer.
    rest, (call,) = parse_text_tool_calls('{"name": "calculate", "arguments": {"expression": "6*4"}}', TOOLS)
    assert (rest, call.name, call.arguments, call.ok) == ("", "calculate", {"expression": "6*4"}, True)


def test_no_tools_offered_means_no_bare_json_calls() -> None:
    text = '{"name": "add", "arguments": {"a": 1}}'
    assert parse_text_tool_calls(text, set()) == (text, ())


# --- prompts -------------------------------------------------------------------------------------

# The chat templates embedded in the two instruct GGUFs (read from their metadata).
SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
    "<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% endif %}"
)


@pytest.fixture
def smollm2_format() -> PromptFormat:
    pytest.importorskip("llama_cpp")
    return PromptFormat(SMOLLM2_TEMPLATE, bos_token="<|im_start|>", eos_token="<|im_end|>")


def test_template_without_tool_support_gets_the_tools_in_its_system_prompt(smollm2_format) -> None:
    conversation = [
        Message("system", "Be exact."),
        Message("user", "2+3?"),
        Message("assistant", "", tool_calls=(ToolCall("c0", "add", {"a": 2, "b": 3}),)),
        Message("tool", "5", tool_call_id="c0", name="add"),
        Message("tool", "ok", tool_call_id="c1", name="add"),
    ]
    prompt = smollm2_format.render(conversation, [ADD], chat=True)
    assert not smollm2_format.native_tools
    assert prompt.text.startswith("<|im_start|>system\nBe exact.\n\n# Tools")
    assert json.dumps(ADD.as_json_schema_tool()) in prompt.text
    assert '<|im_start|>assistant\n<tool_call>\n{"name": "add", "arguments": {"a": 2, "b": 3}}\n</tool_call><|im_end|>' in prompt.text
    # Consecutive tool results share one user turn, in the <tool_response> convention.
    assert "<|im_start|>user\n<tool_response>\n5\n</tool_response>\n<tool_response>\nok\n</tool_response><|im_end|>" in prompt.text
    assert prompt.text.endswith("<|im_start|>assistant\n")
    assert prompt.stop == ("<|im_end|>",) and prompt.rendering == "chat_template"


def test_without_tools_the_template_renders_as_llama_cpp_would(smollm2_format) -> None:
    prompt = smollm2_format.render([Message("user", "Hi")], (), chat=True)
    assert prompt.text == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")


def test_a_base_model_gets_a_plain_transcript() -> None:
    base = PromptFormat(None, bos_token="<bos>", eos_token="<eos>")
    prompt = base.render([Message("user", "Q: 2+2?\nA:")], (), chat=False)
    assert (prompt.text, prompt.rendering, prompt.add_bos) == ("Q: 2+2?\nA:", "transcript", True)
    assert not base.has_chat_template


def test_tools_block_uses_the_qwen_hermes_convention() -> None:
    block = tools_block([ADD])
    assert "<tools>\n" + json.dumps(ADD.as_json_schema_tool()) + "\n</tools>" in block
    assert "<tool_call>" in block and "</tool_call>" in block


def test_bare_calls_amid_prose_and_fences_as_small_models_write_them() -> None:
    text = ('Sure.\n```json\n{\n  "name": "add",\n  "arguments": {"a": 3, "b": 4}\n}\n```\n'
            'and then\n{"name": "search", "arguments": {"q": "z"}}')
    rest, calls = parse_text_tool_calls(text, TOOLS, "c")
    assert [(c.id, c.name, c.arguments) for c in calls] == [("c_0", "add", {"a": 3, "b": 4}), ("c_1", "search", {"q": "z"})]
    assert rest == "Sure.\n\nand then"


def test_a_broken_bare_call_naming_an_offered_tool_is_reported() -> None:
    rest, (call,) = parse_text_tool_calls('Calling: {"name": "add", "arguments": {"a": 3, "b": }}', TOOLS)
    assert (rest, call.name, call.ok) == ("Calling:", "add", False)
    assert call.raw == '{"name": "add", "arguments": {"a": 3, "b": }}' and "not valid JSON" in call.error
