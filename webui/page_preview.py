"""The panel that shows a cited page when a source or citation link is clicked.

The Docs tab writes each source and each citation under an answer as a link to the page's preview
route (``webui.docs_format.preview_url``, served by ``webui.preview_api``); Chat does the same for the
files of a message (``file_preview_url``: their text, Chat keeps no file bytes). ``HEAD`` catches clicks on
such links (capture phase, so Gradio does not open them in a new tab) and opens a panel over the
page: for a PDF or an image, the page as an image (scrolled to the marked passage, whose place the
``X-Passage-Band`` header gives); for a file without pages, its text with the passage in a
``<mark>``, scrolled into view. Everything from the server is put in with ``textContent`` or as an
image blob, never as HTML. The sign-in cookie goes with the requests (same origin). Escape, the ×
button or a click beside the panel closes it; ↗ opens the page on its own.
"""

from __future__ import annotations

__all__ = ["HEAD", "CSS"]

CSS = """
.dcu-preview { position: fixed; inset: 0; z-index: 1000; background: rgba(0, 0, 0, 0.55);
               display: flex; align-items: center; justify-content: center; }
.dcu-preview[hidden] { display: none; }
.dcu-preview-box { background: var(--background-fill-primary, #fff); color: var(--body-text-color, #111);
                   width: min(1000px, 94vw); max-height: 92vh; display: flex; flex-direction: column;
                   border-radius: 0.5rem; box-shadow: 0 0.5rem 2rem rgba(0, 0, 0, 0.4); overflow: hidden; }
.dcu-preview-head { display: flex; gap: 0.6rem; align-items: center; padding: 0.45rem 0.8rem;
                    border-bottom: 1px solid var(--border-color-primary, #ddd); }
.dcu-preview-title { flex: 1; font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.dcu-preview-head a, .dcu-preview-head button { background: none; border: none; cursor: pointer; color: inherit;
                                                font-size: 1.3rem; line-height: 1; text-decoration: none; }
.dcu-preview-body { overflow: auto; padding: 0.5rem; }
.dcu-preview-page { display: block; width: 100%; height: auto; background: #fff; }
.dcu-preview-text { white-space: pre-wrap; overflow-wrap: anywhere; font-size: 0.92em; line-height: 1.55; }
.dcu-preview-text mark { background: rgba(255, 214, 0, 0.55); color: inherit; padding: 0 0.1em; }
"""

HEAD = """<script>
(() => {
  const PREVIEW = new RegExp("^/api/(collections/[^/]+/documents/[^/]+/(pages/\\\\d+\\\\.png|text)"
                             + "|sessions/[^/]+/files/[^/]+/text)$");
  const close = () => { const box = document.getElementById("dcu-preview"); if (box) box.hidden = true; };
  const panel = () => {
    let box = document.getElementById("dcu-preview");
    if (box) return box;
    box = document.createElement("div");
    box.id = "dcu-preview";
    box.className = "dcu-preview";
    box.setAttribute("role", "dialog");
    box.setAttribute("aria-modal", "true");
    box.innerHTML = '<div class="dcu-preview-box"><div class="dcu-preview-head"><span class="dcu-preview-title">'
      + '</span><a class="dcu-preview-open" target="_blank" rel="noopener" title="Open on its own">↗</a>'
      + '<button type="button" class="dcu-preview-close" aria-label="Close" title="Close">×</button></div>'
      + '<div class="dcu-preview-body"></div></div>';  // fixed markup: nothing from the server
    box.addEventListener("click", (event) => {
      if (event.target === box || event.target.closest(".dcu-preview-close")) close();
    });
    // Inside Gradio's container, so its theme (light or dark) and styles apply.
    (document.querySelector(".gradio-container") || document.body).appendChild(box);
    return box;
  };
  const problem = async (reply) => {
    try { const body = await reply.json(); return (body.error && body.error.message) || reply.statusText; }
    catch (error) { return reply.status + " " + reply.statusText; }
  };
  let shown = 0;  // the latest click wins when an earlier page arrives late
  let blobUrl = null;  // the page image on show; let go when the next one comes
  const show = async (href, title) => {
    const ticket = ++shown;
    const box = panel();
    box.hidden = false;
    box.querySelector(".dcu-preview-title").textContent = title;
    box.querySelector(".dcu-preview-open").href = href;
    const body = box.querySelector(".dcu-preview-body");
    body.replaceChildren();
    body.scrollTop = 0;
    body.textContent = "…";  // a scanned page is read by OCR the first time: it may take a few seconds
    const reply = await fetch(href, {credentials: "same-origin"});
    if (ticket !== shown) return;
    body.replaceChildren();
    if (!reply.ok) { body.textContent = await problem(reply); return; }
    if (href.split("?")[0].endsWith(".png")) {
      const band = (reply.headers.get("X-Passage-Band") || "").split(",").map(Number);
      const image = document.createElement("img");
      image.className = "dcu-preview-page";
      image.alt = title;
      image.addEventListener("load", () => {
        if (band.length === 2 && !isNaN(band[0])) body.scrollTop = Math.max(0, band[0] * image.height - 60);
      });
      const blob = await reply.blob();
      if (ticket !== shown) return;
      if (blobUrl) URL.revokeObjectURL(blobUrl);
      blobUrl = image.src = URL.createObjectURL(blob);
      body.appendChild(image);
      return;
    }
    const data = await reply.json();
    if (ticket !== shown) return;
    const chars = Array.from(data.text || "");  // offsets count characters (code points), as in Python
    const text = document.createElement("div");
    text.className = "dcu-preview-text";
    const passage = data.passage;
    if (passage) {
      const mark = document.createElement("mark");
      mark.textContent = chars.slice(passage.start, passage.end).join("");
      text.append(chars.slice(0, passage.start).join(""), mark, chars.slice(passage.end).join(""));
    } else {
      text.textContent = chars.join("");
    }
    body.appendChild(text);
    const mark = text.querySelector("mark");
    if (mark) mark.scrollIntoView({block: "center"});
  };
  document.addEventListener("keydown", (event) => { if (event.key === "Escape") close(); });
  document.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest("a[href]");
    if (!link) return;
    const url = new URL(link.getAttribute("href"), location.href);
    if (url.origin !== location.origin || !PREVIEW.test(url.pathname)) return;
    event.preventDefault();
    event.stopPropagation();
    show(url.pathname + url.search, link.textContent.trim()).catch((error) => {
      const body = document.querySelector("#dcu-preview .dcu-preview-body");
      if (body) body.textContent = String(error);
    });
  }, true);
})();
</script>"""
