"""What each person's command menu shows (setMyCommands per chat scope).

The default scope lists only /start, so strangers see nothing they cannot use; analysts get the
analyst list in their chat, admins the admin list in theirs.
"""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BotCommand, BotCommandScopeChat, BotCommandScopeDefault

from bot.vocabulary import Role

log = logging.getLogger(__name__)

DEFAULT_COMMANDS = (("start", "Start / request access"),)
ANALYST_COMMANDS = (
    ("start", "Start"),
    ("help", "What I can do"),
    ("watch", "Add a watch: /watch QUERY"),
    ("watches", "Your watches"),
    ("unwatch", "Delete a watch: /unwatch ID"),
    ("test", "Try a query on the archive"),
    ("search", "Search the archive, newest first"),
    ("shared", "Team-wide watches to subscribe to"),
    ("channels", "Monitored channels"),
    ("mute", "Mute a channel or watch"),
    ("unmute", "Unmute"),
    ("quiet", "Quiet hours: /quiet 22:00-07:00"),
    ("digest", "Digest: off, hourly, daily"),
    ("stats", "Chart of your alerts (14 days)"),
    ("export", "Your alerts as CSV: /export 7d"),
    ("settings", "Time zone, threshold, learning"),
    ("learning", "What your 👍 / 👎 taught me"),
    ("suggest", "Suggestions no watch caught: on|off"),
    ("route", "Send a watch's alerts to a group: /route ID CHAT"),
    ("routes", "Watches routed to groups and channels"),
)
ADMIN_COMMANDS = (
    *ANALYST_COMMANDS,
    ("admin", "Admin menu"),
    ("addchannel", "Monitor a channel: /addchannel REF"),
    ("amplification", "Who amplifies whom: forward pairs and sources to add"),
)


def _commands(pairs: tuple[tuple[str, str], ...]) -> list[BotCommand]:
    return [BotCommand(command=c, description=d) for c, d in pairs]


async def set_default_commands(bot: Bot) -> None:
    await bot.set_my_commands(_commands(DEFAULT_COMMANDS), scope=BotCommandScopeDefault())


async def set_commands_for(bot: Bot, user_id: int, role: str) -> None:
    """Give one chat the command list of `role` (none for a revoked or denied person)."""
    scope = BotCommandScopeChat(chat_id=user_id)
    try:
        if role == Role.ADMIN:
            await bot.set_my_commands(_commands(ADMIN_COMMANDS), scope=scope)
        elif role == Role.ANALYST:
            await bot.set_my_commands(_commands(ANALYST_COMMANDS), scope=scope)
        else:
            await bot.delete_my_commands(scope=scope)
    except TelegramAPIError as exc:  # e.g. the person never opened the chat
        log.info("commands: could not set the menu of %s: %s", user_id, exc)
