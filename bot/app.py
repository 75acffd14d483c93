"""Composition root: builds every long-lived object, runs the chosen roles, closes them.

One process runs every role by default; `vigil run --role ...` runs a subset so the roles can be
spread over machines that share one Redis. Only this module wires the pieces together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import redis.asyncio as aioredis

from bot.config import Role, Settings
from bot.instance import claim_instance
from bot.status import HEARTBEAT_S
from bot.storage.connection import fault_kind, open_redis, outage_in
from bot.storage.failures import StorageError
from bot.storage.health import HealthRepository
from bot.storage.repos import Repositories, Retention

if TYPE_CHECKING:
    from bot.learner import Learner
    from bot.triage_worker import TriageWorker

log = logging.getLogger(__name__)


class StartError(Exception):
    """A role could not start (not logged in, session held elsewhere); str() says why."""


def instance_name() -> str:
    """This process's name while no instance slot is held (one-off commands, tests)."""
    return f"{socket.gethostname()}-p{os.getpid()}"


def build_repositories(settings: Settings, redis: aioredis.Redis) -> Repositories:
    """Every repository, once per process (see bot.storage.repos for what each owns)."""
    return Repositories.build(
        redis,
        admins=settings.admins,
        retention=Retention(
            archive_s=settings.archive_ttl_days * 86400,
            ledger_s=settings.archive_ttl_days * 86400,
            maxlen=settings.stream_maxlen,
        ),
        max_watches=settings.max_watches,
    )


async def build_triage_worker(
    settings: Settings,
    repos: Repositories | aioredis.Redis,
    *,
    consumer: str | None = None,
) -> tuple[TriageWorker, Callable[[asyncio.Event], Awaitable[None]]]:
    """The triage worker with its engine; returns (worker, run)."""
    from bot.learner import ModelSync
    from bot.search import SearchWorker
    from bot.storage.campaigns import SurgeTracker
    from bot.triage.engine import TriageEngine
    from bot.triage.language import make_detector
    from bot.triage.relevance import LearnedRelevance
    from bot.triage_worker import TriageWorker

    if not isinstance(repos, Repositories):
        repos = build_repositories(settings, repos)
    weights: dict[int, str] = {}
    channels = repos.channels

    names: dict[int, str] = {}

    async def refresh_weights() -> None:
        for channel in await channels.list():
            if channel.channel_id is not None:
                weights[channel.channel_id] = channel.weight
                names[channel.channel_id] = channel.label

    detector = await asyncio.to_thread(make_detector, settings.language_detector)
    relevance = LearnedRelevance()
    engine = TriageEngine(
        detector,
        channel_weights=lambda channel_id: weights.get(channel_id, "normal"),
        relevance=relevance,
    )
    name = consumer or f"triage-{instance_name()}"
    models = ModelSync(
        repos.learning, repos.users, relevance, suggest_per_day=settings.suggest_per_day
    )
    worker = TriageWorker.over(
        repos,
        engine,
        consumer=name,
        max_deliveries=settings.max_deliveries,
        claim_idle_ms=int(settings.claim_idle_s * 1000),
        channel_weights=refresh_weights,
        models=models,
        backfill_cutoff_s=settings.backfill_cutoff_h * 3600,
        surge=SurgeTracker(repos.campaigns),
        channel_names=lambda channel_id: names.get(channel_id, f"channel {channel_id}"),
    )
    learner = build_learner(settings, repos, lambda text: detector.detect(text).code, name)
    # /test and /search from the bot role, matched here with the engine's own detector.
    searcher = SearchWorker(
        repos.searches,
        repos.archive,
        detector,
        consumer=f"search-{name}",
        max_deliveries=settings.max_deliveries,
        claim_idle_ms=int(settings.claim_idle_s * 1000),
    )

    async def run(stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(worker.run(stop))
            tasks.create_task(learner.run(stop))
            tasks.create_task(searcher.run(stop))

    return worker, run


def build_learner(
    settings: Settings, repos: Repositories, detect: Callable[[str], str], consumer: str
) -> Learner:
    """The learner of the triage role (bot/learner.py), one consumer of the feedback stream."""
    from bot.learner import Learner

    return Learner(
        repos.feedback_consumer(
            consumer,
            max_deliveries=settings.max_deliveries,
            claim_idle_ms=int(settings.claim_idle_s * 1000),
        ),
        repos.learning,
        repos.feedback,
        repos.archive,
        repos.mutes,
        repos.users,
        detect,
        suggest_per_day=settings.suggest_per_day,
    )


async def _heartbeat(
    health: HealthRepository, roles: set[str], stop: asyncio.Event, instance: str
) -> None:
    """Every HEARTBEAT_S, mark the roles still running (`roles` shrinks when one ends)."""
    names = {role: f"{role}@{instance}" for role in roles}
    try:
        while not stop.is_set():
            await health.forget_roles(names[r] for r in names if r not in roles)
            await health.beat(names[r] for r in roles)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), HEARTBEAT_S)
    finally:
        with contextlib.suppress(Exception):  # best effort while shutting down
            await health.forget_roles(names.values())


