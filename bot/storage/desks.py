"""Desks: team groups and channels the bot was added to, and the watches routed to them.

A desk is a Telegram group, supergroup or channel (a negative chat id) the bot is a member of;
`seen` records it from the my_chat_member update Telegram sends when the bot is added, `pause`
when it is removed (or a send is refused with 403, "bot was kicked").

A route is a watch owned by the desk's chat: routing shared watch S3 subscribes the chat to it
(`SharedWatchRepository.subscribe`, so the route follows the shared watch's priority and goes
with it), routing an analyst's own watch #12 gives the chat a watch with #12's query and
priority. Triage fans alerts out to the chat like to any watch's owner, and delivery sends
them to the chat; nothing else needed a new path. A paused desk's routes are paused watches (the
change feed takes them out of every triage index at once) and their owners are told through the
notices; the bot added back resumes them. A basic group upgraded to a supergroup (a new chat
id) takes its routes along (`migrate`), and alerts queued for the old id find the new route
(`retarget`).

A route of an analyst's own watch follows that watch: a new priority or query (`follow`),
its removal (`drop_copies`; a removal that did not say so, `vigil watch remove`, is found by
`routes` and `recipient`). A route is *held* (paused, whatever the desk's state, and its owner
told) when its owner leaves the group or loses access (`hold`); back in the group, or routing
it again once an analyst again, resumes it (`release`).

Keys (`keys.desk`, `keys.desk_routes`, `keys.desk_owned`, `keys.DESKS_ALL`): one record and
one routes hash per desk (the desk's own hash tag), one set of routes per owner. Routes are
bounded by the per-owner watch limit of the desk's chat; desks by the chats the bot is in.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, replace
from typing import Any, Literal

import redis.asyncio as aioredis

from bot import texts
from bot.alerts import Notice
from bot.storage import keys
from bot.storage.notices import NoticeBox
from bot.storage.shared import (
    AlreadySubscribedError,
    SharedWatchGoneError,
    SharedWatchRepository,
)
from bot.storage.streams import DEFAULT_MAXLEN
from bot.storage.users import Person, UserRepository
from bot.storage.watches import Watch, WatchRepository

DeskKind = Literal["group", "supergroup", "channel"]
HELD_LEFT = "left"  # the route's owner left the group (or was removed)
HELD_REVOKED = "revoked"  # the route's owner's access was revoked

# A route's record replaced only if it is still what the caller read.
_SWAP = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
    redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
    return 1
end
return 0
"""
KINDS: frozenset[str] = frozenset({"group", "supergroup", "channel"})


class RouteError(ValueError):
    """A route that cannot be made or removed; the message says why (shown to the person)."""


@dataclass(frozen=True, slots=True)
class Desk:
    chat_id: int
    title: str
    kind: str
    active: bool
    added_by: int
    updated_at: float

    @property
    def label(self) -> str:
        return self.title or str(self.chat_id)


@dataclass(frozen=True, slots=True)
class Route:
    chat_id: int
    watch_id: int  # the desk's own watch
    source: str  # "S3" (a shared watch) or "#12" (an analyst's watch)
    owner: int  # who is told about the route: the admin or analyst who made it
    created_at: float
    # Why the route itself is paused, whatever the desk's state: "left" (its owner left the
    # group), "revoked" (its owner's access was revoked); "" if it is not.
    held: str = ""

    @property
    def own(self) -> bool:
        """An analyst's own watch routed (its source is "#12"), not a shared watch."""
        return self.source.startswith("#")

    @property
    def source_id(self) -> int:
        return int(self.source[1:])

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "source": self.source,
            "owner": self.owner,
            "at": round(self.created_at, 3),
        }
        if self.held:
            data["held"] = self.held
        return json.dumps(data)

    @classmethod
    def from_json(cls, chat_id: int, watch_id: int, raw: str) -> Route:
        data = json.loads(raw)
        return cls(
            chat_id,
            watch_id,
            str(data["source"]),
            int(data["owner"]),
            float(data.get("at", 0)),
            str(data.get("held", "")),
        )


