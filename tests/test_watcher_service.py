"""The watcher role as an operator runs it, against a loopback MTProto server standing in for
Telegram (the real Telethon client, over TCP): `vigil run` without a session says to log in;
`vigil login` asks for the phone, the code and the 2FA password and writes a 0600 session file;
`vigil channel add` lists a channel; `vigil run` (every role) resolves and joins it, a live post
reaches the analyst as an alert, its edit and deletion follow the alert up; posts made, edited
and deleted while the service is down arrive after the restart, once each (a deletion Telegram
never announced is found by asking again for the alerted posts); a second watcher on the
same session is refused."""

from __future__ import annotations

import asyncio
import socket
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.support.botapi import BotApiServer
from tests.support.mtproto import MTProtoServer
from tests.support.mtproto.fixtures import TEST_API_HASH, TEST_API_ID, eventually
from tests.support.service import (
    approve_analyst,
    start_interactive,
    start_service,
    stop_service,
    vigil,
    vigil_env,
)

ADMIN, ANALYST = 7101, 7102
TOKEN = "123456:TEST-TOKEN"
PHONE = "+44 7700 900456"
PASSWORD = "correct horse battery staple"


def _env(bot_api: BotApiServer, telegram: MTProtoServer, data_dir: Path) -> dict[str, str]:
    assert telegram.key_path is not None
    return vigil_env(
        data_dir,
        BOT_TOKEN=TOKEN,
        BOT_API_URL=bot_api.base_url,
        ADMIN_IDS=str(ADMIN),
        TG_API_ID=str(TEST_API_ID),
        TG_API_HASH=TEST_API_HASH,
        TG_SERVER=telegram.address,
        TG_SERVER_KEY=str(telegram.key_path),
    )


