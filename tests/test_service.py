"""`vigil run --role triage,bot` as an operator runs it: a real child process, the loopback Bot
API server as Telegram, embedded Redis. A stranger asks for access, the admin approves with the
button, the analyst adds a watch, `vigil ingest` feeds an export, the alert arrives; SIGTERM
stops the service cleanly."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

from tests.support.botapi import BotApiServer
from tests.support.service import (
    approve_analyst,
    start_service,
    stop_service,
    vigil,
    vigil_env,
)

ADMIN, ANALYST = 7001, 7002
TOKEN = "123456:TEST-TOKEN"


def _env(bot_api: BotApiServer, data_dir: Path) -> dict[str, str]:
    return vigil_env(data_dir, BOT_TOKEN=TOKEN, BOT_API_URL=bot_api.base_url, ADMIN_IDS=str(ADMIN))


def _ingest(env: dict[str, str], cwd: Path, path: Path) -> subprocess.CompletedProcess[str]:
    # --alert: the export's posts are days old, which triage would archive without alerting.
    return vigil("ingest", str(path), "--alert", "--channel", "@frontier_news", env=env, cwd=cwd)


async def test_operator_runs_the_service_end_to_end(bot_api: BotApiServer, data_dir: Path) -> None:
    bot_api.add_user(ADMIN, "Boss")
    bot_api.add_user(ANALYST, "Ann")
    env = _env(bot_api, data_dir)
    service = start_service("triage,bot", env, data_dir.parent, data_dir.parent / "service.log")
    try:
        await approve_analyst(bot_api, ADMIN, ANALYST)
        after = len(bot_api.sent)
        await bot_api.send_text(ANALYST, "/watch мигрант NEAR/4 выслать")
        await bot_api.wait_for(lambda m: m.chat_id == ANALYST, after=after)
        export = data_dir.parent / "result.json"
        export.write_text(
            json.dumps(
                {
                    "name": "Frontier news",
                    "type": "public_channel",
                    "id": 1500,
                    "messages": [
                        {
                            "id": 10,
                            "type": "message",
                            "date": "2026-11-20T10:00:00",
                            "date_unixtime": "1795168800",
                            "text": "Депутат: <выслать> всех мигрантов & закрыть границу 🚧",
                        },
                        {
                            "id": 11,
                            "type": "message",
                            "date": "2026-11-20T10:05:00",
                            "date_unixtime": "1795169100",
                            "text": "Погода на выходные",
                        },
                    ],
                },
                ensure_ascii=False,
            )
        )
        ingested = await asyncio.to_thread(_ingest, env, data_dir.parent, export)
        assert ingested.returncode == 0, ingested.stderr
        alert = await bot_api.wait_for(
            lambda m: m.chat_id == ANALYST and "Frontier news" in m.text, timeout=30
        )
        assert "<выслать> всех мигрантов & закрыть границу" in alert.text
        assert {"выслать", "мигрантов"} <= set(alert.spans("bold"))
        assert ("Open", "https://t.me/frontier_news/10") in alert.buttons()
        await asyncio.sleep(1.0)
        alerts = [m for m in bot_api.messages_to(ANALYST) if "Frontier news" in m.text]
        assert len(alerts) == 1  # the weather post matched nothing
    finally:
        code = await asyncio.to_thread(stop_service, service)
    log = (data_dir.parent / "service.log").read_text()
    assert code == 0, log
    assert "Traceback" not in log
    assert TOKEN.split(":")[1] not in log  # the token is never logged
