"""Watches: /watch, /watches (paged, with buttons), /unwatch, /test."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from html import escape

import redis.asyncio as aioredis
from aiogram import Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot import texts
from bot.callback_data import WatchAction, WatchCB
from bot.delivery.render import clean_text, normalise_spans, post_link
from bot.keyboards import priority_keyboard, watches_keyboard
from bot.models import Post
from bot.storage.archive import ArchiveRepository
from bot.storage.audit import AuditLog
from bot.storage.shared import SharedWatchRepository
from bot.storage.users import Person
from bot.storage.watches import Watch, WatchLimitError, WatchRepository
from bot.triage.engine import TriageEngine
from bot.triage.index import WatchSpec
from bot.triage.language import LanguageDetector
from bot.triage.query import QueryError, parse_query

log = logging.getLogger(__name__)

PAGE_SIZE = 6
TEST_DAYS = 7
TEST_MAX_POSTS = 20_000
TEST_EXAMPLES = 3
SNIPPET_CONTEXT = 80


def _query_error(query: str, exc: QueryError) -> str:
    return texts.query_error(query, str(exc), exc.position)


async def cmd_watch(
    message: Message,
    command: CommandObject,
    person: Person,
    watches: WatchRepository,
    audit: AuditLog,
) -> None:
    query = (command.args or "").strip()
    if not query:
        await message.answer(texts.USAGE_WATCH)
        return
    try:
        watch = await watches.add(person.id, query)
    except QueryError as exc:
        await message.answer(_query_error(query, exc) + "\n\n" + texts.USAGE_WATCH)
        return
    except (WatchLimitError, ValueError) as exc:
        await message.answer(texts.error_line(str(exc)))
        return
    await audit.record(person.id, "watch.add", f"watch {watch.id}", watch.canonical)
    await message.answer(texts.watch_added(watch.id, watch.canonical, watch.priority))


async def _page(
    watches: WatchRepository, shared: SharedWatchRepository, owner_id: int, page: int
) -> tuple[str, InlineKeyboardMarkup | None]:
    mine = await watches.list_for(owner_id)
    if not mine:
        return texts.NO_WATCHES, None
    pages = (len(mine) + PAGE_SIZE - 1) // PAGE_SIZE
    page = min(max(page, 0), pages - 1)
    shown = mine[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
    names = {
        s.id: s.name
        for s in await shared.get_many(sorted({w.shared for w in shown if w.shared is not None}))
    }
    lines = [texts.watches_header(len(mine), page, pages)]
    lines += [
        texts.watch_line(
            w.id,
            w.canonical,
            w.priority,
            w.paused,
            None if w.shared is None else texts.shared_label(w.shared, names.get(w.shared, "")),
        )
        for w in shown
    ]
    linked = frozenset(w.id for w in shown if w.shared is not None)
    keyboard = watches_keyboard([(w.id, w.paused) for w in shown], page, pages, linked)
    return "\n".join(lines), keyboard


async def cmd_watches(
    message: Message, person: Person, watches: WatchRepository, shared: SharedWatchRepository
) -> None:
    text, keyboard = await _page(watches, shared, person.id, 0)
    await message.answer(text, reply_markup=keyboard)


async def _remove(
    watches: WatchRepository, audit: AuditLog, person: Person, watch_id: int
) -> Watch | None:
    """Delete one of the analyst's watches (for a linked watch: end the subscription)."""
    watch = await watches.get(watch_id)
    if watch is None or not await watches.remove(watch_id, person.id):
        return None
    if watch.shared is None:
        await audit.record(person.id, "watch.remove", f"watch {watch_id}")
    else:
        await audit.record(
            person.id, "shared.unsubscribe", f"shared {watch.shared}", f"watch {watch_id}"
        )
    return watch


def _watch_id(text: str) -> int | None:
    raw = text.strip().lstrip("#wW")
    return int(raw) if raw.isdigit() and len(raw) < 12 else None


async def cmd_unwatch(
    message: Message,
    command: CommandObject,
    person: Person,
    watches: WatchRepository,
    audit: AuditLog,
) -> None:
    args = (command.args or "").strip()
    watch_id = _watch_id(args) if args else None
    if watch_id is None:
        shown = f"{texts.error_line(f'{args[:40]!r} is not a watch number')}\n" if args else ""
        await message.answer(shown + texts.USAGE_UNWATCH)
        return
    removed = await _remove(watches, audit, person, watch_id)
    if removed is None:
        await message.answer(texts.watch_not_found(watch_id))
    elif removed.shared is not None:
        await message.answer(texts.shared_watch_removed(watch_id, removed.shared))
    else:
        await message.answer(texts.watch_removed(watch_id))


