"""Inline keyboards: pure functions from data to markup."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot import texts
from bot.callback_data import (
    AccessAction,
    AccessCB,
    AdminPrompt,
    AdminPromptCB,
    AdminView,
    AdminViewCB,
    ArchiveCB,
    ArchiveKind,
    AuditCB,
    ChannelAction,
    ChannelCB,
    ChannelWeightCB,
    DeadRetryCB,
    DeskRouteCB,
    FeedbackAction,
    FeedbackCB,
    ListAction,
    ListCB,
    PendingAction,
    PendingCB,
    PersonAction,
    PersonCB,
    SharedAction,
    SharedAdminAction,
    SharedAdminCB,
    SharedCB,
    SharedPriorityCB,
    WatchAction,
    WatchCB,
    channel_token,
)
from bot.campaign_views import amplification_entry, surge_toggle_button
from bot.triage.priority import PRIORITIES, Priority


def _btn(text: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data)


# --- alerts --------------------------------------------------------------------------------
def alert_keyboard(
    channel_id: int,
    message_id: int,
    watch_id: int,
    link: str,
    *,
    chosen: FeedbackAction | None = None,
    muted: bool = False,
) -> InlineKeyboardMarkup:
    """👍 / 👎 (the chosen one ticked), 🔕 (or its undo once muted), Open."""

    def cb(action: FeedbackAction) -> str:
        return FeedbackCB(
            action=action, channel_id=channel_id, message_id=message_id, watch_id=watch_id
        ).pack()

    relevant = (texts.CHOSEN if chosen is FeedbackAction.RELEVANT else "") + texts.BTN_RELEVANT
    noise = (texts.CHOSEN if chosen is FeedbackAction.NOISE else "") + texts.BTN_NOISE
    mute = (
        _btn(texts.BTN_UNMUTE, cb(FeedbackAction.UNMUTE))
        if muted
        else _btn(texts.BTN_MUTE, cb(FeedbackAction.MUTE))
    )
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [_btn(relevant, cb(FeedbackAction.RELEVANT)), _btn(noise, cb(FeedbackAction.NOISE))],
            [mute, InlineKeyboardButton(text=texts.BTN_OPEN, url=link)],
        ]
    )


def url_of(markup: InlineKeyboardMarkup | None) -> str | None:
    """The Open button's URL of an alert keyboard (to rebuild it after feedback)."""
    if markup is None:
        return None
    for row in markup.inline_keyboard:
        for button in row:
            if button.url:
                return button.url
    return None


# --- paging --------------------------------------------------------------------------------
def pager_row(page: int, pages: int, make: Callable[[int], str]) -> list[InlineKeyboardButton]:
    """◀ and ▶ (each only where there is a page to go to), with the position between them."""
    if pages <= 1:
        return []
    row: list[InlineKeyboardButton] = []
    if page > 0:
        row.append(_btn(texts.BTN_PREV, make(page - 1)))
    if page + 1 < pages:
        row.append(_btn(texts.BTN_NEXT, make(page + 1)))
    return row


def archive_keyboard(
    kind: ArchiveKind, page: int, pages: int, at: int, tag: str
) -> InlineKeyboardMarkup | None:
    """/test and /search: ◀ ▶ between pages of the same snapshot."""
    row = pager_row(page, pages, lambda to: ArchiveCB(kind=kind, page=to, at=at, tag=tag).pack())
    return InlineKeyboardMarkup(inline_keyboard=[row]) if row else None


def list_keyboard(action: ListAction, page: int, pages: int) -> InlineKeyboardMarkup | None:
    row = pager_row(page, pages, lambda to: ListCB(action=action, page=to).pack())
    return InlineKeyboardMarkup(inline_keyboard=[row]) if row else None


# --- access --------------------------------------------------------------------------------
def access_request_keyboard(user_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                _btn(
                    texts.BTN_APPROVE,
                    AccessCB(action=AccessAction.APPROVE, user_id=user_id).pack(),
                ),
                _btn(texts.BTN_DENY, AccessCB(action=AccessAction.DENY, user_id=user_id).pack()),
            ]
        ]
    )


