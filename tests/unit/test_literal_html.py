"""HTML written in a chat message shows as text; Markdown and code still render as before."""

from __future__ import annotations

from webui.adapters import display_history, literal_html


def test_tags_outside_code_are_escaped_and_code_is_untouched():
    text = "Hi <img src=x onerror=alert(1)> and `a<b` then\n```html\n<div>\n```\n**<b>x</b>**"
    assert literal_html(text) == ("Hi &lt;img src=x onerror=alert(1)> and `a<b` then\n```html\n<div>\n```\n"
                                  "**&lt;b>x&lt;/b>**")
    assert literal_html("unfinished ```\n<div>") == "unfinished ```\n<div>"  # a block still streaming


def test_the_chat_display_escapes_messages_but_keeps_its_stats_line_and_thinking():
    shown = display_history([{"role": "user", "content": "<script>x</script>"},
                             {"role": "assistant", "content": "<think>hm <i></think>ok <b>", "stats": "3 tokens"}])
    assert shown[0]["content"] == "&lt;script>x&lt;/script>"
    assert shown[1]["content"] == "hm &lt;i>" and shown[1]["metadata"]["status"] == "done"
    assert shown[2]["content"] == "ok &lt;b>\n\n<sub>3 tokens</sub>"
