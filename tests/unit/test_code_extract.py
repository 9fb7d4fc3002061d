"""Code extraction over the shapes small models really produce."""

from __future__ import annotations

import pytest

from assist.code.extract import answer_complete, extract_code, runaway

ADD = "def add(a, b):\n    return a + b"

CASES = [
    # (id, model output, language, expected code, expected tag)
    ("plain fence", f"```python\n{ADD}\n```", "python", ADD, "python"),
    ("fence without tag", f"```\n{ADD}\n```", "python", ADD, None),
    ("tilde fence", f"~~~py\n{ADD}\n~~~", "python", ADD, "py"),
    ("prose around", f"Here is the function:\n\n```python\n{ADD}\n```\n\nIt returns the sum.", "python", ADD, "python"),
    ("unterminated while streaming", f"Sure!\n```python\n{ADD}\n", "python", ADD, "python"),
    ("fence opened mid-line", f"Here you go: ```python\n{ADD}\n```", "python", ADD, "python"),
    ("closed at end of code line", f"```python\n{ADD}```\nDone.", "python", ADD, "python"),
    ("code on the fence line", "```python def add(a, b): return a + b\n```", "python",
     "def add(a, b): return a + b", "python"),
    ("one-line block", "Use ```js console.log(1)``` to print.", "javascript", "console.log(1)", "js"),
    ("indented fence in a list", f"1. Write this:\n   ```python\n   {ADD.replace(chr(10), chr(10) + '   ')}\n   ```",
     "python", ADD, "python"),
    ("longer fence keeps inner fences", "````markdown\n```python\nx = 1\n```\n````", None,
     "```python\nx = 1\n```", "markdown"),
    ("language match wins over longer block",
     "Install:\n```bash\npip install requests numpy pandas scipy matplotlib\n```\n"
     "Code:\n```python\nimport requests\n```", "python", "import requests", "python"),
    ("longest when no tag matches", "```\nx = 1\n```\ntext\n```\ndef f():\n    return 2\n```", "rust",
     "def f():\n    return 2", None),
    ("output block is not code", "```python\nprint(1)\n```\nOutput:\n```text\n1 2 3 4 5 6 7 8 9 10\n```",
     None, "print(1)", "python"),
    ("turn marker cut", f"```python\n{ADD}\n```<end_of_turn>\n<start_of_turn>user\nmore```python\nx=1\n```",
     "python", ADD, "python"),
    ("imagined next turn cut", f"```python\n{ADD}\n```\nUser: now in Rust\n```rust\nfn x() {{}}\n```",
     None, ADD, "python"),
    ("no fences, only code", ADD + "\n", "python", ADD, None),
    ("no fences, prose then code", f"Here is the function you asked for.\n\n{ADD}\n\nThis adds them together nicely.",
     "python", ADD, None),
    ("no fences, bare tag line", f"python\n{ADD}", "python", ADD, None),
    ("markdown indented block", f"The code is below.\n\n    {ADD.replace(chr(10), chr(10) + '    ')}\n\nThat is all.",
     "python", ADD, None),
    ("no fences, C with braces",
     "Here is a C function that adds numbers:\nint add(int a, int b) {\n    return a + b;\n}\nCall it from main.",
     "c", "int add(int a, int b) {\n    return a + b;\n}", None),
    ("no fences, SQL", "The query is:\nSELECT name, total\nFROM orders\nWHERE total > 10;", "sql",
     "SELECT name, total\nFROM orders\nWHERE total > 10;", None),
    ("no fences, code then explanation",
     "function add(a, b) {\n  return a + b;\n}\nconsole.log(add(1, 2));\n\nThis function adds the two numbers a and b.",
     "javascript", "function add(a, b) {\n  return a + b;\n}\nconsole.log(add(1, 2));", None),
    ("no fences, Rust tail expression", "fn add(a: i32, b: i32) -> i32 {\n    a + b\n}", "rust",
     "fn add(a: i32, b: i32) -> i32 {\n    a + b\n}", None),
    ("no fences, bash script", "#!/usr/bin/env bash\nset -e\nfor f in *.txt; do\n  wc -l \"$f\"\ndone",
     "bash", "#!/usr/bin/env bash\nset -e\nfor f in *.txt; do\n  wc -l \"$f\"\ndone", None),
    ("repeated block picks the first", f"```python\n{ADD}\n```\n```python\n{ADD}\n```", "python", ADD, "python"),
    ("CRLF line endings", f"```python\r\n{ADD.replace(chr(10), chr(13) + chr(10))}\r\n```\r\n", "python", ADD, "python"),
    ("pandoc-style tag", "```{.python}\nx = 1\n```", "python", "x = 1", "python"),
    ("tag aliases match language", "```c++\nint x;\n```\n```c\nint y = 1; int z = 2;\n```", "cpp", "int x;", "c++"),
]