# --- /watches ------------------------------------------------------------------------------
def watches_keyboard(
    watches: Sequence[tuple[int, bool]],
    page: int,
    pages: int,
    shared: frozenset[int] = frozenset(),
) -> InlineKeyboardMarkup:
    """One row per watch (id, paused): pause/resume, priority, delete; then paging. Watches
    in `shared` follow a shared watch: no priority button (admins set it); delete unsubscribes."""
    rows: list[list[InlineKeyboardButton]] = []
    for watch_id, paused in watches:
        toggle = (
            _btn(
                f"▶️ #{watch_id}",
                WatchCB(action=WatchAction.RESUME, watch_id=watch_id, page=page).pack(),
            )
            if paused
            else _btn(
                f"⏸ #{watch_id}",
                WatchCB(action=WatchAction.PAUSE, watch_id=watch_id, page=page).pack(),
            )
        )
        priority = _btn(
            f"{texts.BTN_PRIORITY} #{watch_id}",
            WatchCB(action=WatchAction.PRIORITY, watch_id=watch_id, page=page).pack(),
        )
        delete = _btn(
            f"🗑 #{watch_id}",
            WatchCB(action=WatchAction.DELETE, watch_id=watch_id, page=page).pack(),
        )
        surges = surge_toggle_button(watch_id, page)  # the watch's surge alerts on/off
        rows.append(
            [toggle, surges, delete] if watch_id in shared else [toggle, priority, surges, delete]
        )
    nav: list[InlineKeyboardButton] = []
    if page > 0:
        nav.append(_btn(texts.BTN_PREV, WatchCB(action=WatchAction.PAGE, page=page - 1).pack()))
    if page + 1 < pages:
        nav.append(_btn(texts.BTN_NEXT, WatchCB(action=WatchAction.PAGE, page=page + 1).pack()))
    if nav:
        rows.append(nav)
    return InlineKeyboardMarkup(inline_keyboard=rows)


def priority_keyboard(watch_id: int, current: str, page: int) -> InlineKeyboardMarkup:
    row = [
        _btn(
            (texts.CHOSEN if p == current else "") + texts.PRIORITY_MARKERS[p] + " " + p,
            WatchCB(
                action=WatchAction.SET_PRIORITY, watch_id=watch_id, page=page, priority=p
            ).pack(),
        )
        for p in PRIORITIES
    ]
    back = [_btn(texts.BTN_BACK, WatchCB(action=WatchAction.PAGE, page=page).pack())]
    return InlineKeyboardMarkup(inline_keyboard=[row[:2], row[2:], back])


# --- /admin --------------------------------------------------------------------------------
def _view(view: AdminView, page: int = 0) -> str:
    return AdminViewCB(view=view, page=page).pack()


def _back(to: AdminView = AdminView.MENU, page: int = 0) -> list[InlineKeyboardButton]:
    return [_btn(texts.BTN_BACK, _view(to, page))]


def admin_menu_buttons() -> list[InlineKeyboardButton]:
    """The /admin sections, in order: add a section by adding its button here."""
    return [
        _btn(texts.BTN_CHANNELS, _view(AdminView.CHANNELS)),
        _btn(texts.BTN_ANALYSTS, _view(AdminView.ANALYSTS)),
        _btn(texts.BTN_SHARED, _view(AdminView.SHARED)),
        _btn(texts.BTN_SYSTEM, _view(AdminView.SYSTEM)),
        _btn(texts.BTN_AUDIT, AuditCB().pack()),
        amplification_entry(),  # handlers.campaigns: who amplifies whom
    ]


def admin_menu_keyboard() -> InlineKeyboardMarkup:
    """The menu's buttons two to a row."""
    buttons = admin_menu_buttons()
    return InlineKeyboardMarkup(
        inline_keyboard=[buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    )


def admin_channels_keyboard(
    channels: Sequence[tuple[str, str]], page: int, pages: int
) -> InlineKeyboardMarkup:
    """channels: (key, button label)."""
    rows = [
        [_btn(label, ChannelCB(action=ChannelAction.OPEN, token=channel_token(key)).pack())]
        for key, label in channels
    ]
    return _admin_list(rows, AdminView.CHANNELS, page, pages, texts.BTN_ADD, AdminPrompt.CHANNEL)


def _admin_list(
    rows: list[list[InlineKeyboardButton]],
    listing: AdminView,
    page: int,
    pages: int,
    add_label: str,
    add: AdminPrompt,
) -> InlineKeyboardMarkup:
    """An admin list page: its rows, then ◀ ▶ between pages, an Add button and Back."""
    rows += _admin_pager(listing, page, pages)
    rows.append([_btn(add_label, AdminPromptCB(what=add).pack())])
    rows.append(_back())
    return InlineKeyboardMarkup(inline_keyboard=rows)


def admin_channel_keyboard(key: str, paused: bool, weight: str) -> InlineKeyboardMarkup:
    token = channel_token(key)

    def cb(action: ChannelAction) -> str:
        return ChannelCB(action=action, token=token).pack()

    toggle = (
        _btn(texts.BTN_RESUME, cb(ChannelAction.RESUME))
        if paused
        else _btn(texts.BTN_PAUSE, cb(ChannelAction.PAUSE))
    )
    weights = [
        _btn(
            (texts.CHOSEN if w == weight else "") + w,
            ChannelWeightCB(token=token, weight=w).pack(),
        )
        for w in Priority
    ]
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [toggle, _btn(texts.BTN_REMOVE, cb(ChannelAction.REMOVE))],
            weights,
            _back(AdminView.CHANNELS),
        ]
    )


