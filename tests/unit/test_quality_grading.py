"""The quality bench's grading: right answers in other wordings count, wrong ones and guesses do not.

Each case is a wording a real model wrote (Qwen2.5-Coder-0.5B, Gemma 3 270M) or its wrong twin,
so a rule that gets looser is caught by the wrong twin, one that gets stricter by the right one.
"""

from __future__ import annotations

import json

import pytest

from bench.function_check import check_function, definitions, pick_function
from bench.quality_grading import first_number, functions_defined, is_correct, is_parroted
from bench.quality_sets import CONVERSATIONS, FUNCTIONS, load_set

ARITH = {"kind": "arithmetic", "number": 7}
PLANET = {"kind": "fact", "answers": ["Jupiter"]}
ADD = {"kind": "code_block", "code_language": "python", "must_contain": ["def add", "return"]}


@pytest.mark.parametrize("answer, expected", [
    ("10 - 3 equals 7.", 7), ("The answer to 2 + 2 is 4.", 4), ("10 减 3 等于 7。", 7), ("2 + 2 = 4", 4),
    ("要确定 100 除以 4 的结果：\n1. 余数是这个数减去另一个数\n2. 100 ÷ 4 = 25\n所以，答案是 \\(\\boxed{25}\\)。", 25),
    ("4, 5, 6", 4), ("十七", 17), ("Seven.", None),
])
def test_the_number_given_as_the_result(answer, expected):
    assert first_number(answer) == expected


def test_arithmetic_is_judged_by_the_result_not_the_operands():
    assert is_correct(ARITH, "10 - 3 equals 7.")
    assert not is_correct(ARITH, "10 - 3 equals 6.")
    assert not is_correct(ARITH, "10 - 3 = 13")


def test_a_thousands_separator_is_not_a_list_of_guesses():
    answer = "The largest planet in the solar system is Jupiter, which is approximately 139,824 kilometers (76,500 miles) away from Earth."
    assert is_correct(PLANET, answer)
    assert not is_correct(PLANET, "Mars, Venus, Jupiter, Saturn")
    assert not is_correct(PLANET, "Mars,Venus,Jupiter,Saturn")
    assert not is_correct(PLANET, "The largest planet is Saturn, about 116,460 km across.")


def test_code_counts_across_the_answers_python_blocks():
    answer = ("当然！\n\n```python\ndef add(a, b):\n    return a + b\n```\n\n例如：\n\n"
              "```python\nresult = add(5, 3)\nprint(result)  # 输出: 8\n```\n\n希望这对你有帮助！")
    assert is_correct(ADD, answer)
    assert not is_correct(ADD, "```python\nresult = add(5, 3)\n```")
    assert not is_correct(ADD, "```python\ndef add(a, b):\n    return a +\n```\n```python\nprint(add(1, 2))\n```")


@pytest.mark.parametrize("answer, function, ok", [
    ("```python\ndef is_prime(n):\n    return n > 1\n```", "is_prime", True),
    ("```python\ndef prime(n):\n    return n > 1\n```", "is_prime", False),   # not the function asked for
    ("```python\ndef prime(n):\n    return n > 1\n```", None, True),          # no name asked: any def
    ("def is_prime(n):\n    return n > 1\n", "is_prime", False),                # not fenced
    ("```python\ndef is_prime(n)\n    return n > 1\n```", "is_prime", False),  # syntax error
    ("```python\nprint(reversed('abc'))\n```", None, False),                    # no def at all
])
def test_a_write_a_function_answer(answer, function, ok):
    assert is_correct({"kind": "function", "function": function}, answer) is ok


def test_functions_defined_are_top_level_with_their_positional_counts():
    code = "import math\ndef f(a, b=1, *rest):\n    def inner(x):\n        pass\nclass C:\n    def m(self): pass\n"
    assert functions_defined(code) == [("f", 2)]
    assert functions_defined("def (") == []


def test_only_the_definitions_run_and_the_function_is_picked_by_name_or_arity():
    code = "import math\nLIMIT = 3\nn = int(input())\ndef add(a, b):\n    return a + b\ndef add3(a, b, c):\n    return a + b + c\nprint(add3(1, 2, 3))\n"
    kept = definitions(code)
    assert "input" not in kept and "print" not in kept and "LIMIT = 3" in kept and "import math" in kept
    assert pick_function(kept, None, 3) == "add3" and pick_function(kept, None, 2) == "add"
    assert pick_function(kept, "add", 3) == "add" and pick_function(kept, "gcd", 2) is None


def test_a_function_is_run_isolated_and_judged_on_its_results():
    tests = [[[12, 18], 6], [[7, 5], 1]]
    right = check_function("def gcd(a, b):\n    while b:\n        a, b = b, a % b\n    return a\n", "gcd", tests)
    assert right.passed and right.function == "gcd"
    wrong = check_function("def gcd(a, b):\n    return min(a, b)\n", "gcd", tests)
    assert not wrong.passed and "case 1: 12" in wrong.detail
    assert check_function("def c(x):\n    return x * 1.8 + 32\n", None, [[[100], 212]]).passed  # 212.0 == 212
    assert not check_function("def gcd(a, b):\n    raise ValueError('no')\n", "gcd", tests).passed
    assert not check_function("def gcd(a, b):\n    while True:\n        pass\n", "gcd", tests, timeout=2).passed


