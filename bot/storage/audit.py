"""The audit log: who changed what and when (admin actions and watch changes).

A capped stream `keys.AUDIT_LOG` with fields at, actor, action, target, detail.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from bot.storage import keys

AUDIT_MAXLEN = 100_000


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: str
    at: float
    actor: int
    action: str
    target: str
    detail: str


class AuditLog:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis

    async def record(self, actor: int, action: str, target: str, detail: str = "") -> None:
        fields: dict[Any, Any] = {
            "at": f"{time.time():.3f}",
            "actor": str(actor),
            "action": action,
            "target": target[:200],
            "detail": detail[:500],
        }
        await self._redis.xadd(keys.AUDIT_LOG, fields, maxlen=AUDIT_MAXLEN, approximate=True)

    async def recent(self, limit: int = 20) -> list[AuditEntry]:
        return await self.page("+", limit)

    async def page(self, start: str, count: int) -> list[AuditEntry]:
        """Up to `count` entries, newest first, from `start` ('+' the newest, an entry id, or
        '(' and an id: the entries older than it)."""
        rows: Any = await self._redis.xrevrange(keys.AUDIT_LOG, max=start, count=count)
        return [_entry(i, f) for i, f in rows]

    async def newer(self, than_id: str, count: int) -> list[AuditEntry]:
        """Up to `count` entries just newer than `than_id`, oldest first."""
        rows: Any = await self._redis.xrange(keys.AUDIT_LOG, min=f"({than_id}", count=count)
        return [_entry(i, f) for i, f in rows]

    async def count(self) -> int:
        return int(await self._redis.xlen(keys.AUDIT_LOG))


def _entry(entry_id: Any, fields: Any) -> AuditEntry:
    def number(name: str) -> str:
        return str(fields.get(name, 0) or 0)

    try:
        at, actor = float(number("at")), int(number("actor"))
    except ValueError:
        at, actor = 0.0, 0
    return AuditEntry(
        id=str(entry_id),
        at=at,
        actor=actor,
        action=fields.get("action", ""),
        target=fields.get("target", ""),
        detail=fields.get("detail", ""),
    )