async def _run(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A `vigil` command to its end, off the event loop that serves the MTProto server; its
    stdin is empty (a prompt reads end of file, never the terminal running the tests)."""
    return await asyncio.to_thread(vigil, *args, env=env, cwd=cwd, timeout=60, stdin="")


async def _login(
    telegram: MTProtoServer,
    env: dict[str, str],
    cwd: Path,
    phone: str,
    after_code: Callable[[str], str],
) -> tuple[int | None, str]:
    """`vigil login` answered as a person would: the phone, then, once Telegram has "sent"
    the code, `after_code(code)` (the lines typed next). Returns the exit code and output."""
    login = await start_interactive("login", env=env, cwd=cwd)
    assert login.stdin is not None
    login.stdin.write(f"{phone}\n".encode())
    await login.stdin.drain()
    digits = "".join(ch for ch in phone if ch.isdigit())

    def asked() -> bool:
        assert login.returncode is None, "vigil login ended before asking for the code"
        return any(sent.phone == digits for sent in telegram.codes)

    await eventually(asked, 30, "vigil login asking Telegram for a code")
    login.stdin.write(after_code(telegram.login_code(phone)).encode())
    out, err = await asyncio.wait_for(login.communicate(), 60)
    return login.returncode, out.decode() + err.decode()


def _alerts(bot_api: BotApiServer, needle: str) -> list[str]:
    """New alerts with `needle` (not edit or deletion follow-ups, which quote the old text)."""

    def follow_up(text: str) -> bool:
        head = text.split("\n", 1)[0]
        return "edited" in head or "deleted" in head

    return [
        m.text for m in bot_api.messages_to(ANALYST) if needle in m.text and not follow_up(m.text)
    ]


async def test_operator_logs_in_adds_a_channel_and_runs_the_watcher(
    bot_api: BotApiServer, telegram: MTProtoServer, data_dir: Path
) -> None:
    bot_api.add_user(ADMIN, "Boss")
    bot_api.add_user(ANALYST, "Ann")
    account = telegram.add_account(PHONE, password=PASSWORD, first_name="Vigil", username="vw")
    channel = telegram.add_channel("frontier_news", title="Frontier news")
    env = _env(bot_api, telegram, data_dir)
    cwd = data_dir.parent
    log = cwd / "service.log"

    # No session yet: the service refuses and says what to do; it never prompts.
    refused = await _run(env, cwd, "run", "--role", "watcher")
    assert refused.returncode != 0
    assert "vigil login" in refused.stderr

    def mistype_then_type(code: str) -> str:
        wrong = "00000" if code != "00000" else "11111"
        return f"{wrong}\n{code}\n{PASSWORD}\n"

    code, said = await _login(telegram, env, cwd, PHONE, mistype_then_type)
    assert code == 0, said
    assert "That code is not right" in said
    assert "Logged in as Vigil @vw" in said
    session = data_dir / "sessions" / "vigil.session"
    assert stat.S_IMODE(session.stat().st_mode) == 0o600
    assert [c.error for c in telegram.calls if c.method == "auth.checkPassword"] == [None]

    added = await _run(env, cwd, "channel", "add", "https://t.me/frontier_news")
    assert added.returncode == 0, added.stderr

    service = start_service("watcher,triage,bot", env, cwd, log)
    try:
        await approve_analyst(bot_api, ADMIN, ANALYST)
        after = len(bot_api.sent)
        await bot_api.send_text(ANALYST, "/watch мигрант")
        await bot_api.wait_for(lambda m: m.chat_id == ANALYST, after=after)
        await eventually(
            lambda: account.user_id in channel.participants, 30, "the watcher joining"
        )

        live = await telegram.post(channel, "Депутат: выслать всех мигрантов <сейчас> & навсегда")
        alert = await bot_api.wait_for(
            lambda m: m.chat_id == ANALYST and "Frontier news" in m.text, timeout=30
        )
        assert "выслать всех мигрантов <сейчас> & навсегда" in alert.text
        assert "мигрантов" in alert.spans("bold")
        assert ("Open", f"https://t.me/frontier_news/{live.id}") in alert.buttons()

        # An edit and then a deletion of the alerted post follow the alert up.
        await telegram.edit(channel, live.id, "Депутат: выслать всех мигрантов до весны")
        edited = await bot_api.wait_for(
            lambda m: m.chat_id == ANALYST and "до весны" in m.text, timeout=30, edits=True
        )
        assert "edited" in edited.text
        await telegram.delete(channel, live.id)
        deleted = await bot_api.wait_for(
            lambda m: m.chat_id == ANALYST and "deleted" in m.text and "до весны" in m.text,
            timeout=30,
            edits=True,
        )
        assert "Frontier news" in deleted.text and "Watch #1" in deleted.text
        assert "мигрантов" in deleted.spans("bold")

        later = await telegram.post(channel, "Губернатор: мигрантов выслать к лету")
        await bot_api.wait_for(lambda m: m.chat_id == ANALYST and "к лету" in m.text, timeout=30)
        doomed = await telegram.post(channel, "Мэр: мигрантов <выселят> из общежитий")
        await bot_api.wait_for(
            lambda m: m.chat_id == ANALYST and "общежитий" in m.text, timeout=30
        )

        # The same session cannot be run twice.
        second = await _run(env, cwd, "run", "--role", "watcher")
        assert second.returncode != 0
        assert "already in use" in second.stderr

        status = await _run(env, cwd, "status")
        assert "account vigil: connected, 1/" in status.stdout, status.stdout
    finally:
        assert await asyncio.to_thread(stop_service, service) == 0, log.read_text()

    # Down: posts keep coming and get edited, and Telegram pushes nothing to a client away.
    missed = await telegram.post(channel, "Пока вы спали: мигранты на границе", push=False)
    await telegram.post(channel, "Прогноз погоды", push=False)
    await telegram.edit(channel, later.id, "Губернатор: мигрантов выслать к осени", push=False)
    await telegram.delete(channel, doomed.id, push=False)  # never announced to anyone

    service = start_service("watcher,triage,bot", env, cwd, log)
    try:
        caught = await bot_api.wait_for(
            lambda m: m.chat_id == ANALYST and "Пока вы спали" in m.text, timeout=60
        )
        assert ("Open", f"https://t.me/frontier_news/{missed.id}") in caught.buttons()
        edit = await bot_api.wait_for(
            lambda m: m.chat_id == ANALYST and "осени" in m.text, timeout=60, edits=True
        )
        assert "edited" in edit.text
        # The follow-up shows what changed: the old word struck, the new one bold.
        assert "лету" in " ".join(edit.spans("strikethrough"))
        assert "осени" in " ".join(edit.spans("bold"))
        # The post deleted while down is followed up, with its kept text, after the restart.
        gone = await bot_api.wait_for(
            lambda m: m.chat_id == ANALYST and "deleted" in m.text and "общежитий" in m.text,
            timeout=60,
        )
        assert "<выселят>" in gone.text and "Watch #1" in gone.text
        await asyncio.sleep(2.0)  # Telethon's own catch-up may see it too: still one alert
    finally:
        assert await asyncio.to_thread(stop_service, service) == 0, log.read_text()

    assert len(_alerts(bot_api, "Пока вы спали")) == 1
    assert len(_alerts(bot_api, "выслать всех мигрантов <сейчас>")) == 1
    assert _alerts(bot_api, "Прогноз погоды") == []
    # Only the post that is gone is reported deleted; the ones still there are not.
    deleted = [m.text for m in bot_api.messages_to(ANALYST) if "deleted" in m.text.split("\n")[0]]
    assert len(deleted) == 2  # the live deletion and the one while down
    assert not any("лету" in t or "осени" in t or "Пока вы спали" in t for t in deleted)
    text = log.read_text()
    assert "Traceback" not in text
    assert TEST_API_HASH not in text and TOKEN.split(":")[1] not in text
    assert not telegram.unimplemented, telegram.unimplemented


async def test_login_and_run_refusals_say_what_happened(
    bot_api: BotApiServer, telegram: MTProtoServer, data_dir: Path
) -> None:
    env = _env(bot_api, telegram, data_dir)
    cwd = data_dir.parent

    # The prompts get no answer (stdin closed): refused in a sentence, not a traceback.
    quit_early = await _run(env, cwd, "login")
    assert quit_early.returncode == 1
    assert "vigil login: login cancelled" in quit_early.stderr
    assert "Traceback" not in quit_early.stderr

    # A phone number Telegram has no account for.
    code, said = await _login(telegram, env, cwd, "+15550001111", lambda c: f"{c}\n")
    assert code == 1
    assert "Telegram knows no account with that phone number" in said

    # Telegram unreachable: login and the watcher say so and exit; systemd may retry.
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    away = {**env, "TG_SERVER": f"127.0.0.1:{port}"}
    login = await _run(away, cwd, "login")
    assert login.returncode == 1
    assert f"cannot reach Telegram at 127.0.0.1:{port}" in login.stderr
    run = await _run(away, cwd, "run", "--role", "watcher")
    assert run.returncode == 2
    assert "cannot reach Telegram" in run.stderr and "Traceback" not in run.stderr