async def _drop_legacy_seen(repos: Repositories) -> None:
    """Once per start: the never-expiring seen hashes of before the day buckets go."""
    with contextlib.suppress(StorageError):
        dropped = await repos.posts.drop_legacy_seen()
        if dropped:
            log.info("vigil: %d legacy posts:seen hashes removed", dropped)


async def _until_stopped(
    stop: asyncio.Event,
    coro: Awaitable[None],
    name: str,
    expected: tuple[type[Exception], ...] = (),
    *,
    alone: bool = True,
    running: set[str] | None = None,
) -> None:
    """Run a role; if it fails the whole process stops with it. If it ends on its own, the
    process stops too, unless other roles run beside it (`alone` False): the watcher ends when
    its last Telegram account is revoked, and the bot must stay up to tell the admins.
    `expected` failures carry a message for the operator and are not logged as crashes."""
    try:
        await coro
    except expected:
        stop.set()
        raise
    except BaseException as exc:
        if (outage := outage_in(exc)) is not None:  # a sentence: the traceback says nothing
            log.error("role %s: %s for longer than it waits; stopping", name, fault_kind(outage))
        elif isinstance(exc, Exception):
            log.exception("role %s failed; stopping", name)
        stop.set()
        raise
    if alone or stop.is_set():
        stop.set()
    else:
        log.error("role %s ended; the other roles keep running", name)
        if running is not None:
            running.discard(name)


async def run_roles(settings: Settings, roles: tuple[Role, ...]) -> None:
    from bot.malloc import tune_malloc

    tune_malloc()  # before any worker thread: large arrays go back to the OS (bot/malloc.py)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    refusals: tuple[type[Exception], ...] = ()
    if "watcher" in roles:  # Telethon (+52 MB resident) only in a process that runs the watcher
        from watchers.client import NotLoggedInError, TelegramUnreachableError
        from watchers.lock import SessionLockedError

        refusals = (NotLoggedInError, SessionLockedError, TelegramUnreachableError)

    try:
        with claim_instance(settings.data_dir) as instance:
            await _run_roles(settings, roles, stop, instance.name, refusals)
    except* refusals as group:
        raise StartError("; ".join(str(e) for e in group.exceptions)) from None
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        log.info("vigil: stopped")


async def _run_roles(
    settings: Settings,
    roles: tuple[Role, ...],
    stop: asyncio.Event,
    instance: str,
    refusals: tuple[type[Exception], ...],
) -> None:
    """The roles under one TaskGroup; consumers are named after this process's stable
    `instance`, so a restart resumes its own pending entries at once."""
    async with open_redis(settings) as redis, asyncio.TaskGroup() as tasks:
        log.info("vigil: starting roles %s as %s", ",".join(roles), instance)
        repos = build_repositories(settings, redis)
        running: set[str] = set(roles)
        tasks.create_task(_heartbeat(repos.health, running, stop, instance))
        tasks.create_task(_drop_legacy_seen(repos))
        if "bot" in roles:
            from bot.botapp import run_bot_role

            tasks.create_task(
                _until_stopped(
                    stop,
                    run_bot_role(settings, repos, stop, consumer=f"delivery-{instance}"),
                    "bot",
                )
            )
        if "triage" in roles:
            # After the bot role has started: delivery resumes while the language model loads
            # (in a thread, so the loop keeps serving), which is most of a restart's time.
            _worker, run = await build_triage_worker(
                settings, repos, consumer=f"triage-{instance}"
            )
            tasks.create_task(_until_stopped(stop, run(stop), "triage"))
        if "watcher" in roles:
            from watchers.service import run_watcher

            tasks.create_task(
                _until_stopped(
                    stop,
                    run_watcher(settings, repos, stop=stop),
                    "watcher",
                    refusals,
                    alone=roles == ("watcher",),
                    running=running,
                )
            )