def _admin_pager(listing: AdminView, page: int, pages: int) -> list[list[InlineKeyboardButton]]:
    row = pager_row(page, pages, lambda to: _view(listing, to))
    return [row] if row else []


def admin_analysts_keyboard(
    people: Sequence[tuple[int, str]], pending: int, page: int = 0, pages: int = 1
) -> InlineKeyboardMarkup:
    """people: (user id, button label) of this page."""
    rows = [
        [_btn(f"{texts.BTN_PENDING} ({pending})", _view(AdminView.PENDING))],
        *[
            [_btn(label, PersonCB(action=PersonAction.OPEN, user_id=uid).pack())]
            for uid, label in people
        ],
        *_admin_pager(AdminView.ANALYSTS, page, pages),
        _back(),
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows)


def admin_pending_keyboard(
    people: Sequence[tuple[int, str]], page: int = 0, pages: int = 1
) -> InlineKeyboardMarkup:
    """people: (user id, label) of this page; a decision comes back to the same page."""

    def cb(action: PendingAction, uid: int) -> str:
        return PendingCB(action=action, user_id=uid, page=page).pack()

    rows = [
        [
            _btn(f"✅ {label}", cb(PendingAction.APPROVE, uid)),
            _btn(texts.BTN_DENY, cb(PendingAction.DENY, uid)),
        ]
        for uid, label in people
    ]
    rows += _admin_pager(AdminView.PENDING, page, pages)
    rows.append(_back(AdminView.ANALYSTS))
    return InlineKeyboardMarkup(inline_keyboard=rows)


def admin_audit_keyboard(newer: str | None, older: str | None, page: int) -> InlineKeyboardMarkup:
    """Audit log pages, newest first: ◀ to newer entries, ▶ to older ones. `newer`/`older`:
    where that page starts (see handlers/admin.py), None where there is none."""
    row: list[InlineKeyboardButton] = []
    if newer is not None:
        row.append(_btn(texts.BTN_PREV, AuditCB(cursor=newer, page=max(0, page - 1)).pack()))
    if older is not None:
        row.append(_btn(texts.BTN_NEXT, AuditCB(cursor=older, page=page + 1).pack()))
    return InlineKeyboardMarkup(inline_keyboard=[row, _back()] if row else [_back()])


def admin_person_keyboard(user_id: int, role: str, fixed_admin: bool) -> InlineKeyboardMarkup:
    def cb(action: PersonAction) -> str:
        return PersonCB(action=action, user_id=user_id).pack()

    row: list[InlineKeyboardButton] = []
    if not fixed_admin:
        if role == "admin":
            row.append(_btn(texts.BTN_DEMOTE, cb(PersonAction.DEMOTE)))
        else:
            row.append(_btn(texts.BTN_PROMOTE, cb(PersonAction.PROMOTE)))
        row.append(_btn(texts.BTN_REVOKE, cb(PersonAction.REVOKE)))
    rows = [row] if row else []
    rows.append(_back(AdminView.ANALYSTS))
    return InlineKeyboardMarkup(inline_keyboard=rows)


def admin_system_keyboard(dead: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [_btn(f"{texts.BTN_DEAD} ({dead})", _view(AdminView.DEAD))],
            _back(),
        ]
    )


