"""Secrets never reach a log line, even at LOG_LEVEL=DEBUG: `vigil login`, `vigil channel add`,
`vigil run` with every role (watcher on the loopback MTProto server, triage, bot on the loopback
Bot API server: aiogram's and aiohttp's debug logs included) and `vigil status` are run as an
operator runs them, a stranger is approved, a live post becomes an alert through random 429s,
the Bot API refuses the token for a while (401: the error paths, where a URL with the token in
it would surface, are logged too) and then accepts it again, and then every line
they wrote is searched for the bot token (whole, and its secret half), the API hash, the
session (as Telethon's session string and as the raw auth key, hex and base64) and the 2FA
password."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest
from telethon.sessions import SQLiteSession, StringSession

from tests.faults.harness import login_watcher
from tests.support.botapi import BotApiServer
from tests.support.mtproto import MTProtoServer
from tests.support.mtproto.fixtures import TEST_API_HASH, TEST_API_ID, eventually
from tests.support.service import (
    approve_analyst,
    start_service,
    stop_service,
    vigil,
    vigil_env,
)

ADMIN, ANALYST = 7301, 7302
TOKEN = "123456:SECRET-token-never-LOGGED-0123456789"
PHONE = "+44 7700 900789"
PASSWORD = "two-step secret never logged"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(170)]


async def test_no_secret_in_any_log_line_at_debug(
    bot_api: BotApiServer, telegram: MTProtoServer, data_dir: Path
) -> None:
    bot_api.token = TOKEN
    bot_api.add_user(ADMIN, "Boss")
    bot_api.add_user(ANALYST, "Ann")
    account = telegram.add_account(PHONE, password=PASSWORD, first_name="Vigil", username="vs")
    channel = telegram.add_channel("secret_news", title="Secret news")
    assert telegram.key_path is not None
    env = vigil_env(
        data_dir,
        BOT_TOKEN=TOKEN,
        BOT_API_URL=bot_api.base_url,
        ADMIN_IDS=str(ADMIN),
        TG_API_ID=str(TEST_API_ID),
        TG_API_HASH=TEST_API_HASH,
        TG_SERVER=telegram.address,
        TG_SERVER_KEY=str(telegram.key_path),
        LOG_LEVEL="DEBUG",
    )
    cwd = data_dir.parent
    log_path = cwd / "service.log"
    outputs = [await login_watcher(telegram, env, cwd, PHONE, PASSWORD)]

    def run(*args: str) -> str:
        done = vigil(*args, env=env, cwd=cwd, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout + done.stderr

    outputs.append(await asyncio.to_thread(run, "channel", "add", "https://t.me/secret_news"))
    service = start_service("watcher,triage,bot", env, cwd, log_path)
    try:
        await approve_analyst(bot_api, ADMIN, ANALYST)
        after = len(bot_api.sent)
        await bot_api.send_text(ANALYST, "/watch мигрант")
        await bot_api.wait_for(lambda m: m.chat_id == ANALYST, after=after)
        await eventually(lambda: account.user_id in channel.participants, 30, "the join")
        bot_api.configure(flood_fraction=0.5)
        await telegram.post(channel, "Депутат: выслать всех мигрантов <сейчас> & 🚨")
        await bot_api.wait_for(
            lambda m: m.chat_id == ANALYST and "Secret news" in m.text, timeout=30
        )
        bot_api.configure(flood_fraction=0.0)
        bot_api.token = "654321:NOT-OURS"  # every call now answers 401 Unauthorized
        await telegram.post(channel, "Губернатор: мигрантов выслать к лету")
        await eventually(
            lambda: any(c.status == 401 for c in bot_api.calls), 30, "a send refused with 401"
        )
        await asyncio.sleep(1.0)
        bot_api.token = TOKEN
        await bot_api.wait_for(lambda m: m.chat_id == ANALYST and "к лету" in m.text, timeout=60)
        outputs.append(await asyncio.to_thread(run, "status"))
    finally:
        assert await asyncio.to_thread(stop_service, service) == 0, log_path.read_text()[-3000:]

    session = SQLiteSession(str(data_dir / "sessions" / "vigil"))
    assert session.auth_key is not None
    key = session.auth_key.key
    session_string = StringSession.save(session)
    session.close()
    secrets = {
        "bot token": TOKEN,
        "bot token secret": TOKEN.split(":", 1)[1],
        "API hash": TEST_API_HASH,
        "session string": session_string,
        "session string (start)": session_string[:40],
        "auth key (hex)": key.hex()[:32],
        "auth key (base64)": base64.b64encode(key).decode()[:32],
        "2FA password": PASSWORD,
    }
    service_log = log_path.read_text()
    lines = [*service_log.splitlines(), *"\n".join(outputs).splitlines()]
    assert len(lines) > 50
    # DEBUG was on, for our loggers and the libraries' alike.
    assert " DEBUG bot." in service_log
    assert " DEBUG asyncio" in service_log and "aiogram.dispatcher" in service_log
    assert "Unauthorized" in service_log  # the refused token was logged, as an error

    def leaks(lines: list[str]) -> list[tuple[str, str]]:
        return [(name, line[:200]) for line in lines for name, v in secrets.items() if v in line]

    planted = f"GET /bot{TOKEN}/getMe session={session_string}"
    assert {name for name, _ in leaks([planted])} >= {"bot token", "session string"}
    assert leaks(lines) == []
    assert "Traceback" not in service_log
