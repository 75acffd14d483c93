"""Settings: each role names what it lacks and where to get it; placeholders count as unset."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, parse_server

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


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:4430", (2, "127.0.0.1", 4430)),
        ("1@149.154.167.40:443", (1, "149.154.167.40", 443)),
        ("2@[::1]:8443", (2, "::1", 8443)),
    ],
)
def test_tg_server_takes_host_port_with_an_optional_dc(
    value: str, expected: tuple[int, str, int]
) -> None:
    assert parse_server(value) == expected
    assert settings(TG_SERVER=value).tg_server == value


@pytest.mark.parametrize("value", ["localhost", "host:0", "host:99999", "x@host:443", ":443"])
def test_malformed_tg_server_is_refused_with_the_expected_form(value: str) -> None:
    with pytest.raises(ValueError, match=r"host:port or dc@host:port"):
        settings(TG_SERVER=value)


def test_empty_tg_server_means_telegram_production() -> None:
    assert settings(TG_SERVER="", TG_SERVER_KEY="").tg_server is None
