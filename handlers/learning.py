"""Learned relevance for the analyst: /learning (what the model learned, reset), /suggest
on|off (desk-model suggestions), and /settings learning on|off (see handlers/commands.py)."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot import texts
from bot.callback_data import LearningAction, LearningCB
from bot.storage.feedback import FeedbackRepository
from bot.storage.learning import LearningRepository
from bot.storage.users import Person, UserRepository
from handlers.errors import edit_or_ignore

ON_OFF = {"on": True, "off": False}


def learning_keyboard(*, confirm: bool = False) -> InlineKeyboardMarkup:
    if confirm:
        row = [
            InlineKeyboardButton(
                text=texts.BTN_LEARNING_CONFIRM,
                callback_data=LearningCB(action=LearningAction.CONFIRM).pack(),
            ),
            InlineKeyboardButton(
                text=texts.BTN_CANCEL,
                callback_data=LearningCB(action=LearningAction.CANCEL).pack(),
            ),
        ]
    else:
        row = [
            InlineKeyboardButton(
                text=texts.BTN_LEARNING_RESET,
                callback_data=LearningCB(action=LearningAction.RESET).pack(),
            )
        ]
    return InlineKeyboardMarkup(inline_keyboard=[row])


async def learning_text(person: Person, learning: LearningRepository) -> str:
    summary = await learning.summary(person.id)
    moved = await learning.moved_since(person.id, 7)
    return texts.learning_view(
        relevant=summary.relevant if summary else 0,
        noise=summary.noise if summary else 0,
        cold_start=summary.cold_start if summary else 0,
        up_words=summary.up_words if summary else (),
        down_words=summary.down_words if summary else (),
        moved_7d=moved,
        learning=person.learning,
        trained=summary is not None,
    )


async def cmd_learning(
    message: Message, command: CommandObject, person: Person, learning: LearningRepository
) -> None:
    if (command.args or "").strip():
        await message.answer(texts.USAGE_LEARNING)
        return
    await message.answer(await learning_text(person, learning), reply_markup=learning_keyboard())


async def on_learning_button(
    query: CallbackQuery,
    callback_data: LearningCB,
    person: Person,
    feedback: FeedbackRepository,
    learning: LearningRepository,
) -> None:
    message = query.message
    action = callback_data.action
    if action is LearningAction.RESET:
        if isinstance(message, Message):
            await message.answer(
                texts.LEARNING_RESET_ASK, reply_markup=learning_keyboard(confirm=True)
            )
        await query.answer()
        return
    if action is LearningAction.CONFIRM:
        await feedback.reset(person.id)
        note = texts.LEARNING_RESET_DONE
    else:
        note = texts.LEARNING_RESET_CANCELLED
    if isinstance(message, Message):
        await edit_or_ignore(message, note)
    await query.answer(note)


async def cmd_suggest(
    message: Message,
    command: CommandObject,
    person: Person,
    users: UserRepository,
    suggest_per_day: int,
) -> None:
    on = ON_OFF.get((command.args or "").strip().lower())
    if on is None:
        await message.answer(texts.USAGE_SUGGEST)
        return
    await users.set_flag(person.id, "suggest", on)
    await message.answer(texts.suggest_set(on, suggest_per_day))


async def set_learning(
    message: Message, person: Person, feedback: FeedbackRepository, value: str
) -> None:
    """`/settings learning on|off` (called by handlers/commands.py's /settings)."""
    on = ON_OFF.get(value.strip().lower())
    if on is None:
        await message.answer(texts.USAGE_LEARNING)
        return
    await feedback.set_learning(person.id, on)
    await message.answer(texts.learning_set(on))


def build_learning_router() -> Router:
    router = Router(name="learning")
    router.message.register(cmd_learning, Command("learning"))
    router.message.register(cmd_suggest, Command("suggest"))
    router.callback_query.register(on_learning_button, LearningCB.filter())
    return router
