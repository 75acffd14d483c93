"""The bot's error boundary: a handler that raises never leaves the user without a word.

`HandlerNameMiddleware` (inner, on messages and callback queries) tags an escaping exception
with the handler it came from; `on_error` (the root router's errors handler) then logs the
update id, the handler and the exception type — never the text or a token — counts the error
for that handler (System view), answers the callback query so the button stops spinning, and
tells the user in one line. `edit_or_ignore` is the one edit helper: it ignores only Telegram's
"message is not modified" (a button pressed twice), never any other refusal.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot, Router
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.types import ErrorEvent, InlineKeyboardMarkup, Message, TelegramObject

from bot import texts
from bot.storage.errors import HandlerErrors

log = logging.getLogger(__name__)

NOT_MODIFIED = "message is not modified"


class HandlerNameMiddleware(BaseMiddleware):
    """Remembers which handler an exception escaped from (for the per-handler counts)."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        try:
            return await handler(event, data)
        except Exception as exc:
            found = data.get("handler")
            callback = getattr(found, "callback", None)
            name = getattr(callback, "__name__", None) or "unknown"
            exc.add_note(f"vigil-handler:{name}")
            raise


def handler_of(exc: BaseException) -> str:
    for note in getattr(exc, "__notes__", ()):
        if note.startswith("vigil-handler:"):
            return str(note).removeprefix("vigil-handler:")
    return "unknown"


async def on_error(event: ErrorEvent, bot: Bot, handler_errors: HandlerErrors) -> bool:
    exc = event.exception
    name = handler_of(exc)
    update = event.update
    # The frames, not the exception's message: a message can quote what the user wrote.
    log.error(
        "update %s: handler %s raised %s\n%s",
        update.update_id,
        name,
        type(exc).__name__,
        "".join(traceback.format_tb(exc.__traceback__)),
    )
    if not await handler_errors.count(name):
        log.warning("update %s: the error could not be counted", update.update_id)
    try:
        if update.callback_query is not None:
            await update.callback_query.answer(texts.SOMETHING_WENT_WRONG, show_alert=True)
        elif update.message is not None:
            await bot.send_message(update.message.chat.id, texts.SOMETHING_WENT_WRONG)
    except TelegramAPIError as told:
        log.warning("update %s: could not tell the user (%s)", update.update_id, told)
    return True


async def edit_or_ignore(
    message: Message, text: str | None = None, reply_markup: InlineKeyboardMarkup | None = None
) -> None:
    """Edit the text (and markup) or only the markup; "not modified" is ignored, any other
    refusal raises (the error boundary answers it)."""
    try:
        if text is None:
            await message.edit_reply_markup(reply_markup=reply_markup)
        else:
            await message.edit_text(text, reply_markup=reply_markup)
    except TelegramBadRequest as exc:
        if NOT_MODIFIED not in str(exc).lower():
            raise
        log.debug("edit: not modified (pressed twice)")


def install_error_boundary(root: Router) -> None:
    middleware = HandlerNameMiddleware()
    root.message.middleware(middleware)
    root.callback_query.middleware(middleware)
    root.errors.register(on_error)
