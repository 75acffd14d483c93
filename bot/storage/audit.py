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
        rows: Any = await self._redis.xrevrange(keys.AUDIT_LOG, count=limit)
        return [
            AuditEntry(
                id=str(entry_id),
                at=float(f.get("at", 0)),
                actor=int(f.get("actor", 0)),
                action=f.get("action", ""),
                target=f.get("target", ""),
                detail=f.get("detail", ""),
            )
            for entry_id, f in rows
        ]
