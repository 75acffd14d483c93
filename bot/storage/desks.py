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
id) takes its routes along (`migrate`).

Keys (`keys.desk`, `keys.desk_routes`, `keys.desk_owned`, `keys.DESKS_ALL`): one record and
one routes hash per desk (the desk's own hash tag), one set of routes per owner. Routes are
bounded by the per-owner watch limit of the desk's chat; desks by the chats the bot is in.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
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

    def to_json(self) -> str:
        return json.dumps(
            {"source": self.source, "owner": self.owner, "at": round(self.created_at, 3)}
        )

    @classmethod
    def from_json(cls, chat_id: int, watch_id: int, raw: str) -> Route:
        data = json.loads(raw)
        return cls(
            chat_id, watch_id, str(data["source"]), int(data["owner"]), float(data.get("at", 0))
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
            resumed = await self.routes(chat_id)
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
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hdel(keys.desk_routes(old_id), str(route.watch_id))
                pipe.srem(keys.desk_owned(route.owner), f"{old_id}:{route.watch_id}")
                await pipe.execute()
            if watch is not None:
                moved.append(await self._record(new_id, watch, route.source, route.owner))
        await self._redis.hset(
            keys.desk(old_id), mapping={"state": "migrated", "updated_at": f"{time.time():.3f}"}
        )
        return moved

    async def recipient(self, chat_id: int, watch_id: int = 0) -> Person | None:
        """The desk as delivery sees a recipient: None unless the bot is still in the chat
        and, for an alert of the desk's watch `watch_id`, the person who routed it is still an
        analyst (a revoked analyst's routes stop). No quiet hours, no threshold: the team reads
        it; the chat's zone is UTC."""
        desk = await self.get(chat_id)
        if desk is None or not desk.active:
            return None
        if watch_id:
            raw: Any = await self._redis.hget(keys.desk_routes(chat_id), str(watch_id))
            if raw:
                owner = await self._users.get(Route.from_json(chat_id, watch_id, raw).owner)
                if owner is None or not owner.is_analyst:
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
        gone = [r for r in found if r.watch_id not in alive]
        if gone:
            async with self._redis.pipeline(transaction=False) as pipe:
                for route in gone:
                    pipe.hdel(keys.desk_routes(chat_id), str(route.watch_id))
                    pipe.srem(keys.desk_owned(route.owner), f"{chat_id}:{route.watch_id}")
                await pipe.execute()
        return [r for r in found if r.watch_id in alive]

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
            raise RouteError(f"S{shared_id} already goes to this chat") from exc
        except SharedWatchGoneError as exc:
            raise RouteError(f"shared watch S{shared_id} does not exist") from exc
        return await self._record(chat_id, watch, f"S{shared_id}", owner)

    async def route_own(self, watch: Watch, chat_id: int, owner: int) -> Route:
        """Route an analyst's own watch to the desk (the desk gets a watch with its query and
        priority). Raises RouteError."""
        await self._active(chat_id)
        source = f"#{watch.id}"
        if any(r.source == source for r in await self.routes(chat_id)):
            raise RouteError(f"{source} already goes to this chat")
        desk_watch = await self._watches.add(chat_id, watch.query, watch.priority)
        return await self._record(chat_id, desk_watch, source, owner)

    async def unroute(self, chat_id: int, watch_id: int) -> Route | None:
        """Remove a route (its desk watch); the route, or None if there was none."""
        raw: Any = await self._redis.hget(keys.desk_routes(chat_id), str(watch_id))
        if not raw:
            return None
        route = Route.from_json(chat_id, watch_id, raw)
        if route.source.startswith("S"):
            await self._shared.unsubscribe(int(route.source[1:]), chat_id)
        await self._watches.remove(watch_id, chat_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hdel(keys.desk_routes(chat_id), str(watch_id))
            pipe.srem(keys.desk_owned(route.owner), f"{chat_id}:{watch_id}")
            await pipe.execute()
        return route

    async def _active(self, chat_id: int) -> Desk:
        desk = await self.get(chat_id)
        if desk is None or not desk.active:
            raise RouteError(texts.DESK_NOT_MEMBER)
        return desk

    async def _record(self, chat_id: int, watch: Watch, source: str, owner: int) -> Route:
        route = Route(chat_id, watch.id, source, owner, time.time())
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hset(keys.desk_routes(chat_id), str(watch.id), route.to_json())
            pipe.sadd(keys.desk_owned(owner), f"{chat_id}:{watch.id}")
            await pipe.execute()
        return route