@pytest.mark.parametrize("output,language,code,tag", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_extract_shapes(output, language, code, tag):
    got = extract_code(output, language)
    assert got.code == code
    assert got.language_tag == tag


def test_prose_is_the_text_outside_the_chosen_block():
    got = extract_code(f"Here is the function:\n\n```python\n{ADD}\n```\n\nIt returns the sum.", "python")
    assert got.prose == "Here is the function:\n\nIt returns the sum."
    assert got.complete


def test_other_blocks_stay_in_the_prose():
    got = extract_code("```bash\npip install x\n```\n```python\nimport x\n```", "python")
    assert "pip install x" in got.prose and "import x" not in got.prose


def test_unterminated_block_is_marked_incomplete():
    got = extract_code("```python\ndef f():\n", "python")
    assert got.code == "def f():" and not got.complete


def test_join_collects_blocks_of_the_same_tag():
    text = "```python\nimport math\n```\nthen\n```python\nprint(math.pi)\n```"
    assert extract_code(text, "python", join=True).code == "import math\n\nprint(math.pi)"


def test_no_code_at_all():
    got = extract_code("I am sorry, I cannot help with that request today.", "python")
    assert got.code == "" and got.prose.startswith("I am sorry")


def test_empty_and_none_input():
    assert extract_code("", "python").code == ""
    assert extract_code(None).code == ""  # type: ignore[arg-type]


@pytest.mark.parametrize("text,mode,done", [
    ("```python\nx = 1\n", "generate", False),
    ("```python\nx = 1\n```", "generate", True),
    ("```bash\npip install x\n```\n", "generate", False),  # another language first: keep going
    ("```python\nx = 1\n```\n", "fix", False),               # the summary has not come yet
    ("```python\nx = 1\n```\nChanged y to x.", "fix", False),
    ("```python\nx = 1\n```\nChanged y to x.\n", "fix", True),  # one finished sentence is enough
    ("```python\nx = 1\n```\n\n", "fix", False),
    ("```python\nx = 1\n```\nChanged y.\n```python\n", "refactor", True),
    ("```python\nx = 1\n```\n\nIt sets x.\n\n", "explain", False),
    ("```python\n\n```", "tests", False),                     # empty block
])
def test_answer_complete(text, mode, done):
    assert answer_complete(text, mode, "python") is done


def test_runaway_catches_loops_and_endless_lines():
    assert runaway("```python\ndef add(a, b):\n    return a + b\n```\n") is None
    assert runaway("x = [\n" + "    1,\n" * 11) is None
    long_line = "if a == 2" + "".join(f" or a == {n}" for n in range(3, 60))
    assert runaway(long_line, "generate") == "a line grew past 500 characters"
    assert runaway(long_line, "explain") is None
    assert "repeating" in runaway("It adds the numbers. " + "The sum is returned to the caller here. " * 20)
    assert "repeating" in runaway("def f():\n" + "    pass_it()\n" * 12)
