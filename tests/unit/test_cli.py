"""app.py: settings precedence, config show, doctor, start-up checks."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import app_settings
from engine.embedded import EMBEDDED_MODEL

ROOT = Path(__file__).resolve().parents[2]


def settings(argv, env=None):
    return app_settings.resolve_settings(app_settings.parser().parse_args(argv), environ=env or {})


def test_defaults_without_anything():
    s = settings([])
    assert s["device"] == "auto" and s["port"] == 7860 and s["host"] == "127.0.0.1" and s["model"] is None


def test_precedence_is_file_then_env_then_flags(tmp_path):
    config = tmp_path / "dcu.toml"
    config.write_text('[server]\nport = 9000\nhost = "0.0.0.0"\n[engine]\ndevice = "cpu"\nmax_queue = 3\n')
    s = settings(["--config", str(config), "--port", "9100"], env={"DCU_CHAT_PORT": "9050", "DCU_CHAT_MAX_QUEUE": "5"})
    assert s["port"] == 9100  # flag beats env and file
    assert s["max_queue"] == 5  # env beats file
    assert s["host"] == "0.0.0.0" and s["device"] == "cpu"  # file beats defaults


def test_boolean_env_values(tmp_path):
    assert settings([], env={"DCU_CHAT_TRUST_REMOTE_CODE": "true"})["trust_remote_code"] is True
    assert settings([], env={"DCU_CHAT_TRUST_REMOTE_CODE": "0"})["trust_remote_code"] is False


def test_unknown_keys_in_the_config_file_are_named(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text("modle = 'x'\n")
    with pytest.raises(SystemExit, match="modle"):
        settings(["--config", str(config)])


def test_auth_from_flag_and_file(tmp_path):
    assert app_settings._parse_auth("ann:pw1,bob:pw2") == (("ann", "pw1"), ("bob", "pw2"))
    users = tmp_path / "users.txt"
    users.write_text("# team\nann:secret\n")
    assert app_settings._parse_auth(str(users)) == (("ann", "secret"),)
    with pytest.raises(SystemExit, match="user:password"):
        app_settings._parse_auth("nopassword")


def run_app(*args, env=None):
    return subprocess.run([sys.executable, "app.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=env)


def test_config_show_hides_secrets():
    result = run_app("config", "show", "--api-key", "sk-very-secret", "--port", "7999")
    assert result.returncode == 0, result.stderr
    assert "sk-very-secret" not in result.stdout
    assert "api_key = '***'" in result.stdout and "port = 7999" in result.stdout


def test_help_lists_every_option():
    result = run_app("--help")
    for option in app_settings.OPTIONS:
        assert "--" + option.name.replace("_", "-") in result.stdout


def test_doctor_on_cpu_exits_zero_and_says_no_accelerator():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has an accelerator; the CPU-only wording does not apply")
    result = run_app("doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no GPU or DCU" in result.stdout
    assert "torch" in result.stdout and "default device" in result.stdout and "OK:" in result.stdout
    if importlib.util.find_spec("xllamacpp") is not None:  # which llama.cpp build, and who serves
        assert "llama.cpp (xllamacpp" in result.stdout and "llamacpp (--backend auto)" in result.stdout


def test_bad_option_value_is_a_clear_error_not_a_traceback():
    result = run_app("doctor", "--device", "tpu")
    assert result.returncode == 2
    assert "--device must be one of" in result.stderr and "Traceback" not in result.stderr


def test_unknown_config_keys_name_the_closest_option(tmp_path):
    config = tmp_path / "typo.toml"
    config.write_text("[rag]\nchunk_token = 300\n")
    with pytest.raises(SystemExit, match=r"chunk_token \(did you mean chunk_tokens\?\)"):
        settings(["--config", str(config)])


def test_options_come_from_the_config_dataclasses():
    """Every RagConfig field is a setting; each option fills the config field it names."""
    import dataclasses

    from rag.config import RagConfig

    targets = {field for option in app_settings.OPTIONS for cls, field in option.targets if cls is RagConfig}
    assert targets == {f.name for f in dataclasses.fields(RagConfig)}
    engine, web = app_settings.build_configs(settings(["--kv-cache-mb", "64", "--port", "7001", "--auth", "ann:pw"]))
    assert engine.kv_cache_bytes == 64 * 1024**2 and web.port == 7001 and web.auth == (("ann", "pw"),)
    rag = app_settings.build_config(RagConfig, settings(["--no-docs-strict", "--docs-top-k", "9", "--max-file-mb", "3"]))
    assert rag.strict is False and rag.top_k == 9 and rag.max_file_bytes == 3 * 1024**2
    assert app_settings.build_config(RagConfig, settings([])) == RagConfig()  # no options: the subsystem's defaults


def test_several_models_from_repeated_flags_with_their_own_settings():
    s = settings(["--model", "fast=embedded,backend=llamacpp,max-batch=4", "--model", "/m/Qwen3-0.6B",
                  "--device", "cpu", "--max-loaded-models", "1", "--models-memory-mb", "2048"])
    fast, qwen = app_settings.build_model_specs(s)
    assert (fast.alias, fast.config.model, fast.config.backend, fast.config.max_batch) == ("fast", None, "llamacpp", 4)
    assert (qwen.alias, qwen.config.model, qwen.config.backend, qwen.config.max_batch) == ("Qwen3-0.6B", "/m/Qwen3-0.6B",
                                                                                           "auto", 8)
    assert fast.config.device == qwen.config.device == "cpu"  # a shared setting reaches every model
    models = app_settings.build_models(s)
    assert models.aliases == ["fast", "Qwen3-0.6B"] and models.default == "fast"
    assert models.config.max_loaded_models == 1 and models.config.memory_budget_bytes == 2048 * 1024**2
    assert [spec.alias for spec in app_settings.build_model_specs(settings([]))] == [EMBEDDED_MODEL.model_id]


def test_several_models_from_the_config_file_and_flags_win(tmp_path):
    config = tmp_path / "dcu.toml"
    config.write_text('[engine]\ndevice = "cpu"\n\n[[models]]\nalias = "gemma"\nmodel = "embedded"\n'
                      'backend = "llamacpp"\n\n[[models]]\nalias = "qwen"\nmodel = "/m/qwen"\ndtype = "bfloat16"\n'
                      'remote_api_key = "sk-secret"\n')
    gemma, qwen = app_settings.build_model_specs(settings(["--config", str(config)]))
    assert (gemma.alias, gemma.config.model, gemma.config.backend) == ("gemma", None, "llamacpp")
    assert (qwen.alias, qwen.config.dtype, qwen.config.device) == ("qwen", "bfloat16", "cpu")
    only = app_settings.build_model_specs(settings(["--config", str(config), "--model", "solo=/m/solo"]))
    assert [spec.alias for spec in only] == ["solo"]
    shown = subprocess.run([sys.executable, str(ROOT / "app.py"), "config", "show", "--config", str(config)],
                           capture_output=True, text=True, timeout=60)
    assert "sk-secret" not in shown.stdout and "'remote_api_key': '***'" in shown.stdout


def test_a_wrong_per_model_setting_names_the_right_one(tmp_path):
    with pytest.raises(SystemExit, match="'bakend' is not a per-model setting \\(did you mean backend\\?\\)"):
        app_settings.build_model_specs(settings(["--model", "a=embedded,bakend=llamacpp"]))
    with pytest.raises(SystemExit, match="not a per-model setting"):
        app_settings.build_model_specs(settings(["--model", "a=embedded,port=80"]))
    config = tmp_path / "dcu.toml"
    config.write_text('models = "x"\n')
    with pytest.raises(SystemExit, match="list of tables"):
        settings(["--config", str(config)])
    from engine.errors import ConfigError

    with pytest.raises(ConfigError, match="both called"):
        app_settings.build_models(settings(["--model", "/a/m.gguf", "--model", "/b/m.gguf"]))


def test_llamacpp_prompt_lookup_is_a_setting_off_by_default():
    from engine.config import EngineConfig
    from engine.errors import ConfigError

    assert app_settings.build_configs(settings([]))[0].llamacpp_prompt_lookup == 0
    engine, _ = app_settings.build_configs(settings(["--llamacpp-prompt-lookup", "10"]))
    assert engine.llamacpp_prompt_lookup == 10
    with pytest.raises(ConfigError, match="--llamacpp-prompt-lookup"):
        EngineConfig(llamacpp_prompt_lookup=-1)