async def on_watch_button(
    query: CallbackQuery,
    callback_data: WatchCB,
    person: Person,
    watches: WatchRepository,
    shared: SharedWatchRepository,
    audit: AuditLog,
) -> None:
    action, watch_id, page = callback_data.action, callback_data.watch_id, callback_data.page
    note: str | None = None
    if action in (WatchAction.PRIORITY, WatchAction.SET_PRIORITY):
        watch = await watches.get(watch_id)
        if watch is None or watch.owner_id != person.id:
            await query.answer(texts.BUTTON_EXPIRED)
            return
        if watch.shared is not None:
            await query.answer(texts.SHARED_PRIORITY_FIXED, show_alert=True)
            return
        if action is WatchAction.PRIORITY:
            if isinstance(query.message, Message):
                await query.message.edit_text(
                    texts.choose_priority(watch_id),
                    reply_markup=priority_keyboard(watch_id, watch.priority, page),
                )
            await query.answer()
            return
    ok = True
    if action in (WatchAction.PAUSE, WatchAction.RESUME):
        paused = action is WatchAction.PAUSE
        ok = await watches.set_paused(watch_id, person.id, paused)
        if ok:
            await audit.record(
                person.id, "watch.pause" if paused else "watch.resume", f"watch {watch_id}"
            )
            note = "Paused" if paused else "Resumed"
    elif action is WatchAction.DELETE:
        removed = await _remove(watches, audit, person, watch_id)
        ok = removed is not None
        note = "Unsubscribed" if removed is not None and removed.shared is not None else "Deleted"
    elif action is WatchAction.SET_PRIORITY:
        try:
            ok = await watches.set_priority(watch_id, person.id, callback_data.priority)
        except ValueError:
            ok = False
        if ok:
            await audit.record(
                person.id, "watch.priority", f"watch {watch_id}", callback_data.priority
            )
            note = f"Priority {callback_data.priority}"
    if not ok:
        await query.answer(texts.BUTTON_EXPIRED)
        return
    text, keyboard = await _page(watches, shared, person.id, page)
    if isinstance(query.message, Message):
        try:
            await query.message.edit_text(text, reply_markup=keyboard)
        except TelegramBadRequest as exc:  # "message is not modified" on a double tap
            log.debug("watches: edit refused: %s", exc)
    await query.answer(note)


# --- /test ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TestOutcome:
    scanned: int
    matched: int
    examples: tuple[tuple[Post, tuple[tuple[int, int], ...]], ...]


async def archived_posts(redis: aioredis.Redis, since: float, limit: int) -> list[Post]:
    """Archived posts dated after `since`, newest first per channel, at most `limit`."""
    return await ArchiveRepository(redis).recent(since, limit)


def evaluate(engine: TriageEngine, posts: list[Post], examples: int) -> TestOutcome:
    matched = 0
    found: list[tuple[Post, tuple[tuple[int, int], ...]]] = []
    for post in posts:
        if post.event == "delete" or not post.text:
            continue
        result = engine.triage(post)
        if result.matches:
            matched += 1
            if len(found) < examples:
                found.append((post, result.matches[0].spans))
    return TestOutcome(len(posts), matched, tuple(found))


def snippet(text: str, spans: tuple[tuple[int, int], ...]) -> str:
    """HTML: the text around the first match, matches in bold, escaped."""
    text = clean_text(text)
    merged = normalise_spans(spans, len(text))
    if not merged:
        return escape(text[: SNIPPET_CONTEXT * 2]) + (
            "…" if len(text) > SNIPPET_CONTEXT * 2 else ""
        )
    start = max(0, merged[0][0] - SNIPPET_CONTEXT)
    end = min(len(text), merged[0][1] + SNIPPET_CONTEXT)
    out = ["…" if start > 0 else ""]
    pos = start
    for a, b in merged:
        if a >= end:
            break
        b = min(b, end)
        out.append(escape(text[pos:a]))
        out.append(f"<b>{escape(text[a:b])}</b>")
        pos = b
    out.append(escape(text[pos:end]))
    out.append("…" if end < len(text) else "")
    return "".join(out)


async def cmd_test(
    message: Message,
    command: CommandObject,
    person: Person,
    redis: aioredis.Redis,
    detector: Callable[[], LanguageDetector],
) -> None:
    query = (command.args or "").strip()
    if not query:
        await message.answer(texts.USAGE_TEST)
        return
    try:
        canonical = str(parse_query(query))
        engine = TriageEngine(await asyncio.to_thread(detector))
        engine.add_watch(WatchSpec(0, person.id, query))
    except QueryError as exc:
        await message.answer(_query_error(query, exc) + "\n\n" + texts.USAGE_TEST)
        return
    posts = await archived_posts(redis, time.time() - TEST_DAYS * 86400, TEST_MAX_POSTS)
    outcome = await asyncio.to_thread(evaluate, engine, posts, TEST_EXAMPLES)
    examples = [
        texts.test_example(
            p.title or (f"@{p.username}" if p.username else "post"),
            post_link(p),
            snippet(p.text, spans),
        )
        for p, spans in outcome.examples
    ]
    await message.answer(
        texts.test_result(canonical, TEST_DAYS, outcome.scanned, outcome.matched, examples)
    )


def build_watches_router() -> Router:
    router = Router(name="watches")
    router.message.register(cmd_watch, Command("watch"))
    router.message.register(cmd_watches, Command("watches"))
    router.message.register(cmd_unwatch, Command("unwatch"))
    router.message.register(cmd_test, Command("test"))
    router.callback_query.register(on_watch_button, WatchCB.filter())
    return router
