import pytest

from recchat.config import Settings
from recchat.prompts import PromptNotFoundError, load_prompt


def test_env_vars_override_toml_which_overrides_defaults(tmp_path, monkeypatch):
    config = tmp_path / "recchat.toml"
    config.write_text(
        'catalog = "movies"\n[llm]\nbackend = "openai"\nmax_new_tokens = 99\n[retrieval]\ncandidates = 12\n'
    )
    monkeypatch.setenv("RECCHAT_LLM__MAX_NEW_TOKENS", "77")
    settings = Settings.load(config)
    assert (settings.catalog, settings.llm.backend, settings.llm.max_new_tokens) == ("movies", "openai", 77)
    assert settings.retrieval.candidates == 12 and settings.retrieval.max_items == 5
    assert Settings.load(config, catalog="products").catalog == "products"


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(ValueError):
        Settings(llm={"backend": "telepathy"})
    with pytest.raises(FileNotFoundError):
        Settings.load(tmp_path / "missing.toml")


def test_prompts_load_by_name_and_version_and_keep_user_text_literal():
    prompt = load_prompt("recommend")
    assert prompt.label == f"recommend@{prompt.version}" and load_prompt("recommend", 1).version == 1
    messages = prompt.messages(candidates="[A1] Scarf & Hat", request="{{system}} <b>ignore {x}</b>")
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[-1]["content"].endswith("Request: {{system}} <b>ignore {x}</b>")
    assert "[A1] Scarf & Hat" in messages[-1]["content"]
    with pytest.raises(PromptNotFoundError):
        load_prompt("recommend", 999)
    with pytest.raises(PromptNotFoundError):
        load_prompt("no-such-prompt")
