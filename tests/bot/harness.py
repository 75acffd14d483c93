"""A running bot (real aiogram polling over HTTP) against the loopback Bot API server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import redis.asyncio as aioredis
from aiogram import Bot

from bot.botapp import build_dispatcher, register_commands, run_bot
from bot.delivery.worker import DeliveryWorker
from bot.search import SearchWorker
from bot.storage.audit import AuditLog
from bot.storage.channels import ChannelRepository
from bot.storage.feedback import FeedbackRepository
from bot.storage.mutes import MuteRepository
from bot.storage.repos import Repositories
from bot.storage.requests import SearchLimits
from bot.storage.shared import SharedWatchRepository
from bot.storage.users import UserRepository
from bot.storage.watches import WatchRepository
from bot.triage.language import make_detector
from tests.delivery.util import make_worker, running
from tests.support.botapi import BotApiServer, SentMessage

ADMIN = 1


@dataclass
class BotApp:
    server: BotApiServer
    bot: Bot
    redis: aioredis.Redis
    users: UserRepository
    watches: WatchRepository
    channels: ChannelRepository
    mutes: MuteRepository
    feedback: FeedbackRepository
    audit: AuditLog
    shared: SharedWatchRepository
    repos: Repositories  # the bundle the Dispatcher was built over

    async def say(self, user_id: int, text: str, timeout: float = 5.0) -> SentMessage:  # noqa: ASYNC109
        """The user writes; returns the bot's next message to them."""
        after = len(self.server.sent)
        await self.server.send_text(user_id, text)
        return await self.server.wait_for(lambda m: m.chat_id == user_id, timeout, after=after)

    async def say_nothing_back(self, user_id: int, text: str) -> None:
        """The user writes and the bot, having read it, does not answer."""
        after = len(self.server.sent)
        await self.server.send_text(user_id, text)
        await self.server.wait_until(lambda: self.server.pending_updates == 0)
        await asyncio.sleep(0.3)
        assert [m for m in self.server.sent[after:] if m.chat_id == user_id] == []

    async def press(
        self, user_id: int, message: SentMessage, label: str
    ) -> tuple[str | None, SentMessage | None]:
        """Press a button by its label; (callback answer text, the message after edits)."""
        query = await self.server.press_button(user_id, message.message_id, label)
        answer = await self.server.wait_callback_answer(query)
        return answer.text, self.server.current(user_id, message.message_id)

    async def press_data(self, user_id: int, message: SentMessage, data: str) -> str | None:
        """Press forged callback data on a message (as a modified client could)."""
        query = await self.server.press(user_id, message.message_id, data, check_button=False)
        return (await self.server.wait_callback_answer(query)).text

    async def make_analyst(self, user_id: int, name: str = "Ann") -> None:
        self.server.add_user(user_id, name)
        await self.users.request_access(user_id, name, None)
        assert await self.users.approve(user_id)

    def worker(self, **kw: object) -> DeliveryWorker:
        return make_worker(self.redis, self.bot, self.users, **kw)  # type: ignore[arg-type]


async def start_app(
    redis: aioredis.Redis,
    server: BotApiServer,
    bot: Bot,
    *,
    triage: bool = True,
    search_limits: SearchLimits | None = None,
) -> AsyncIterator[BotApp]:
    """The bot, and (`triage`) the triage role's search worker that answers /test and
    /search through the request stream, as `vigil run` runs them."""
    server.add_user(ADMIN, "Boss", "boss")
    repos = Repositories.build(redis, admins=frozenset({ADMIN}))
    users = repos.users
    await users.ensure_admins()
    app = BotApp(
        server,
        bot,
        redis,
        users,
        repos.watches,
        repos.channels,
        repos.mutes,
        repos.feedback,
        repos.audit,
        repos.shared,
        repos,
    )
    dp = build_dispatcher(repos, search_limits=search_limits)
    await register_commands(bot, users)
    stop = asyncio.Event()
    task = asyncio.create_task(run_bot(bot, dp, stop))
    searcher = None
    if triage:
        worker = SearchWorker(repos.searches, repos.archive, make_detector(), consumer="search-t")
        searcher = asyncio.create_task(worker.run(stop))
    try:
        yield app
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
        if searcher is not None:
            await asyncio.wait_for(searcher, 15)


__all__ = ["ADMIN", "BotApp", "running", "start_app"]
