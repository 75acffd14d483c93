from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from aiogram import Bot

from tests.bot.harness import BotApp, start_app
from tests.support.botapi import BotApiServer


@pytest.fixture
async def app(redis: aioredis.Redis, bot_api: BotApiServer, api_bot: Bot) -> AsyncIterator[BotApp]:
    bot_api.configure(enabled=False)  # conversation tests are not about flood limits
    async for running_app in start_app(redis, bot_api, api_bot):
        yield running_app
