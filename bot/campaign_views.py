"""Buttons of the campaign views: a surge alert's Examples and setting, a story's Spread, the
admins' amplification view. Pure: data in, `CallbackData` and markup out.

Callback data fits Telegram's 64 bytes: ids only (a channel id is at most 14 characters, an
hour bucket 6), never names.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot import texts
from bot.callback_data import WatchAction, WatchCB

__all__ = [
    "AmplifyAction",
    "AmplifyCB",
    "SpreadCB",
    "SurgeAction",
    "SurgeCB",
    "amplification_keyboard",
    "examples_keyboard",
    "spread_button",
    "spread_rows",
    "surge_alert_keyboard",
    "surge_setting_keyboard",
    "surge_toggle_button",
]

EXAMPLES_PER_PAGE = 5
MAX_CANDIDATE_BUTTONS = 10


class SurgeAction(StrEnum):
    EXAMPLES = "ex"  # the surge's posts, paged
    SETTING = "st"  # a watch's surge setting (from /watches)
    ON = "on"
    OFF = "of"


class SurgeCB(CallbackData, prefix="sg"):
    """`watch` is the surge subject for EXAMPLES (a watch id, or minus a shared watch id) and
    the analyst's own watch id for the setting; `hour` the alert's end hour; `page` the page
    of examples (-1 under the alert: the first page as a message of its own, since the alert
    stays), or of /watches to go back to (-1: pressed under the alert)."""

    action: SurgeAction
    watch: int
    hour: int = 0
    page: int = 0


class SpreadCB(CallbackData, prefix="sp"):
    """The Spread of the story whose first post is (channel_id, message_id)."""

    channel_id: int
    message_id: int


class AmplifyAction(StrEnum):
    VIEW = "v"
    ADD = "a"  # add an unmonitored, often forwarded channel


class AmplifyCB(CallbackData, prefix="am"):
    action: AmplifyAction
    channel_id: int = 0


def _btn(text: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data)


def surge_alert_keyboard(subject: int, end_hour: int, watch_id: int) -> InlineKeyboardMarkup:
    """Under a surge alert: its examples, and the recipient's own watch's setting."""
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                _btn(
                    texts.BTN_SURGE_EXAMPLES,
                    SurgeCB(
                        action=SurgeAction.EXAMPLES, watch=subject, hour=end_hour, page=-1
                    ).pack(),
                ),
                _btn(
                    texts.BTN_SURGES_OFF,
                    SurgeCB(action=SurgeAction.OFF, watch=watch_id, page=-1).pack(),
                ),
            ]
        ]
    )


def examples_keyboard(
    subject: int, end_hour: int, page: int, pages: int
) -> InlineKeyboardMarkup | None:
    nav: list[InlineKeyboardButton] = []
    if page > 0:
        nav.append(
            _btn(
                texts.BTN_PREV,
                SurgeCB(
                    action=SurgeAction.EXAMPLES, watch=subject, hour=end_hour, page=page - 1
                ).pack(),
            )
        )
    if page + 1 < pages:
        nav.append(
            _btn(
                texts.BTN_NEXT,
                SurgeCB(
                    action=SurgeAction.EXAMPLES, watch=subject, hour=end_hour, page=page + 1
                ).pack(),
            )
        )
    return InlineKeyboardMarkup(inline_keyboard=[nav]) if nav else None


def surge_toggle_button(watch_id: int, page: int) -> InlineKeyboardButton:
    """The /watches row's button that opens the watch's surge setting."""
    return _btn(
        texts.surge_button(watch_id),
        SurgeCB(action=SurgeAction.SETTING, watch=watch_id, page=page).pack(),
    )


def surge_setting_keyboard(watch_id: int, off: bool, page: int) -> InlineKeyboardMarkup:
    """Turn on/off, and (from /watches, page ≥ 0) back to the list's page."""
    action = SurgeAction.ON if off else SurgeAction.OFF
    rows = [
        [
            _btn(
                texts.BTN_SURGES_ON if off else texts.BTN_SURGES_OFF,
                SurgeCB(action=action, watch=watch_id, page=page).pack(),
            )
        ]
    ]
    if page >= 0:
        rows.append([_btn(texts.BTN_BACK, WatchCB(action=WatchAction.PAGE, page=page).pack())])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def spread_button(channel_id: int, message_id: int) -> InlineKeyboardButton:
    return _btn(texts.BTN_SPREAD, SpreadCB(channel_id=channel_id, message_id=message_id).pack())


def spread_rows(markup: InlineKeyboardMarkup | None) -> list[list[InlineKeyboardButton]]:
    """The Spread rows of an alert's keyboard, to keep when its other buttons are rebuilt
    (👍 / 👎 tick themselves by rebuilding the alert keyboard)."""
    rows = []
    for row in markup.inline_keyboard if markup is not None else ():
        for button in row:
            try:
                SpreadCB.unpack(button.callback_data or "")
            except (TypeError, ValueError):
                continue
            rows.append(row)
            break
    return rows


def amplification_keyboard(candidates: Sequence[tuple[int, str]]) -> InlineKeyboardMarkup | None:
    """One ➕ button per candidate (channel id, name), at most `MAX_CANDIDATE_BUTTONS`."""
    rows = [
        [
            _btn(
                texts.BTN_ADD_CANDIDATE + name[:40],
                AmplifyCB(action=AmplifyAction.ADD, channel_id=channel_id).pack(),
            )
        ]
        for channel_id, name in candidates[:MAX_CANDIDATE_BUTTONS]
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


def amplification_entry() -> InlineKeyboardButton:
    """The admin menu's button into the amplification view."""
    return _btn(texts.BTN_AMPLIFICATION, AmplifyCB(action=AmplifyAction.VIEW).pack())
