"""Pytest fixtures for the loopback MTProto server (registered in tests/conftest.py).

async def test_something(telegram: MTProtoServer, tmp_path: Path) -> None:
    account = telegram.add_account("+447700900123", first_name="Ana")
    client = make_client(telegram, tmp_path / "ana.session")
    await client.connect()
    await client.send_code_request("+447700900123")
    await client.sign_in("+447700900123", telegram.login_code("+447700900123"))
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from telethon import TelegramClient
from telethon.crypto import rsa

from tests.support.mtproto.crypto import new_server_key
from tests.support.mtproto.server import MTProtoServer

TEST_API_ID = 611335
TEST_API_HASH = "d524b414d21f4d37f08684c1df41ac9c"


def make_client(server: MTProtoServer, session: Path | str, **kwargs: Any) -> TelegramClient:
    """A real TelegramClient on a SQLite session, pointed at `server` (what TG_SERVER and
    TG_SERVER_KEY do in production). Not connected; disconnect it at the end."""
    rsa.add_key(server.public_key_pem, old=False)
    kwargs.setdefault("api_id", TEST_API_ID)
    kwargs.setdefault("api_hash", TEST_API_HASH)
    kwargs.setdefault("receive_updates", True)
    client = TelegramClient(str(session), **kwargs)
    client.session.set_dc(server.dc_id, server.host, server.port)
    return client


async def sign_in(server: MTProtoServer, client: Any, phone: str) -> Any:
    """The code flow `vigil login` drives (no 2FA), for a test's client; it stays connected."""
    await client.connect()
    await client.send_code_request(phone)
    return await client.sign_in(phone=phone, code=server.login_code(phone))


async def eventually(
    check: Callable[[], object],
    timeout: float = 15.0,  # noqa: ASYNC109 -- a deadline for the test, polled
    what: str = "condition",
) -> None:
    """Poll `check` (a plain or an async callable) until it is truthy, or fail."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        await asyncio.sleep(0.02)


@pytest.fixture
async def telegram(tmp_path: Path) -> AsyncIterator[MTProtoServer]:
    """A started loopback MTProto server with a fresh RSA key; its public key is at
    `tmp_path / "mtproto_key.pem"` (`server.key_path`). Stopped after the test, which fails if
    the server itself hit an internal error."""
    server = MTProtoServer(key=new_server_key())
    await server.start()
    server.key_path = server.write_public_key(tmp_path / "mtproto_key.pem")
    try:
        yield server
    finally:
        await server.stop()
        assert not server.internal_errors, server.internal_errors
