"""The one exception type callers outside `bot/storage/` catch for "Redis failed" (so they need
not import redis): a connection lost, a timeout, a script error."""

from __future__ import annotations

from redis.exceptions import RedisError

StorageError = RedisError

__all__ = ["StorageError"]
