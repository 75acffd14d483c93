"""The updates the bot is given: the queue, getUpdates long polling (409 on a second poller),
offsets confirming what was received, allowed_updates, deleteWebhook.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from typing import TYPE_CHECKING, Any

from tests.support.botapi.calls import Params, boolean, integer, json_value, method
from tests.support.botapi.errors import ApiError

if TYPE_CHECKING:
    from tests.support.botapi.world import World

DEFAULT_UPDATE_TYPES = frozenset(
    {"message", "edited_message", "callback_query", "my_chat_member", "inline_query"}
)


class UpdateQueue:
    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []
        self._ids = itertools.count(1001)
        self.allowed: frozenset[str] = DEFAULT_UPDATE_TYPES
        self.confirmed_update_id = 0
        self.poll_generation = 0
        self.new_update = asyncio.Event()
        self.closing = False
        self.pushed: Counter[str] = Counter()  # updates queued, by type (for the test)

    def push(self, payload: dict[str, Any]) -> None:
        self.pushed.update(payload.keys())
        self.updates.append({"update_id": next(self._ids), **payload})
        self.wake_pollers()

    def wake_pollers(self) -> None:
        self.new_update.set()
        self.new_update = asyncio.Event()

    def close(self) -> None:
        self.closing = True
        self.new_update.set()

    def confirm(self, offset: int) -> None:
        self.confirmed_update_id = max(self.confirmed_update_id, offset - 1)
        self.updates = [u for u in self.updates if u["update_id"] >= offset]

    def drop_disallowed(self) -> None:
        allowed = self.allowed
        self.updates = [u for u in self.updates if not (set(u) - {"update_id"}) - allowed]


@method("deleteWebhook")
async def delete_webhook(world: World, params: Params) -> Any:
    world.webhook_deleted = True
    if boolean(params, "drop_pending_updates"):
        world.queue.updates.clear()
    return True


@method("getUpdates")
async def get_updates(world: World, params: Params) -> Any:
    queue = world.queue
    offset = integer(params, "offset") or 0
    limit = integer(params, "limit") or 100
    limit = min(max(limit, 1), 100)
    timeout = max(integer(params, "timeout") or 0, 0)
    allowed = json_value(params, "allowed_updates")
    if isinstance(allowed, list):
        queue.allowed = frozenset(allowed) if allowed else DEFAULT_UPDATE_TYPES
    queue.poll_generation += 1
    generation = queue.poll_generation
    queue.wake_pollers()  # an older long poll is terminated with 409, as Telegram does
    if offset > 0:
        queue.confirm(offset)
    elif offset < 0:
        keep = -offset
        queue.updates = queue.updates[-keep:] if keep else []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        queue.drop_disallowed()
        if queue.updates:
            return queue.updates[:limit]
        remaining = deadline - loop.time()
        if remaining <= 0 or queue.closing:
            return []
        event = queue.new_update
        try:
            await asyncio.wait_for(event.wait(), remaining)
        except TimeoutError:
            return []
        if queue.poll_generation != generation:
            raise ApiError(
                409,
                "Conflict: terminated by other getUpdates request; make sure that only "
                "one bot instance is running",
            )
