"""The client factory: session files are private, TG_SERVER points sessions elsewhere."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import rsa as pyrsa

from bot.config import ConfigError, Settings
from watchers.client import NotLoggedInError, make_client, session_path


def settings(data_dir: Path, **env: str) -> Settings:
    base = {
        "TG_API_ID": "12345",
        "TG_API_HASH": "0123456789abcdef",
        "VIGIL_DATA_DIR": str(data_dir),
    }
    return Settings(_env_file=None, **(base | env))  # type: ignore[arg-type]


def test_run_without_a_session_file_says_to_log_in(data_dir: Path) -> None:
    with pytest.raises(NotLoggedInError, match="vigil login"):
        make_client(settings(data_dir), "vigil")


def test_session_file_and_directory_are_private(data_dir: Path) -> None:
    config = settings(data_dir)
    client = make_client(config, "vigil", create=True)
    client.session.close()
    path = session_path(config, "vigil")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_tg_server_points_the_session_at_another_server(data_dir: Path, tmp_path: Path) -> None:
    public, _ = pyrsa.newkeys(1024)
    key = tmp_path / "server.pem"
    key.write_bytes(public.save_pkcs1())
    config = settings(data_dir, TG_SERVER="127.0.0.1:4430", TG_SERVER_KEY=str(key))
    client = make_client(config, "vigil", create=True)
    try:
        assert (client.session.dc_id, client.session.server_address, client.session.port) == (
            2,
            "127.0.0.1",
            4430,
        )
    finally:
        client.session.close()


def test_a_broken_server_key_is_a_config_error_naming_the_file(
    data_dir: Path, tmp_path: Path
) -> None:
    key = tmp_path / "server.pem"
    key.write_text("-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----\n")
    config = settings(data_dir, TG_SERVER="127.0.0.1:4430", TG_SERVER_KEY=str(key))
    with pytest.raises(ConfigError, match=r"server\.pem"):
        make_client(config, "vigil", create=True)
