"""Buttons under an alert: 👍 Relevant / 👎 Noise (stored, shown ticked, and sent to the
learner through the feedback stream), 🔕 mute the channel (with an undo button; a mute is a
noise verdict on the channel for the model). Only the analyst the alert was sent to counts; in a
desk (a group the alert was routed to) whoever presses counts, for themselves."""

from __future__ import annotations

import logging

from aiogram import Router
from aiogram.types import CallbackQuery, Message

from bot import texts
from bot.callback_data import FeedbackAction, FeedbackCB
from bot.campaign_views import spread_rows
from bot.keyboards import alert_keyboard, url_of
from bot.storage.feedback import FeedbackRepository, Verdict
from bot.storage.mutes import MuteRepository, channel_target
from bot.storage.users import Person
from handlers.errors import edit_or_ignore

log = logging.getLogger(__name__)


async def on_feedback(
    query: CallbackQuery,
    callback_data: FeedbackCB,
    person: Person,
    feedback: FeedbackRepository,
    mutes: MuteRepository,
) -> None:
    cb = callback_data
    message = query.message
    # In a desk (a group the alert was posted to), the verdict is the presser's own: the
    # desk's chat was alerted, the person who pressed learns from it.
    desk = isinstance(message, Message) and message.chat.type != "private"
    alerted = message.chat.id if desk and isinstance(message, Message) else person.id
    if not await feedback.was_alerted(alerted, cb.channel_id, cb.message_id):
        # Someone else's alert (forwarded to them, or pressed in a group): changes nothing.
        await query.answer(texts.FEEDBACK_NOT_YOURS, show_alert=True)
        return
    if cb.action in (FeedbackAction.RELEVANT, FeedbackAction.NOISE):
        verdict: Verdict = "relevant" if cb.action is FeedbackAction.RELEVANT else "noise"
        await feedback.set(person.id, cb.channel_id, cb.message_id, cb.watch_id, verdict)
        note = texts.FEEDBACK_THANKS
    elif cb.action is FeedbackAction.MUTE:
        await mutes.mute(person.id, channel_target(cb.channel_id))
        await feedback.note_mute(person.id, cb.channel_id)  # a mute teaches the model too
        note = texts.MUTE_DONE
    else:
        await mutes.unmute(person.id, channel_target(cb.channel_id))
        await feedback.note_mute(person.id, cb.channel_id)
        note = texts.UNMUTE_DONE
    stored = await feedback.get(person.id, cb.channel_id, cb.message_id, cb.watch_id)
    chosen = {"relevant": FeedbackAction.RELEVANT, "noise": FeedbackAction.NOISE}.get(stored or "")
    muted = channel_target(cb.channel_id) in await mutes.active(person.id)
    if isinstance(message, Message) and not desk:  # a desk's buttons are the team's: unticked
        link = url_of(message.reply_markup) or "https://t.me"
        markup = alert_keyboard(
            cb.channel_id, cb.message_id, cb.watch_id, link, chosen=chosen, muted=muted
        )
        markup.inline_keyboard += spread_rows(message.reply_markup)  # a story's Spread stays
        await edit_or_ignore(message, reply_markup=markup)
    await query.answer(note)


def build_feedback_router() -> Router:
    router = Router(name="feedback")
    router.callback_query.register(on_feedback, FeedbackCB.filter())
    return router