def admin_dead_keyboard(
    entries: Sequence[tuple[int, str]], page: int = 0, pages: int = 1
) -> InlineKeyboardMarkup:
    """entries: (stream index, entry id) of this page (see bot/storage/deadletters.py); a retry
    comes back to the same page."""
    rows = [
        [
            _btn(
                f"{texts.BTN_RETRY} {entry_id}",
                DeadRetryCB(stream=i, entry=entry_id, page=page).pack(),
            )
        ]
        for i, entry_id in entries
    ]
    rows += _admin_pager(AdminView.DEAD, page, pages)
    rows.append(_back(AdminView.SYSTEM))
    return InlineKeyboardMarkup(inline_keyboard=rows)


def admin_back_keyboard(to: AdminView = AdminView.MENU) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[_back(to)])


# --- shared watches ------------------------------------------------------------------------
def admin_shared_keyboard(
    shared: Sequence[tuple[int, str]], page: int, pages: int
) -> InlineKeyboardMarkup:
    """shared: (shared watch id, button label)."""
    rows = [
        [
            _btn(
                label,
                SharedAdminCB(action=SharedAdminAction.OPEN, shared_id=sid, page=page).pack(),
            )
        ]
        for sid, label in shared
    ]
    return _admin_list(
        rows, AdminView.SHARED, page, pages, texts.BTN_ADD_SHARED, AdminPrompt.SHARED
    )


def admin_shared_card_keyboard(shared_id: int, priority: str, page: int) -> InlineKeyboardMarkup:
    priorities = [
        _btn(
            (texts.CHOSEN if p == priority else "") + texts.PRIORITY_MARKERS[p] + " " + p,
            SharedPriorityCB(shared_id=shared_id, priority=p, page=page).pack(),
        )
        for p in Priority
    ]
    remove = SharedAdminCB(action=SharedAdminAction.REMOVE, shared_id=shared_id, page=page)
    return InlineKeyboardMarkup(
        inline_keyboard=[
            priorities[:2],
            priorities[2:],
            [_btn(texts.BTN_ROUTE_SHARED, DeskRouteCB(shared_id=shared_id).pack())],
            [_btn(texts.BTN_REMOVE, remove.pack())],
            _back(AdminView.SHARED, page),
        ]
    )


def admin_shared_remove_keyboard(shared_id: int, page: int) -> InlineKeyboardMarkup:
    def cb(action: SharedAdminAction) -> str:
        return SharedAdminCB(action=action, shared_id=shared_id, page=page).pack()

    return InlineKeyboardMarkup(
        inline_keyboard=[
            [_btn(texts.BTN_CONFIRM_REMOVE, cb(SharedAdminAction.REMOVE_OK))],
            [_btn(texts.BTN_BACK, cb(SharedAdminAction.OPEN))],
        ]
    )


def shared_keyboard(
    shared: Sequence[tuple[int, bool]], page: int, pages: int
) -> InlineKeyboardMarkup | None:
    """/shared: one button per shared watch (id, subscribed): subscribe or unsubscribe."""

    def cb(action: SharedAction, shared_id: int = 0, to: int = page) -> str:
        return SharedCB(action=action, shared_id=shared_id, page=to).pack()

    rows = [
        [
            _btn(f"{texts.BTN_UNSUBSCRIBE} S{sid}", cb(SharedAction.UNSUBSCRIBE, sid))
            if subscribed
            else _btn(f"{texts.BTN_SUBSCRIBE} S{sid}", cb(SharedAction.SUBSCRIBE, sid))
        ]
        for sid, subscribed in shared
    ]
    nav: list[InlineKeyboardButton] = []
    if page > 0:
        nav.append(_btn(texts.BTN_PREV, cb(SharedAction.PAGE, to=page - 1)))
    if page + 1 < pages:
        nav.append(_btn(texts.BTN_NEXT, cb(SharedAction.PAGE, to=page + 1)))
    if nav:
        rows.append(nav)
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


def desk_choice_keyboard(shared_id: int, desks: Sequence[tuple[int, str]]) -> InlineKeyboardMarkup:
    """One button per desk (chat id, label) to route shared watch `shared_id` to, and Back to
    its card."""
    back = SharedAdminCB(action=SharedAdminAction.OPEN, shared_id=shared_id)
    rows = [
        [_btn(f"📤 {label}"[:60], DeskRouteCB(shared_id=shared_id, chat_id=chat_id).pack())]
        for chat_id, label in desks
    ]
    return InlineKeyboardMarkup(inline_keyboard=[*rows, [_btn(texts.BTN_BACK, back.pack())]])
