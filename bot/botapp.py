"""The bot role: the aiogram Dispatcher (commands, menus, feedback) and the delivery worker.

`bot.app` (the composition root) calls `run_bot_role`; the pieces are public so tests and
benchmarks can assemble them differently. Every dependency arrives as a parameter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from dataclasses import fields
from typing import Any

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.fsm.storage.memory import MemoryStorage

from bot.config import ConfigError, Settings
from bot.delivery.ratelimit import RateLimiter, RateLimits
from bot.delivery.worker import DeliveryConfig, DeliveryWorker
from bot.fit import FitRequestMiddleware
from bot.storage.repos import Repositories
from bot.storage.requests import SearchLimits
from bot.storage.users import UserRepository
from handlers import build_root_router
from handlers.commands_scope import set_commands_for, set_default_commands
from handlers.roles import RoleMiddleware

log = logging.getLogger(__name__)


def make_bot(settings: Settings) -> Bot:
    """A Bot for BOT_TOKEN, on BOT_API_URL when set; HTML parse mode by default."""
    if settings.bot_token is None:
        raise ConfigError("BOT_TOKEN is not set")
    session = (
        AiohttpSession(api=TelegramAPIServer.from_base(settings.bot_api_url))
        if settings.bot_api_url
        else AiohttpSession()
    )
    # Every outgoing text, caption, keyboard and callback answer is fitted to Telegram's
    # limits (bot/fit.py), so no reply can be refused for its length.
    session.middleware(FitRequestMiddleware())
    return Bot(
        token=settings.bot_token.get_secret_value(),
        session=session,
        default=DefaultBotProperties(parse_mode="HTML"),
    )


# Bundle fields that are not repositories: the client stays with the storage package.
NOT_FOR_HANDLERS = frozenset({"redis", "retention"})


def handler_repositories(repos: Repositories) -> dict[str, Any]:
    """Every repository of the bundle by its field name (`users`, `audit`, `dead_letters`,
    ...): what handlers declare as parameters. Never the Redis client."""
    return {
        f.name: getattr(repos, f.name) for f in fields(repos) if f.name not in NOT_FOR_HANDLERS
    }


def build_dispatcher(
    repos: Repositories,
    *,
    suggest_per_day: int = 3,
    search_limits: SearchLimits | None = None,
) -> Dispatcher:
    """The Dispatcher with every router; handlers get the bundle's repositories by parameter
    name (see `handler_repositories`), the per-analyst /test and /search limits and the
    suggestion cap. The bot never loads triage models: /test and /search ask the triage
    role (`repos.searches`)."""
    dp = Dispatcher(
        storage=MemoryStorage(),
        search_limits=search_limits or SearchLimits(),
        suggest_per_day=suggest_per_day,
        **handler_repositories(repos),
    )
    roles = RoleMiddleware(repos.users)
    dp.message.outer_middleware(roles)
    dp.callback_query.outer_middleware(roles)
    dp.my_chat_member.outer_middleware(roles)
    dp.include_router(build_root_router())
    return dp


async def register_commands(bot: Bot, users: UserRepository) -> None:
    """setMyCommands: /start for everyone, the analyst list per analyst chat, the admin list
    per admin chat."""
    await set_default_commands(bot)
    for person in await users.analysts():
        await set_commands_for(bot, person.id, person.role)


async def run_bot(bot: Bot, dp: Dispatcher, stop: asyncio.Event) -> None:
    """Long polling until `stop` is set."""
    polling = asyncio.create_task(
        dp.start_polling(
            bot,
            handle_signals=False,
            close_bot_session=False,
            allowed_updates=dp.resolve_used_update_types(),
        ),
        name="bot-polling",
    )
    stopper = asyncio.create_task(stop.wait(), name="bot-stop")
    try:
        await asyncio.wait({polling, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not polling.done():
            with contextlib.suppress(RuntimeError):  # polling not started yet
                await dp.stop_polling()
            try:
                await asyncio.wait_for(polling, 10)
            except TimeoutError:
                polling.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await polling
        elif polling.exception() is not None:
            raise polling.exception()  # type: ignore[misc]


async def run_delivery(worker: DeliveryWorker, stop: asyncio.Event) -> None:
    """The delivery worker until `stop` is set; sends in flight finish first."""
    task = asyncio.create_task(worker.run(), name="delivery")
    stopper = asyncio.create_task(stop.wait(), name="delivery-stop")
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        elif task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


def build_delivery_worker(
    settings: Settings,
    repos: Repositories,
    bot: Bot,
    *,
    consumer: str | None = None,
) -> DeliveryWorker:
    """The delivery worker over the bundle (its ledger keeps `repos.retention.ledger_s`)."""
    limiter = RateLimiter(
        repos.rates,
        RateLimits(chat_per_s=settings.chat_rate_per_s, global_per_s=settings.global_rate_per_s),
    )
    config = DeliveryConfig(
        consumer=consumer or f"delivery-{socket.gethostname()}:{os.getpid()}",
        max_deliveries=settings.max_deliveries,
        claim_idle_ms=int(settings.claim_idle_s * 1000),
    )
    return DeliveryWorker(bot, limiter, repos, config)


async def run_bot_role(
    settings: Settings, repos: Repositories, stop: asyncio.Event, *, consumer: str | None = None
) -> None:
    """Everything the bot role does, until `stop`: polling and delivery in one process."""
    users = repos.users
    await users.ensure_admins()
    bot = make_bot(settings)
    try:
        dp = build_dispatcher(
            repos,
            suggest_per_day=settings.suggest_per_day,
            search_limits=SearchLimits(
                per_window=settings.search_per_minute, timeout_s=settings.search_timeout_s
            ),
        )
        await register_commands(bot, users)
        worker = build_delivery_worker(settings, repos, bot, consumer=consumer)

        async def until_stopped(role: asyncio.Future[None] | asyncio.Task[None]) -> None:
            try:
                await role
            finally:
                stop.set()  # one half ending (or failing) stops the other

        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(until_stopped(asyncio.ensure_future(run_bot(bot, dp, stop))))
            tasks.create_task(until_stopped(asyncio.ensure_future(run_delivery(worker, stop))))
    finally:
        await bot.session.close()
