"""The Telethon client factory: one SQLite session file per account under VIGIL_DATA_DIR.

The session file holds the account's auth key (as good as a password) and Telethon's update
state (so catch-up after a restart works); it is created with mode 0600 in a 0700 directory.
`vigil run` never prompts: without a logged-in session it says to run `vigil login`.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from telethon import TelegramClient
from telethon.crypto import rsa

from bot.config import ConfigError, Settings, parse_server

log = logging.getLogger(__name__)

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
FLOOD_SLEEP_THRESHOLD_S = 10  # Telethon sleeps through shorter waits; longer ones reach us


class NotLoggedInError(RuntimeError):
    """The session file is missing or its authorisation is gone."""

    def __init__(self, name: str, detail: str = "is not logged in") -> None:
        self.name = name
        hint = "vigil login" if name == "vigil" else f"vigil login --name {name}"
        super().__init__(f"Telegram session {name!r} {detail}: run `{hint}` first.")


class TelegramUnreachableError(RuntimeError):
    """Telegram's servers (or TG_SERVER) did not answer when the watcher started."""

    def __init__(self, name: str, where: str, detail: str) -> None:
        self.name = name
        super().__init__(
            f"Telegram session {name!r} cannot reach Telegram{where}: {detail}. "
            "Check the network (and TG_SERVER, if set)."
        )


def session_names(settings: Settings) -> list[str]:
    """TG_SESSION: one name or several, comma-separated (one account each)."""
    names = [n.strip() for n in settings.tg_session.split(",") if n.strip()]
    return list(dict.fromkeys(names)) or ["vigil"]


def session_path(settings: Settings, name: str) -> Path:
    """A bare name lives in <data dir>/sessions/<name>.session; a path is taken as given."""
    if "/" in name or name.endswith(".session"):
        path = Path(name).expanduser()
        return path if path.name.endswith(".session") else path.with_name(path.name + ".session")
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"session name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)"
        )
    return settings.data_dir / "sessions" / f"{name}.session"


def _private_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.parent.name == "sessions":
        os.chmod(path.parent, 0o700)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


def make_client(settings: Settings, name: str, *, create: bool = False) -> Any:
    """A TelegramClient on the named session (not connected). Raises NotLoggedInError if the
    session file does not exist, unless `create` (the login command)."""
    if settings.tg_api_id is None or settings.tg_api_hash is None:
        raise NotLoggedInError(name, "cannot be used without TG_API_ID and TG_API_HASH")
    path = session_path(settings, name)
    if not path.exists() and not create:
        raise NotLoggedInError(name, f"has no session file ({path})")
    _private_file(path)
    client = TelegramClient(
        str(path),
        settings.tg_api_id,
        settings.tg_api_hash.get_secret_value(),
        flood_sleep_threshold=FLOOD_SLEEP_THRESHOLD_S,
        catch_up=True,
        device_model="Vigil",
        app_version="vigil 0.1",
    )
    if settings.tg_server:
        _use_server(client, settings.tg_server, settings.tg_server_key)
    return client


def _use_server(client: Any, server: str, key_path: Path | None) -> None:
    """Point the session at another MTProto server (Telegram's test DCs, a loopback server).

    Its RSA public key must be known to Telethon before the first connection, or the key
    exchange refuses the server."""
    dc, host, port = parse_server(server)
    if key_path is not None:
        try:
            rsa.add_key(key_path.read_text(encoding="ascii"), old=False)
        except Exception as exc:  # OSError, ValueError, pyasn1's errors for a broken key
            raise ConfigError(
                f"TG_SERVER_KEY {key_path}: not a readable RSA public key (PEM): {exc}"
            ) from exc
    current = client.session
    if (current.dc_id, current.server_address, current.port) != (dc, host, port):
        current.set_dc(dc, host, port)


async def connect(client: Any, name: str) -> None:
    """Connect, or raise TelegramUnreachableError naming the address tried."""
    try:
        await client.connect()
    except (ConnectionError, OSError) as exc:
        session = client.session
        where = f" at {session.server_address}:{session.port}"
        raise TelegramUnreachableError(name, where, str(exc)) from None


async def connect_authorised(client: Any, name: str) -> None:
    """Connect and make sure the session is logged in; never prompts."""
    await connect(client, name)
    if not await client.is_user_authorized():
        await client.disconnect()
        raise NotLoggedInError(name)