class DeskRepository:
    def __init__(
        self,
        redis: aioredis.Redis,
        watches: WatchRepository,
        users: UserRepository | None = None,
        *,
        maxlen: int = DEFAULT_MAXLEN,
    ) -> None:
        self._redis = redis
        self._watches = watches
        self._users = users or UserRepository(redis)
        self._shared = SharedWatchRepository(redis, watches)
        self._notices = NoticeBox(redis, maxlen=maxlen)
        self._cas: Any = redis.register_script(_SWAP)

    # --- desks -------------------------------------------------------------------------------
    async def get(self, chat_id: int) -> Desk | None:
        data: Any = await self._redis.hgetall(keys.desk(chat_id))
        if not data:
            return None
        return Desk(
            chat_id=chat_id,
            title=data.get("title", ""),
            kind=data.get("kind", "group"),
            active=data.get("state") == "active",
            added_by=int(data.get("added_by", "0")),
            updated_at=float(data.get("updated_at", "0")),
        )

    async def all(self) -> list[Desk]:
        ids: Any = await self._redis.smembers(keys.DESKS_ALL)
        found = [await self.get(int(i)) for i in sorted(ids, key=int)]
        return [d for d in found if d is not None]

    async def seen(self, chat_id: int, title: str, kind: str, added_by: int) -> list[Route]:
        """The bot is a member of this chat (added, or promoted). Its paused routes resume;
        returns them."""
        if chat_id >= 0 or kind not in KINDS:
            raise RouteError("only groups, supergroups and channels can be desks")
        was = await self.get(chat_id)
        resumed: list[Route] = []
        if was is not None and not was.active:
            # A route held for its owner (who left the group, or lost access) stays paused.
            resumed = [r for r in await self.routes(chat_id) if not r.held]
            for route in resumed:
                await self._watches.set_paused(route.watch_id, chat_id, False)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(
                keys.desk(chat_id),
                mapping={
                    "title": " ".join(title.split())[:128],
                    "kind": kind,
                    "state": "active",
                    "added_by": str(added_by),
                    "updated_at": f"{time.time():.3f}",
                },
            )
            pipe.sadd(keys.DESKS_ALL, str(chat_id))
            await pipe.execute()
        return resumed

    async def pause(self, chat_id: int, *, tell: bool = True) -> list[Route]:
        """The bot was removed from the chat (or Telegram refused a send with 403): its routes
        are paused and, once per removal, their owners told. Returns the routes paused."""
        desk = await self.get(chat_id)
        if desk is None or not desk.active:
            return []
        await self._redis.hset(
            keys.desk(chat_id), mapping={"state": "removed", "updated_at": f"{time.time():.3f}"}
        )
        routes = await self.routes(chat_id)
        for route in routes:
            await self._watches.set_paused(route.watch_id, chat_id, True)
        if tell and routes:
            by_owner: dict[int, list[str]] = {}
            for route in routes:
                by_owner.setdefault(route.owner, []).append(route.source)
            await self._notices.send(
                *(
                    Notice(owner, texts.desk_paused(desk.label, sources), html=True)
                    for owner, sources in sorted(by_owner.items())
                )
            )
        return routes

    async def migrate(self, old_id: int, new_id: int, title: str = "") -> list[Route]:
        """A basic group was upgraded to a supergroup (a new chat id): its routes move there,
        each a watch of the new chat (a shared watch's subscription moves with it). Seen from
        either of the two service messages; the second finds nothing left to move."""
        desk = await self.get(old_id)
        if desk is None or new_id >= 0:
            return []
        # Both service messages may be handled at once: one claim, one move.
        if not await self._redis.hsetnx(keys.desk(old_id), "migrated_to", str(new_id)):
            return []
        await self.seen(new_id, title or desk.title, "supergroup", desk.added_by)
        moved: list[Route] = []
        for route in await self.routes(old_id):
            watch: Watch | None = None
            if route.source.startswith("S"):
                shared_id = int(route.source[1:])
                await self._shared.unsubscribe(shared_id, old_id)
                try:
                    watch = await self._shared.subscribe(shared_id, new_id)
                except (AlreadySubscribedError, SharedWatchGoneError):
                    watch = None
            else:
                old = await self._watches.get(route.watch_id)
                if old is not None:
                    watch = await self._watches.add(new_id, old.query, old.priority)
                await self._watches.remove(route.watch_id, old_id)
            if watch is not None and route.held:
                await self._watches.set_paused(watch.id, new_id, True)
            async with self._redis.pipeline(transaction=False) as pipe:
                if watch is not None:  # alerts queued for the old route find the new one
                    pipe.hset(keys.desk(old_id), f"moved:{route.watch_id}", str(watch.id))
                pipe.hdel(keys.desk_routes(old_id), str(route.watch_id))
                pipe.srem(keys.desk_owned(route.owner), f"{old_id}:{route.watch_id}")
                await pipe.execute()
            if watch is not None:
                moved.append(
                    await self._record(new_id, watch, route.source, route.owner, route.held)
                )
        await self._redis.hset(
            keys.desk(old_id), mapping={"state": "migrated", "updated_at": f"{time.time():.3f}"}
        )
        return moved

    async def retarget(
        self, old_id: int, watch_id: int, *, wait_s: float = 5.0
    ) -> tuple[int, int] | None:
        """Where an alert queued for `old_id`'s route of `watch_id` goes now that the group
        was upgraded: (the supergroup's id, its route's watch id; the same id if that route
        did not move). None if the chat was not migrated. Waits (up to `wait_s`) for a move
        still under way in another process."""
        deadline = time.monotonic() + wait_s
        while True:
            data: Any = await self._redis.hgetall(keys.desk(old_id))
            if not data.get("migrated_to"):
                return None
            moved = data.get(f"moved:{watch_id}")
            if moved or data.get("state") == "migrated" or time.monotonic() >= deadline:
                return int(data["migrated_to"]), int(moved or watch_id)
            await asyncio.sleep(0.05)

    async def recipient(self, chat_id: int, watch_id: int = 0) -> Person | None:
        """The desk as delivery sees a recipient: None unless the bot is still in the chat
        and, for an alert of the desk's watch `watch_id`, its route is not held and the
        person who routed it is still an analyst (a revoked analyst's routes are held here if
        that was missed) and, for their own watch, still has it. No quiet hours, no
        threshold: the team reads it; the chat's zone is UTC."""
        desk = await self.get(chat_id)
        if desk is None or not desk.active:
            return None
        if watch_id:
            raw: Any = await self._redis.hget(keys.desk_routes(chat_id), str(watch_id))
            if raw:
                route = Route.from_json(chat_id, watch_id, raw)
                if route.held:
                    return None
                owner = await self._users.get(route.owner)
                if owner is None or not owner.is_analyst:
                    await self.hold(route.owner, HELD_REVOKED)
                    return None
                if route.own and not await self._source_alive(route):
                    await self.unroute(chat_id, watch_id)
                    return None
        return Person(id=chat_id, role="analyst", name=desk.label, threshold="low")

    # --- routes ------------------------------------------------------------------------------
    async def routes(self, chat_id: int) -> list[Route]:
        """The desk's routes. One whose watch is gone (its shared watch was removed) is
        dropped here, so none dangles."""
        raw: Any = await self._redis.hgetall(keys.desk_routes(chat_id))
        found = sorted(
            (Route.from_json(chat_id, int(w), v) for w, v in raw.items()),
            key=lambda r: r.watch_id,
        )
        alive = {w.id for w in await self._watches.get_many([r.watch_id for r in found])}
        # A route of an analyst's own watch goes with that watch, however it was removed
        # (/unwatch, the 🗑 button, `vigil watch remove`).
        sources = {
            w.id: w.owner_id
            for w in await self._watches.get_many([r.source_id for r in found if r.own])
        }
        orphans = [
            r
            for r in found
            if r.watch_id in alive and r.own and sources.get(r.source_id) != r.owner
        ]
        for route in orphans:
            await self.unroute(chat_id, route.watch_id)
        await self._drop_records([r for r in found if r.watch_id not in alive])
        dropped = {r.watch_id for r in orphans}
        return [r for r in found if r.watch_id in alive and r.watch_id not in dropped]

    async def routes_of(self, owner: int) -> list[Route]:
        """Routes `owner` made, over every desk."""
        members: Any = await self._redis.smembers(keys.desk_owned(owner))
        chats = sorted({int(str(m).partition(":")[0]) for m in members})
        return [r for c in chats for r in await self.routes(c) if r.owner == owner]

    async def route_shared(self, shared_id: int, chat_id: int, owner: int) -> Route:
        """Route shared watch `shared_id` to the desk. Raises RouteError."""
        await self._active(chat_id)
        try:
            watch = await self._shared.subscribe(shared_id, chat_id)
        except AlreadySubscribedError as exc:
            source = f"S{shared_id}"
            existing = next((r for r in await self.routes(chat_id) if r.source == source), None)
            if existing is not None and existing.held and await self._unhold(existing):
                return existing  # its admin's access was given back and it is routed again
            raise RouteError(f"{source} already goes to this chat") from exc
        except SharedWatchGoneError as exc:
            raise RouteError(f"shared watch S{shared_id} does not exist") from exc
        return await self._record(chat_id, watch, f"S{shared_id}", owner)

    async def route_own(self, watch: Watch, chat_id: int, owner: int) -> Route:
        """Route an analyst's own watch to the desk (the desk gets a watch with its query and
        priority). Raises RouteError."""
        await self._active(chat_id)
        source = f"#{watch.id}"
        existing = next((r for r in await self.routes(chat_id) if r.source == source), None)
        if existing is not None:
            # Routed again by its owner, in the group and an analyst again: it resumes.
            if existing.held and await self._unhold(existing):
                return existing
            raise RouteError(f"{source} already goes to this chat")
        desk_watch = await self._watches.add(chat_id, watch.query, watch.priority)
        return await self._record(chat_id, desk_watch, source, owner)

    async def unroute(self, chat_id: int, watch_id: int) -> Route | None:
        """Remove a route (its desk watch); the route, or None if there was none."""
        raw: Any = await self._redis.hget(keys.desk_routes(chat_id), str(watch_id))
        if not raw:
            return None
        route = Route.from_json(chat_id, watch_id, raw)
        if not route.own:
            await self._shared.unsubscribe(route.source_id, chat_id)
        await self._watches.remove(watch_id, chat_id)
        await self._drop_records([route])
        return route

    async def copies(self, watch_id: int, owner: int) -> list[Route]:
        """The routes of analyst `owner`'s own watch #`watch_id`, over every desk."""
        return [r for r in await self.routes_of(owner) if r.own and r.source_id == watch_id]

    async def follow(self, watch: Watch) -> list[Route]:
        """The analyst's own watch changed (query, priority): each desk's copy follows."""
        copies = await self.copies(watch.id, watch.owner_id)
        for route in copies:
            await self._watches.mirror(route.watch_id, route.chat_id, watch.query, watch.priority)
        return copies

    async def drop_copies(self, watch_id: int, owner: int) -> list[Route]:
        """The analyst's own watch was removed: its routes go with it."""
        copies = await self.copies(watch_id, owner)
        for route in copies:
            await self.unroute(route.chat_id, route.watch_id)
        return copies

    async def hold(self, owner: int, why: str, chat_id: int | None = None) -> list[Route]:
        """Pause `owner`'s routes for a reason of their own, whatever the desk's state:
        HELD_LEFT (they left group `chat_id`: their own watches' routes there; an admin's
        shared watch routes do not need them in it), HELD_REVOKED (their access was
        revoked: every route they made). Once per route (a compare-and-set of its record, as
        a service message and a chat_member update may be handled at once); the owner is
        told, through the notices, of the routes this paused. Returns them."""
        candidates = (
            [r for r in await self.routes(chat_id) if r.owner == owner and r.own]
            if chat_id is not None
            else await self.routes_of(owner)
        )
        held: list[Route] = []
        for route in candidates:
            if route.held:
                continue
            if await self._swap(route, why):
                await self._watches.set_paused(route.watch_id, route.chat_id, True)
                held.append(route)
        if held:
            by_desk: dict[int, list[str]] = {}
            for route in held:
                by_desk.setdefault(route.chat_id, []).append(route.source)
            notices = []
            for desk_id, sources in sorted(by_desk.items()):
                desk = await self.get(desk_id)
                label = desk.label if desk else str(desk_id)
                notices.append(Notice(owner, texts.route_held(label, sources, why), html=True))
            await self._notices.send(*notices)
        return held

    async def release(self, owner: int, why: str, chat_id: int | None = None) -> list[Route]:
        """Resume `owner`'s routes held for `why` (back in group `chat_id`, or their access
        given back); those of a desk the bot is not in stay paused until it is added back.
        Returns the routes released."""
        candidates = (
            [r for r in await self.routes(chat_id) if r.owner == owner]
            if chat_id is not None
            else await self.routes_of(owner)
        )
        return [r for r in candidates if r.held == why and await self._unhold(r)]

    async def _unhold(self, route: Route) -> bool:
        if not await self._swap(route, ""):
            return False
        desk = await self.get(route.chat_id)
        if desk is not None and desk.active:
            await self._watches.set_paused(route.watch_id, route.chat_id, False)
        return True

    async def forget(self, chat_id: int, watch_id: int) -> Route | None:
        """The route of desk watch `watch_id` whose watch was removed elsewhere (its shared
        watch removed): its record goes; the route, to tell its owner, or None."""
        raw: Any = await self._redis.hget(keys.desk_routes(chat_id), str(watch_id))
        if not raw:
            return None
        route = Route.from_json(chat_id, watch_id, raw)
        await self._drop_records([route])
        return route

    async def _drop_records(self, routes: list[Route]) -> None:
        """Forget routes' records: the desk's routes hash and their owners' sets."""
        if not routes:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for route in routes:
                pipe.hdel(keys.desk_routes(route.chat_id), str(route.watch_id))
                pipe.srem(keys.desk_owned(route.owner), f"{route.chat_id}:{route.watch_id}")
            await pipe.execute()

    async def _source_alive(self, route: Route) -> bool:
        source = await self._watches.get(route.source_id)
        return source is not None and source.owner_id == route.owner

    async def _swap(self, route: Route, held: str) -> bool:
        """Set the route's `held` if it is not that already and the record did not change
        between our read and our write (one winner among concurrent callers)."""
        raw: Any = await self._redis.hget(keys.desk_routes(route.chat_id), str(route.watch_id))
        if not raw:
            return False
        current = Route.from_json(route.chat_id, route.watch_id, raw)
        if current.held == held:
            return False
        done: Any = await self._cas(
            keys=[keys.desk_routes(route.chat_id)],
            args=[str(route.watch_id), raw, replace(current, held=held).to_json()],
        )
        return bool(done)

    async def _active(self, chat_id: int) -> Desk:
        desk = await self.get(chat_id)
        if desk is None or not desk.active:
            raise RouteError(texts.DESK_NOT_MEMBER)
        return desk

    async def _record(
        self, chat_id: int, watch: Watch, source: str, owner: int, held: str = ""
    ) -> Route:
        route = Route(chat_id, watch.id, source, owner, time.time(), held)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(keys.desk_routes(chat_id), str(watch.id), route.to_json())
            pipe.sadd(keys.desk_owned(owner), f"{chat_id}:{watch.id}")
            await pipe.execute()
        return route