def test_parroting_is_still_caught():
    system = "You are a helpful assistant. Answer in the same language as the user's question."
    assert is_parroted("You are a helpful assistant. Answer in the same language as", system, "Hi?")
    assert not is_parroted("The capital of France is Paris.", system, "What is the capital of France?")


def test_the_new_sets_are_well_formed():
    conversations, requests = load_set(CONVERSATIONS), load_set(FUNCTIONS)
    assert len(conversations) == len(requests) == 10
    for items in (conversations, requests):
        assert {item["language"] for item in items} == {"en", "zh"} and len({i["id"] for i in items}) == 10
    assert all(len(item["turns"]) == 2 for item in conversations)
    for item in [*requests, *(c for c in conversations if c["kind"] == "function")]:
        assert item["tests"] and all(len(case) == 2 and isinstance(case[0], list) for case in item["tests"])
    json.dumps(requests)  # plain JSON values: they travel to the isolated run as JSON


def test_a_built_in_the_request_rules_out_makes_the_function_wrong():
    code = "def list_max(nums):\n    if not nums:\n        return None\n    return max(nums)\n"
    tests = [[[[3, 9, 2]], 9]]
    assert check_function(code, "list_max", tests).passed
    ruled_out = check_function(code, "list_max", tests, ("max",))
    assert not ruled_out.passed and "max" in ruled_out.detail
    loop = "def list_max(nums):\n    best = nums[0]\n    for n in nums:\n        best = n if n > best else best\n    return best\n"
    assert check_function(loop, "list_max", tests, ("max",)).passed  # the name list_max is not a call of max


class _ScriptedEngine:
    """Answers from a table keyed by the last user message; records every conversation it was sent."""

    def __init__(self, answers: dict[str, str]):
        from types import SimpleNamespace

        self.answers, self.sent = answers, []
        self.info = SimpleNamespace(backend="fake", model="/models/fake.gguf")
        self.backend = SimpleNamespace(prompt_format=SimpleNamespace(completion=False))

    def chat(self, messages, params):
        from types import SimpleNamespace

        self.sent.append((messages, params))
        answer = self.answers.get(messages[-1]["content"], "I do not know.")
        return answer, SimpleNamespace(completion_tokens=len(answer.split()), finish_reason="stop")


def test_the_bench_sends_chat_defaults_keeps_the_first_answer_and_reports_every_share():
    from assist.chat_defaults import DEFAULT_SYSTEM_PROMPT
    from bench.quality_bench import CHAT_MAX_NEW_TOKENS, goals, markdown, run_engine

    questions = [{"id": "en-1", "language": "en", "kind": "fact", "question": "Capital of France?", "answers": ["Paris"]},
                 {"id": "zh-1", "language": "zh", "kind": "arithmetic", "question": "2 加 2 等于多少？", "number": 4}]
    conversation = {"id": "tt-1", "language": "en", "kind": "fact", "turns": ["Spider legs?", "And an ant?"],
                    "answers": ["6", "six"]}
    request = {"id": "fn-1", "language": "zh", "kind": "function", "question": "写 gcd(a, b)", "function": "gcd",
               "tests": [[[12, 18], 6]]}
    engine = _ScriptedEngine({"Capital of France?": "Paris.", "2 加 2 等于多少？": "2 加 2 等于 5。",
                              "Spider legs?": "Eight.", "And an ant?": "Six.",
                              "写 gcd(a, b)": "```python\ndef gcd(a, b):\n    return min(a, b)\n```"})
    out = run_engine(engine, questions, conversations=[conversation], functions=[request])
    assert (out["by_language"]["en"]["correct_pct"], out["by_language"]["zh"]["correct_pct"]) == (100.0, 0.0)
    assert out["two_turn"]["correct_pct"] == 100.0
    assert (out["functions"]["correct_pct"], out["functions"]["runs_right_pct"]) == (100.0, 0.0)
    second = next(m for m, _ in engine.sent if m[-1]["content"] == "And an ant?")
    assert [m["content"] for m in second] == [DEFAULT_SYSTEM_PROMPT, "Spider legs?", "Eight.", "And an ant?"]
    assert all(p.temperature == 0 and p.max_new_tokens == CHAT_MAX_NEW_TOKENS for _, p in engine.sent)
    rows = goals({"runs": [out]})
    assert [met for _, _, met in rows] == [False, False, True, None, None]
    assert "fake · fake.gguf" in rows[0][0] and "runs right 0.0 %" in rows[-1][1]
    assert "| fake · fake.gguf | write a function | zh | 1 | 100.0 % | 0.0 % | 0.0 % |" in markdown({"runs": [out]})
