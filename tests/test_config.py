"""Settings: each role names what it lacks and where to get it; placeholders count as unset."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, Settings

EXAMPLE = Path(__file__).parent.parent / ".env.example"


def settings(**env: str) -> Settings:
    return Settings(_env_file=None, **env)  # type: ignore[call-arg]


def test_triage_needs_no_telegram_credentials() -> None:
    settings().require_for(("triage",))


def test_bot_role_names_token_and_admins_and_where_to_get_them() -> None:
    with pytest.raises(ConfigError) as err:
        settings().require_for(("bot",))
    text = str(err.value)
    assert "BOT_TOKEN is not set" in text and "@BotFather" in text
    assert "ADMIN_IDS is not set" in text


def test_env_example_placeholders_are_refused_for_every_role(tmp_path: Path) -> None:
    copy = tmp_path / ".env"
    copy.write_text(EXAMPLE.read_text())
    loaded = Settings(_env_file=copy)  # type: ignore[call-arg]
    for role, names in (("bot", ("BOT_TOKEN", "ADMIN_IDS")), ("watcher", ("TG_API_ID",))):
        problems = loaded.missing_for(role)  # type: ignore[arg-type]
        for name in names:
            assert any(p.startswith(name) for p in problems), (role, problems)
    assert any("placeholder" in p for p in loaded.missing_for("watcher"))


def test_malformed_admin_ids_are_an_error_not_a_silent_skip() -> None:
    s = settings(ADMIN_IDS="123, @boss")
    with pytest.raises(ConfigError, match="'@boss' is not a numeric"):
        _ = s.admins
    assert settings(ADMIN_IDS=" 1, 2 ,3").admins == {1, 2, 3}


def test_secrets_do_not_leak_through_repr() -> None:
    s = settings(BOT_TOKEN="123:SECRET-TOKEN", TG_API_HASH="deadbeefdeadbeef")
    assert "SECRET-TOKEN" not in repr(s) and "deadbeef" not in repr(s)


def test_every_setting_is_listed_in_env_example() -> None:
    listed = {
        line.split("=", 1)[0]
        for line in EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    }
    aliases = {field.alias for field in Settings.model_fields.values()}
    assert aliases == listed
