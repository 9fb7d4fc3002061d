"""Reading answers: formulas, a remembered dark mode, and a page that fits a phone.

Formulas are rendered in the browser by the KaTeX that Gradio bundles (offline), for the
delimiters in ``LATEX_DELIMITERS``: ``$$…$$`` and ``\\[…\\]`` on their own line, ``\\(…\\)`` inline.
A single ``$`` is not one of them, since KaTeX's auto-render would turn "costs $5 and $10" into
a formula. ``inline_math`` rewrites, on the server, only the ``$…$`` that read as math (pandoc's
rule: no space just inside either ``$``, the closing one not followed by a digit, plus: no letter
or digit just outside) as ``\\(…\\)``; dollar amounts, shell variables and code stay as written.

The theme switch sits in the header; ``HEAD`` keeps the choice in ``localStorage`` and hands it
to Gradio's own ``?__theme=`` on every load, so the page comes up in the chosen theme. Until a
person chooses, Gradio follows the system's light/dark preference. ``CSS`` holds the narrow-screen
layout (a 390 px phone): stacked columns, a shorter chat, no sideways scrolling.
"""

from __future__ import annotations

import re

from webui.i18n import register, t

__all__ = ["LATEX_DELIMITERS", "inline_math", "build_theme_switch", "HEAD", "CSS"]

register(
    en={"dark_mode": "Dark mode"},
    zh={"dark_mode": "深色模式"},
)

LATEX_DELIMITERS = [
    {"left": "$$", "right": "$$", "display": True},
    {"left": "\\[", "right": "\\]", "display": True},
    {"left": "\\(", "right": "\\)", "display": False},
]

# The spans ``webui.adapters.literal_html`` also leaves alone: fenced blocks (open while streaming)
# and inline code.
_CODE = re.compile(r"```[\s\S]*?(?:```|$)|~~~[\s\S]*?(?:~~~|$)|`[^`\n]*`")
_DOLLARS = re.compile(r"""
    \$\$[\s\S]+?\$\$                    # display math: the browser's own delimiter, kept
  | (?<![\\$A-Za-z0-9])\$(?=[^\s$])     # an opening $: not escaped, not "US$", text right after it
    ([^$\n]*?[^\s$\\])                  # the formula, on one line, ending in a non-space
    \$(?![$A-Za-z0-9])                  # the closing $: not "$10", not "$x$y"
""", re.VERBOSE)


def _prose_math(prose: str) -> str:
    return _DOLLARS.sub(lambda m: f"\\({m.group(1)}\\)" if m.group(1) is not None else m.group(0), prose)


def inline_math(text: str) -> str:
    """``$x^2$`` -> ``\\(x^2\\)`` where it reads as a formula; dollar amounts and code untouched."""
    if "$" not in text:
        return text
    out, last = [], 0
    for match in _CODE.finditer(text):
        out.append(_prose_math(text[last:match.start()]))
        out.append(match.group(0))
        last = match.end()
    out.append(_prose_math(text[last:]))
    return "".join(out)


# Runs as the page loads: the remembered choice goes into ``?__theme=`` (which Gradio reads when
# it starts) and onto <body> (in case Gradio has started already).
HEAD = """<script>
(() => {
  const KEY = "dcu-chat-theme";  // localStorage: "dark" or "light", once chosen
  const remember = (mode) => {
    const url = new URL(window.location.href);
    if (url.searchParams.get("__theme") !== mode) {
      url.searchParams.set("__theme", mode);
      history.replaceState(history.state, "", url);
    }
  };
  const apply = (mode) => {
    const set = () => document.body.classList.toggle("dark", mode === "dark");
    document.body ? set() : document.addEventListener("DOMContentLoaded", set);
  };
  let saved = null;
  try { saved = localStorage.getItem(KEY); } catch (err) { /* storage off: follow the system */ }
  if (saved === "dark" || saved === "light") { remember(saved); apply(saved); }
  window.dcuTheme = {
    dark() {
      const mode = new URL(window.location.href).searchParams.get("__theme") || saved;
      if (mode === "dark" || mode === "light") return mode === "dark";
      return window.matchMedia("(prefers-color-scheme: dark)").matches;
    },
    choose(dark) {
      const mode = dark ? "dark" : "light";
      saved = mode;
      try { localStorage.setItem(KEY, mode); } catch (err) { /* kept for this page only */ }
      remember(mode);
      apply(mode);
    },
  };
})();
</script>
<style>
/* Outside the CSS that Gradio scopes to its container: the page's own side margins on a phone. */
@media (max-width: 640px) { .gradio-container > .main { padding-left: 8px !important; padding-right: 8px !important; } }
</style>"""


def build_theme_switch(blocks):
    """The "Dark mode" switch (a ``gr.Checkbox`` in the current layout); it works in the browser only."""
    import gradio as gr  # not at import time: webui.adapters (the HTTP side too) imports this module

    switch = gr.Checkbox(False, label=t("dark_mode"), container=False, scale=0, min_width=150,
                         elem_id="theme-switch")
    # Both events run in the page (no fn): nothing reaches the server, and no queue.
    blocks.load(None, None, switch, js="() => window.dcuTheme ? window.dcuTheme.dark() : false",
                queue=False, api_visibility="private")
    switch.input(None, switch, None, js="(on) => { window.dcuTheme && window.dcuTheme.choose(on); }",
                 queue=False, api_visibility="private")
    return switch


CSS = """
#header-row { align-items: center; flex-wrap: nowrap; }
#header-row > #header { flex: 1 1 auto; }
#theme-switch { flex: 0 0 auto; width: max-content !important; }
.dcu-header { flex-wrap: wrap; }
@media (max-width: 640px) {
  .dcu-header { gap: 0.1rem 0.6rem; }
  .dcu-header h1 { font-size: 1.4rem; }
  .dcu-header span { font-size: 0.75rem; opacity: 0.8; overflow-wrap: anywhere; }
  /* The chat first, "New chat" above it, the rest of the conversations sidebar below it. */
  #chat-row { flex-direction: column; }
  #session-sidebar { display: contents; }
  #session-sidebar > * { order: 2; }
  #session-sidebar > #session-new { order: 0; }
  #chat-row > .column:not(#session-sidebar) { order: 1; min-width: 0 !important; width: 100%; }
  #session-list .wrap { max-height: 9rem; }
  /* Short enough that the message box shows on the first screen. */
  #chatbot { height: max(260px, 48vh) !important; max-height: max(260px, 48vh) !important; }
  .katex-display { overflow-x: auto; overflow-y: hidden; }
}
"""
