"""One model name in front of two llama.cpp servers, in the browser: Chat answers through the pool,
the System tab shows both servers, and one killed shows as down while Chat keeps answering."""

from __future__ import annotations

import pytest
from e2e_ui import SLOW_MS, open_app, send_chat, set_slider, shoot, tab, wait_answer_done
from playwright.sync_api import expect

from bench.llama_servers import LlamaServer, gemma_path

pytest.importorskip("xllamacpp")


@pytest.fixture(scope="module")
def pool(tmp_path_factory, launch_app):
    logs = tmp_path_factory.mktemp("llama-logs")
    servers = [LlamaServer(gemma_path(), n_ctx=1024, n_parallel=2, log_dir=logs) for _ in range(2)]
    try:
        for server in servers:
            server.start()
        base_url = ";".join(s.v1 for s in servers)
        yield launch_app("--model", f"team=,backend=openai,base_url={base_url}"), servers
    finally:
        for server in servers:
            server.stop()


def test_system_tab_shows_both_servers_and_chat_survives_one_dying(pool, new_page):
    app, servers = pool
    names = [f"127.0.0.1:{s.port}" for s in servers]
    page = new_page("en-US")
    open_app(page, app.url)
    set_slider(page, "Max new tokens", 16, accordion="Parameters")
    send_chat(page, "Name three colours.")
    wait_answer_done(page.locator("#chatbot [data-testid=bot]").nth(0))

    tab(page, "system").click()
    panel = page.locator("#system-panel")
    expect(panel).to_contain_text("Model servers (replicas)", timeout=SLOW_MS)
    for name in names:
        expect(panel).to_contain_text(f"{name} 🟢 up")
    expect(panel).to_contain_text("in flight 0 · 1 requests · 0 errors")  # the chat above, live (3 s refresh)
    shoot(page, "system-replicas")

    servers[0].kill()  # a node goes away: the next health check (5 s) takes it out; the panel refreshes (3 s)
    expect(panel).to_contain_text(f"{names[0]} 🔴 DOWN", timeout=30_000)
    expect(panel).to_contain_text(f"{names[1]} 🟢 up")

    tab(page, "chat").click()
    send_chat(page, "Name three animals.")
    stats = wait_answer_done(page.locator("#chatbot [data-testid=bot]").nth(1))
    assert "TTFT" in stats  # answered by the server that is left
