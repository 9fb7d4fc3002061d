"""Prompt formats: rendering, stop strings and where a base model's answer ends."""

from __future__ import annotations

import pytest

from engine.templates import prompt_format

BASE = prompt_format(None, "gemma3_text")
GEMMA_IT = ("{{ bos_token }}{% for m in messages %}<start_of_turn>{{ m['role'] }}\n{{ m['content'] }}"
            "<end_of_turn>\n{% endfor %}{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")
CONVERSATION = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"},
                {"role": "assistant", "content": "4"}, {"role": "user", "content": "What is 3+3?"}]


def test_a_model_with_a_template_keeps_it_and_stops_on_its_turn_marker():
    fmt = prompt_format(GEMMA_IT, "gemma3")
    text = fmt.render(CONVERSATION, bos_token="<bos>")
    assert not fmt.completion
    assert text.startswith("<bos><start_of_turn>system\nBe brief.<end_of_turn>")
    assert text.endswith("<start_of_turn>model\n")
    assert fmt.stop_strings == ("<end_of_turn>",)
    assert fmt.end_of_answer("4\n\nSome more text.\n4\n\n") is None  # its own EOS ends it


def test_a_base_model_gets_examples_system_text_then_question_answer_pairs():
    text = BASE.render(CONVERSATION, bos_token="<bos>")
    assert text.startswith("<bos>Question: ")  # worked examples first: they show what an answer looks like
    examples, rest = text[len("<bos>"):].split("Be brief.\n\n")
    assert examples.count("Question: ") == examples.count("\nAnswer: ") >= 2 and examples.endswith("\n\n")
    assert rest == "Question: What is 2+2?\nAnswer: 4\n\nQuestion: What is 3+3?\nAnswer:"
    assert BASE.completion and "\nQuestion:" in BASE.stop_strings


def test_a_chinese_question_gets_chinese_labels_and_examples():
    text = BASE.render([{"role": "user", "content": "法国的首都是哪里？"}])
    assert text.endswith("\n\n问题：法国的首都是哪里？\n回答：")
    assert "Question" not in text and "Answer" not in text and text.count("回答：") >= 3
    assert "\n问题：" in BASE.stop_strings


def test_the_same_conversation_prefix_renders_the_same_each_turn():
    # KV reuse across turns needs turn N's prompt to start with turn N-1's prompt and answer.
    first = BASE.render(CONVERSATION[:2])
    second = BASE.render(CONVERSATION)
    assert second.startswith(first + " 4")


@pytest.mark.parametrize("generated, answer", [
    # Recorded-looking runs of the 270M base model in the completion format.
    (" Paris\nQuestion: What is the capital of Italy?\nAnswer: Rome", " Paris"),
    (" Paris.\n\nIf you were asked to name the capital of Italy, you would say Rome.", " Paris."),
    (" 巴黎\n问题：意大利的首都是哪里？", " 巴黎"),
    (" 4\nQ: What is 5+5?\nA: 10", " 4"),
    (" The capital of France is Paris.\nThe capital of France is Paris.\nThe capital", " The capital of France is Paris."),
    (" 巴黎。\n\n\n\n", " 巴黎。"),
    (" a 和 b 的和是 100000000000000000000000000000", " a 和 b 的和是 10000"),
    (" 9 加 8 的结果是 9 加 8 的结果是 9 加 8 的结果是 9", " 9 加 8 的结果是"),
])
def test_the_answer_ends_where_a_base_model_runs_on(generated, answer):
    end = BASE.end_of_answer(generated, final=True)
    assert end is not None and generated[:end] == answer


def test_a_code_block_is_kept_whole_with_its_blank_and_repeated_lines():
    code = "```python\ndef f(x):\n    return x + 1\n\n\ndef g(x):\n    return x + 1\n```"
    assert BASE.end_of_answer(" " + code, final=True) is None
    summary = "\n\nChanged - to + so the values are added."
    assert BASE.end_of_answer(" " + code + summary, final=True) is None  # one paragraph after the code
    end = BASE.end_of_answer(" " + code + summary + "\n\nNow another story.", final=True)
    assert (" " + code + summary + "\n\nNow another story.")[:end] == " " + code + summary


def test_an_unfinished_line_is_not_judged_yet():
    # "The capital of France is Paris" might still become a longer, different line.
    assert BASE.end_of_answer(" The capital of France is Paris.\nThe capital of France is Paris") is None
    assert BASE.end_of_answer(" Paris.\nQues") is None


@pytest.mark.parametrize("generated", [
    " Paris.\n", " Paris.\nQuest", " Paris.\n\n", " The capital is Paris.\nThe capital",
])
def test_streaming_never_shows_what_a_later_rule_cuts(generated):
    shown = generated[:BASE.safe_prefix(generated)]
    for tail in ("Question: next", "\nMore rambling.", " is Paris.\n"):
        final = generated + tail
        end = BASE.end_of_answer(final, final=True)
        assert final[: len(final) if end is None else end].startswith(shown)


def test_a_one_line_answer_streams_as_it_grows():
    assert BASE.safe_prefix(" The capital of France is") == len(" The capital of France is")


def test_the_default_system_prompt_is_what_the_template_writes_when_none_is_given():
    from types import SimpleNamespace

    from assist.chat_defaults import DEFAULT_SYSTEM_PROMPT, LANGUAGE_RULE, system_prompt_for

    qwen = ("{%- if messages[0]['role'] == 'system' %}<|im_start|>system\n{{ messages[0]['content'] }}<|im_end|>\n"
            "{%- else %}<|im_start|>system\nYou are Qwen, a helpful assistant.<|im_end|>\n{%- endif %}"
            "{%- for m in messages %}{%- if m.role != 'system' %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
            "{%- endif %}{%- endfor %}{%- if add_generation_prompt %}<|im_start|>assistant\n{%- endif %}")
    llama3 = ("{% for m in messages %}<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n{{ m.content }}<|eot_id|>"
              "{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}")
    refuses = "{% if messages[0].role == 'system' %}{{ raise_exception('no system') }}{% endif %}{{ messages[0].content }}"
    assert prompt_format(qwen).default_system_prompt == "You are Qwen, a helpful assistant."
    assert prompt_format(llama3).default_system_prompt is None
    assert prompt_format(refuses).default_system_prompt is None
    assert BASE.default_system_prompt is None

    def engine_with(fmt):
        return SimpleNamespace(backend=SimpleNamespace(prompt_format=fmt))

    assert system_prompt_for(engine_with(prompt_format(qwen))) == f"You are Qwen, a helpful assistant. {LANGUAGE_RULE}"
    assert system_prompt_for(engine_with(BASE)) == DEFAULT_SYSTEM_PROMPT
    assert system_prompt_for(SimpleNamespace(backend=object())) == DEFAULT_SYSTEM_PROMPT  # a remote model
