"""A conversation survives a server restart: chat through the UI's API, restart on the same
data directory, and find it (with its messages) over ``/api/sessions``."""

from __future__ import annotations

import httpx


def _text(content) -> str:
    if isinstance(content, list):  # Gradio 6 may return content parts
        return "".join(part.get("text", "") for part in content)
    return content


def test_conversation_is_kept_across_a_restart(launch_app, tmp_path_factory):
    from gradio_client import Client

    data_dir = tmp_path_factory.mktemp("restart") / "data"
    first = launch_app(data_dir=data_dir)
    # The sampling slider's minimum is 16 tokens: the smallest answer the UI's API accepts.
    display, box = Client(first.url, verbose=False).predict("hi", api_name="/chat", max_new_tokens=16,
                                                            temperature=0)
    answer = _text(display[-1]["content"])
    assert box == "" and answer.strip()
    first.stop()
    assert (data_dir / "sessions.sqlite3").is_file()

    second = launch_app(data_dir=data_dir)
    sessions = httpx.get(second.url + "/api/sessions", timeout=10).json()["sessions"]
    assert len(sessions) == 1
    assert sessions[0]["title"] == "hi" and sessions[0]["messages"] == 2
    session = httpx.get(f"{second.url}/api/sessions/{sessions[0]['id']}", timeout=10).json()
    assert [m["role"] for m in session["messages"]] == ["user", "assistant"]
    assert session["messages"][0]["content"] == "hi"
    assert session["messages"][1]["content"].strip() and session["messages"][1]["content"] in answer
    assert "TTFT" in session["messages"][1]["stats"]
    export = httpx.get(f"{second.url}/api/sessions/{sessions[0]['id']}/export?format=md", timeout=10)
    assert export.headers["content-disposition"].startswith("attachment")
    assert "## User\n\nhi" in export.text
