"""Watches: /watch, /watches (paged, with buttons), /unwatch; the archive: /test, /search.

/test and /search are asked of the triage role through the search request stream
(`bot/storage/requests.py`; the triage role's `bot/search.py` parses the query and matches the
archive window newest first with the same engine triage uses): the bot process never loads the
language model or the dictionaries. Per analyst, one search at a time and `SearchLimits`
searches a minute. Results are kept here (`ArchiveRuns`) and paged with ◀ ▶ (see `ArchiveCB`
for what rides in the callback data); a page whose result is not here is asked again, for
the same snapshot."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from html import escape
from typing import Any

from aiogram import BaseMiddleware, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, TelegramObject

from bot import texts
from bot.callback_data import ArchiveCB, ArchiveKind, WatchAction, WatchCB, query_tag
from bot.delivery.render import clean_text, normalise_spans, post_link
from bot.fit import GRAPHEME_BACKOFF, fit_html, splits_grapheme
from bot.keyboards import archive_keyboard, priority_keyboard, watches_keyboard
from bot.models import Post
from bot.storage.archive import ArchiveRepository
from bot.storage.audit import AuditLog
from bot.storage.desks import DeskRepository
from bot.storage.requests import (
    Admission,
    Hit,
    SearchLimits,
    SearchRequest,
    SearchRequests,
    SearchResult,
)
from bot.storage.shared import SharedWatchRepository
from bot.storage.users import Person
from bot.storage.watches import Watch, WatchLimitError, WatchRepository
from bot.triage.query import QueryError

log = logging.getLogger(__name__)

PAGE_SIZE = 6
SNIPPET_CONTEXT = 80
TEST_PAGE = 3  # examples per /test page
SEARCH_PAGE = 5  # posts per /search page
ARCHIVE_MAX_POSTS = 100_000  # posts one search reads at most (newest first); the reply says so
RUNS_KEPT = 64  # searches kept in memory for paging
RUN_TTL_S = 3600.0
RUN_MAX_AGE_S = 7 * 86400  # a result older than this is not searched again for a page


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
    return fit_html("\n".join(lines)), keyboard


async def cmd_watches(
    message: Message, person: Person, watches: WatchRepository, shared: SharedWatchRepository
) -> None:
    text, keyboard = await _page(watches, shared, person.id, 0)
    await message.answer(text, reply_markup=keyboard)


async def _remove(
    watches: WatchRepository,
    desks: DeskRepository,
    audit: AuditLog,
    person: Person,
    watch_id: int,
) -> Watch | None:
    """Delete one of the analyst's watches (for a linked watch: end the subscription); its
    routes to desks go with it."""
    watch = await watches.get(watch_id)
    if watch is None or not await watches.remove(watch_id, person.id):
        return None
    for route in await desks.drop_copies(watch_id, person.id):
        await audit.record(person.id, "desk.unroute", str(route.chat_id), route.source)
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
    desks: DeskRepository,
    audit: AuditLog,
) -> None:
    args = (command.args or "").strip()
    watch_id = _watch_id(args) if args else None
    if watch_id is None:
        shown = f"{texts.error_line(f'{args[:40]!r} is not a watch number')}\n" if args else ""
        await message.answer(shown + texts.USAGE_UNWATCH)
        return
    removed = await _remove(watches, desks, audit, person, watch_id)
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
    desks: DeskRepository,
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
        removed = await _remove(watches, desks, audit, person, watch_id)
        ok = removed is not None
        note = "Unsubscribed" if removed is not None and removed.shared is not None else "Deleted"
    elif action is WatchAction.SET_PRIORITY:
        try:
            ok = await watches.set_priority(watch_id, person.id, callback_data.priority)
        except ValueError:
            ok = False
        changed = await watches.get(watch_id) if ok else None
        if changed is not None:  # its routes to desks keep the same watch
            await desks.follow(changed)
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
            if "not modified" not in exc.message:
                raise
    await query.answer(note)


# --- /test and /search ---------------------------------------------------------------------
def snippet(text: str, spans: tuple[tuple[int, int], ...], context: int = SNIPPET_CONTEXT) -> str:
    """HTML: the text around the first match (about `context` characters each side, cut at a
    word where one is near), matches in bold, escaped."""
    text = clean_text(text)
    merged = normalise_spans(spans, len(text))
    if not merged:
        return fit_html(escape(text[: context * 3], quote=False), context * 2)
    start = max(0, merged[0][0] - context)
    end = min(len(text), merged[0][1] + context)
    # Widen to whole words, then keep a grapheme (marks, joiners, flags) together.
    if start > 0:
        space = text.rfind(" ", max(0, start - 20), merged[0][0])
        start = space + 1 if space >= 0 else start
    if end < len(text):
        space = text.find(" ", end, min(len(text), end + 20))
        end = space if space >= 0 else end
    for _ in range(GRAPHEME_BACKOFF):  # bounded: a run of flags is one long "grapheme"
        if 0 < start < len(text) and splits_grapheme(text[start - 1], text[start]):
            start -= 1
        if 0 < end < len(text) and splits_grapheme(text[end - 1], text[end]):
            end += 1
    first_end = min(end, merged[0][1])
    if first_end - merged[0][0] > context * 2:  # a long regex match: show its start only
        end = merged[0][0] + context * 2
    out = [texts.ELLIPSIS if start > 0 else ""]
    pos = start
    for a, b in merged:
        if a >= end:
            break
        b = min(b, end)
        out.append(escape(text[pos:a], quote=False))
        out.append(f"<b>{escape(text[a:b], quote=False)}</b>")
        pos = b
    out.append(escape(text[pos:end], quote=False))
    out.append(texts.ELLIPSIS if end < len(text) else "")
    # Measured in characters so far; Telegram counts UTF-16 units (a flag is four): cut to
    # the units a snippet may take.
    return fit_html("".join(out).replace("\n", " "), context * 6)


@dataclass(slots=True)
class ArchiveRun:
    """One /test or /search: what matched in the archive at `at`, newest first."""

    kind: ArchiveKind
    owner_id: int
    canonical: str
    at: int
    scanned: int = 0
    matched: int = 0
    capped: bool = False
    hits: list[Hit] = field(default_factory=list)
    made: float = field(default_factory=time.monotonic)

    @property
    def tag(self) -> str:
        return query_tag(self.canonical)


class ArchiveRuns:
    """The last searches in this process, so paging does not search again. A page whose
    search is not here (a restart, another bot process) is searched again from the same
    snapshot, so it shows the same posts."""

    def __init__(self, size: int = RUNS_KEPT, ttl_s: float = RUN_TTL_S) -> None:
        self._runs: OrderedDict[tuple[int, str, str, int], ArchiveRun] = OrderedDict()
        self._size = size
        self._ttl_s = ttl_s

    def get(self, owner_id: int, kind: ArchiveKind, tag: str, at: int) -> ArchiveRun | None:
        key = (owner_id, kind.value, tag, at)
        run = self._runs.get(key)
        if run is None or time.monotonic() - run.made > self._ttl_s:
            self._runs.pop(key, None)
            return None
        self._runs.move_to_end(key)
        return run

    def put(self, run: ArchiveRun) -> None:
        self._runs[(run.owner_id, run.kind.value, run.tag, run.at)] = run
        self._runs.move_to_end((run.owner_id, run.kind.value, run.tag, run.at))
        while len(self._runs) > self._size:
            self._runs.popitem(last=False)


async def ask_triage(
    searches: SearchRequests,
    limits: SearchLimits,
    owner_id: int,
    kind: ArchiveKind,
    query: str,
    at: int,
) -> SearchResult | str:
    """The triage role's answer to this search, or the line to tell the analyst instead:
    their previous search still running, their searches in the window used up, no triage
    worker running, or no answer within `limits.timeout_s`."""
    admitted = await searches.admit(
        owner_id,
        per_window=limits.per_window,
        window_s=limits.window_s,
        busy_s=limits.timeout_s + 5,
    )
    if admitted.verdict is Admission.BUSY:
        return texts.ARCHIVE_BUSY
    if admitted.verdict is Admission.RATE:
        return texts.search_rate_limited(admitted.retry_s)
    try:
        if await searches.workers() == 0:
            return texts.SEARCH_NO_TRIAGE
        request = SearchRequest.new(
            kind.value,
            owner_id,
            query,
            at,
            wait_s=limits.timeout_s,
            max_posts=ARCHIVE_MAX_POSTS,
        )
        await searches.submit(request)
        result = await searches.wait(request.id, limits.timeout_s)
    finally:
        await searches.release(owner_id, admitted.token)
    return texts.SEARCH_TIMEOUT if result is None else result


def _run_of(kind: ArchiveKind, owner_id: int, at: int, result: SearchResult) -> ArchiveRun:
    return ArchiveRun(
        kind,
        owner_id,
        result.canonical,
        at,
        scanned=result.scanned,
        matched=result.matched,
        capped=result.capped,
        hits=result.hits,
    )


def _label(post: Post) -> str:
    title = clean_text(post.title or "") or (f"@{post.username}" if post.username else "post")
    return title[:64]


async def _archive_page(
    run: ArchiveRun, page: int, archive: ArchiveRepository, person: Person
) -> tuple[str, InlineKeyboardMarkup | None]:
    size = TEST_PAGE if run.kind is ArchiveKind.TEST else SEARCH_PAGE
    pages = max(1, (len(run.hits) + size - 1) // size)
    page = min(max(page, 0), pages - 1)
    shown = run.hits[page * size : (page + 1) * size]
    posts = await archive.get_many([key for key, _spans in shown])
    items = []
    for key, spans in shown:
        post = posts.get(key)
        if post is None:
            continue  # expired since the search
        when = post.date.astimezone(person.zone).strftime("%d %b %Y %H:%M")
        items.append(
            texts.test_example(
                _label(post),
                post_link(post),
                snippet(post.text, spans),
                when,
                deleted=post.event == "delete",
            )
        )
    days = max(1, round(archive.ttl_s / 86400))
    build = texts.test_result if run.kind is ArchiveKind.TEST else texts.search_result
    text = build(
        run.canonical,
        days,
        run.scanned,
        run.matched,
        items,
        page=page,
        pages=pages,
        capped=run.capped,
    )
    keyboard = archive_keyboard(run.kind, page, pages, run.at, run.tag)
    return fit_html(text), keyboard


async def cmd_archive(
    message: Message,
    command: CommandObject,
    person: Person,
    searches: SearchRequests,
    search_limits: SearchLimits,
    archive_runs: ArchiveRuns,
    archive: ArchiveRepository,
) -> None:
    """/test QUERY (what a query would have matched) and /search QUERY (matching archived
    posts, newest first): the same search, shown two ways, asked of the triage role."""
    kind = ArchiveKind.TEST if command.command == "test" else ArchiveKind.SEARCH
    usage = texts.USAGE_TEST if kind is ArchiveKind.TEST else texts.USAGE_SEARCH
    query = (command.args or "").strip()
    if not query:
        await message.answer(usage)
        return
    at = int(time.time())
    answer = await ask_triage(searches, search_limits, person.id, kind, query, at)
    if isinstance(answer, str):
        await message.answer(answer)
        return
    if answer.problem is not None:
        problem = texts.query_error(query, answer.problem.message, answer.problem.position)
        await message.answer(fit_html(problem + "\n\n" + usage))
        return
    run = _run_of(kind, person.id, at, answer)
    archive_runs.put(run)
    text, keyboard = await _archive_page(run, 0, archive, person)
    await message.answer(text, reply_markup=keyboard)


def query_of(message: Message) -> str | None:
    """The query a result message names: its first <code> entity."""
    text = message.text or ""
    for entity in message.entities or ():
        if entity.type == "code":
            return entity.extract_from(text)
    return None


async def on_archive_page(
    query: CallbackQuery,
    callback_data: ArchiveCB,
    person: Person,
    searches: SearchRequests,
    search_limits: SearchLimits,
    archive_runs: ArchiveRuns,
    archive: ArchiveRepository,
) -> None:
    cb = callback_data
    message = query.message if isinstance(query.message, Message) else None
    run = archive_runs.get(person.id, cb.kind, cb.tag, cb.at)
    answered = False
    if run is None:
        canonical = query_of(message) if message is not None else None
        if (
            canonical is None
            or query_tag(canonical) != cb.tag
            or time.time() - cb.at > RUN_MAX_AGE_S
        ):
            await query.answer(texts.ARCHIVE_EXPIRED, show_alert=True)
            return
        if await searches.workers() == 0:
            await query.answer(texts.SEARCH_NO_TRIAGE, show_alert=True)
            return
        # Searching again can take longer than Telegram waits for the answer: answer first.
        await query.answer(texts.ARCHIVE_SEARCHING)
        answered = True
        answer = await ask_triage(searches, search_limits, person.id, cb.kind, canonical, cb.at)
        if isinstance(answer, SearchResult) and answer.problem is not None:
            # Our own message's query: only if the language changed under it.
            log.warning("archive: the query of a result message no longer parses")
            return
        if isinstance(answer, str):
            if message is not None:
                await message.answer(answer)
            return
        run = _run_of(cb.kind, person.id, cb.at, answer)
        archive_runs.put(run)
    text, keyboard = await _archive_page(run, cb.page, archive, person)
    if message is not None:
        try:
            await message.edit_text(text, reply_markup=keyboard)
        except TelegramBadRequest as exc:  # "message is not modified" on a double tap
            if "not modified" not in exc.message:
                raise
    if not answered:
        await query.answer()


class _Provide(BaseMiddleware):
    """Hands this router's own state to its handlers (made when the router is built)."""

    def __init__(self, **values: object) -> None:
        self._values = values

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        for name, value in self._values.items():
            data.setdefault(name, value)
        return await handler(event, data)


def build_watches_router() -> Router:
    router = Router(name="watches")
    router.message.register(cmd_watch, Command("watch"))
    router.message.register(cmd_watches, Command("watches"))
    router.message.register(cmd_unwatch, Command("unwatch"))
    router.message.register(cmd_archive, Command("test", "search"))
    router.callback_query.register(on_watch_button, WatchCB.filter())
    router.callback_query.register(on_archive_page, ArchiveCB.filter())
    provide = _Provide(archive_runs=ArchiveRuns())
    router.message.middleware(provide)
    router.callback_query.middleware(provide)
    return router
