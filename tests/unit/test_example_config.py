"""assets/dcu-chat.example.toml stays valid and names every option."""

from __future__ import annotations

import re
from pathlib import Path

import app_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "assets" / "dcu-chat.example.toml"


def test_the_example_config_loads_and_matches_the_defaults():
    settings = app_settings.resolve_settings(app_settings.parser().parse_args(["--config", str(EXAMPLE)]), environ={})
    defaults = {o.name: o.default for o in app_settings.OPTIONS}
    assert settings == defaults  # everything set in the example is the default; the rest is commented out


def test_the_example_config_mentions_every_option():
    text = EXAMPLE.read_text(encoding="utf-8")
    keys = set(re.findall(r"^#? ?([a-z_]+) =", text, flags=re.M))
    assert {o.name for o in app_settings.OPTIONS} <= keys


def test_environment_overrides_the_file_and_flags_override_both():
    args = app_settings.parser().parse_args(["--config", str(EXAMPLE), "--port", "9001"])
    settings = app_settings.resolve_settings(args, environ={"DCU_CHAT_PORT": "9000", "DCU_CHAT_API_KEY": "k",
                                                   "DCU_CHAT_BACKEND": "openai"})
    assert settings["port"] == 9001 and settings["api_key"] == "k" and settings["backend"] == "openai"
