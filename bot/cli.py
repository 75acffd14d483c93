"""`vigil` subcommands: parse arguments, load Settings, call the application.

This module and `bot.demo` are the only places that print; everything else logs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot import __version__
from bot.config import ROLES, ConfigError, Role, Settings
from bot.triage.priority import PRIORITIES

log = logging.getLogger(__name__)

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Telethon and aiohttp are chatty at INFO; their warnings still show.
    for noisy in ("telethon", "aiohttp.access", "apscheduler.executors"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _roles(text: str) -> tuple[Role, ...]:
    roles = tuple(r.strip() for r in text.split(",") if r.strip())
    bad = [r for r in roles if r not in ROLES]
    if bad or not roles:
        raise argparse.ArgumentTypeError(
            f"unknown role {', '.join(bad) or '(none)'}; choose from {', '.join(ROLES)}"
        )
    return roles  # type: ignore[return-value]


def _progress_printer() -> Callable[[int, int], None] | None:
    if not sys.stderr.isatty():
        return None
    last = [0.0]

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] < 0.1 and done < total:
            return
        last[0] = now
        frac = done / total if total else 1.0
        bar = "#" * int(frac * 30)
        sys.stderr.write(f"\r[{bar:<30}] {frac:6.1%} {done / 1e6:8.1f} MB")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


# --- commands -------------------------------------------------------------------------------


async def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import StartError, run_roles

    roles: tuple[Role, ...] = args.role or ROLES
    settings.require_for(roles)
    try:
        await run_roles(settings, roles)
    except StartError as exc:
        print(f"vigil run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


async def cmd_login(args: argparse.Namespace, settings: Settings) -> int:
    from watchers.login import LoginError, login

    settings.require_for(("watcher",))
    try:
        await login(settings, args.name)
    except LoginError as exc:
        print(f"vigil login: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


async def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from bot.ingest import ingest_file
    from bot.storage.connection import open_redis
    from bot.storage.posts import PostQueue
    from watchers.export import ExportError

    path = Path(args.path)
    if not await asyncio.to_thread(path.exists):
        print(f"vigil ingest: {path}: no such file", file=sys.stderr)
        return EXIT_USAGE
    async with open_redis(settings) as redis:
        queue = PostQueue(redis, maxlen=settings.stream_maxlen)
        try:
            report = await ingest_file(
                path,
                queue,
                channel=args.channel,
                progress=_progress_printer(),
                alert_old=args.alert,
            )
        except ExportError as exc:
            print(f"vigil ingest: refused: {exc}", file=sys.stderr)
            print("vigil ingest: nothing from this file was enqueued.", file=sys.stderr)
            return EXIT_USAGE
    skipped = ", ".join(f"{n} {why}" for why, n in sorted(report.skipped.items())) or "none"
    print(
        f"{path.name}: read {report.read}, enqueued {report.enqueued}, "
        f"duplicate {report.duplicates}, skipped {sum(report.skipped.values())} ({skipped})"
    )
    cutoff = settings.backfill_cutoff_h
    if report.enqueued and cutoff and not args.alert:
        print(
            f"Posts dated more than {cutoff:g} h ago are archived for /test and /search, not "
            "alerted (BACKFILL_CUTOFF_H); --alert alerts them, marked as from the archive."
        )
    elif report.enqueued and args.alert:
        print("--alert: every matching post alerts, older ones marked 📼 from the archive.")
    return EXIT_OK


async def cmd_backtest(args: argparse.Namespace, settings: Settings) -> int:
    from bot.backtest import run_backtest

    return await asyncio.to_thread(
        run_backtest, args.query, Path(args.path), settings, channel=args.channel, limit=args.limit
    )


async def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from bot.demo import run_demo

    return await run_demo(settings, keep=args.keep)


async def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from bot.app import build_repositories
    from bot.status import collect_status, format_status
    from bot.storage.connection import (
        BRIEF_RIDE_OUT_S,
        describe,
        fault_kind,
        open_redis,
        write_refusal,
    )
    from bot.storage.failures import StorageError

    try:
        # A brief ride-out: during an outage status says so at once instead of waiting it out.
        async with open_redis(settings, ride_out_s=BRIEF_RIDE_OUT_S) as redis:
            status = await collect_status(build_repositories(settings, redis), settings)
            refusal = await write_refusal(redis)
    except StorageError as exc:
        where, kind = describe(settings), fault_kind(exc)
        reachable = kind != "Redis unreachable"  # it answers, but refuses (MISCONF: even PING)
        if args.json:
            down = {
                "redis": {
                    "where": where,
                    "reachable": reachable,
                    "fault": kind,
                    "error": str(exc)[:300],
                }
            }
            print(json.dumps(down, indent=2))
        else:
            state = f"REFUSES COMMANDS: {kind}" if reachable else "UNREACHABLE"
            print(f"Redis: {where} — {state}: {str(exc)[:300]}")
            print("The roles wait for it (each command retries for a while), then stop.")
        return EXIT_ERROR
    status["redis"]["refuses_writes"] = refusal
    print(json.dumps(status, indent=2) if args.json else format_status(status))
    if refusal is not None and not args.json:
        print(f"Redis {refusal}")
    return EXIT_OK


async def cmd_watch(args: argparse.Namespace, settings: Settings) -> int:
    from bot.storage.connection import open_redis
    from bot.storage.watches import WatchRepository
    from bot.triage.query import QueryError

    async with open_redis(settings) as redis:
        repo = WatchRepository(redis)
        if args.action == "add":
            try:
                watch = await repo.add(args.owner, " ".join(args.query), args.priority)
            except QueryError as exc:
                print(f"vigil watch add: query refused: {exc}", file=sys.stderr)
                return EXIT_USAGE
            except ValueError as exc:
                print(f"vigil watch add: {exc}", file=sys.stderr)
                return EXIT_USAGE
            print(f"watch {watch.id} for {watch.owner_id}: {watch.canonical} [{watch.priority}]")
        elif args.action == "list":
            watches = await (repo.list_for(args.owner) if args.owner else repo.all())
            for w in watches:
                state = " (paused)" if w.paused else ""
                print(f"{w.id:>6}  owner {w.owner_id:<12} [{w.priority}] {w.canonical}{state}")
            if not watches:
                print("no watches")
        else:
            found = await repo.get(args.id)
            if found is None or not await repo.remove(args.id, found.owner_id):
                print(f"vigil watch remove: no watch {args.id}", file=sys.stderr)
                return EXIT_USAGE
            print(f"watch {args.id} removed")
    return EXIT_OK


async def cmd_channel(args: argparse.Namespace, settings: Settings) -> int:
    from watchers.cli import channel_command

    return await channel_command(settings, args.action, args.ref)


# --- parser ---------------------------------------------------------------------------------

Command = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vigil",
        description="Vigil watches public Telegram channels and alerts analysts.",
    )
    parser.add_argument("--version", action="version", version=f"vigil {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Command, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    run = add("run", cmd_run, "run the service (all roles, or --role watcher,triage,bot)")
    run.add_argument("--role", type=_roles, help="comma-separated roles: watcher,triage,bot")

    login = add("login", cmd_login, "log in the Telegram user account (interactive)")
    login.add_argument("--name", help="session name (default TG_SESSION)")

    ingest = add("ingest", cmd_ingest, "enqueue posts from a Telegram Desktop export or JSONL")
    ingest.add_argument("path", help="result.json of a channel, a full export, or .jsonl")
    ingest.add_argument("--channel", help="@username of the exported channel (for post links)")
    ingest.add_argument(
        "--alert",
        action="store_true",
        help="alert posts older than the backfill cutoff too (marked as from the archive)",
    )

    backtest = add("backtest", cmd_backtest, "which posts of an export a query would alert on")
    backtest.add_argument("query", help="a watch query, e.g. 'мигрант NEAR/5 \"выслать\"'")
    backtest.add_argument("path", help="a Telegram Desktop export or JSONL file")
    backtest.add_argument("--channel", help="@username of the exported channel")
    backtest.add_argument("--limit", type=int, default=20, help="matches to print (default 20)")

    demo = add("demo", cmd_demo, "the whole pipeline on bundled sample posts, alerts printed")
    demo.add_argument(
        "--keep", action="store_true", help="keep the demo's data dir instead of a temporary one"
    )

    status = add("status", cmd_status, "health: Redis, queues, lag, dead letters, roles")
    status.add_argument("--json", action="store_true", help="machine-readable output")

    watch = add("watch", cmd_watch, "manage watches from the shell (operators)")
    wsub = watch.add_subparsers(dest="action", required=True)
    wadd = wsub.add_parser("add", help="add a watch for an analyst")
    wadd.add_argument("owner", type=int, help="the analyst's Telegram user id")
    wadd.add_argument("query", nargs="+", help="the watch query")
    wadd.add_argument("--priority", default="normal", choices=PRIORITIES)
    wlist = wsub.add_parser("list", help="list watches")
    wlist.add_argument("--owner", type=int, help="only this analyst's")
    wrm = wsub.add_parser("remove", help="remove a watch")
    wrm.add_argument("id", type=int)

    channel = add("channel", cmd_channel, "manage monitored channels from the shell")
    channel.add_argument("action", choices=("add", "list", "remove"))
    channel.add_argument("ref", nargs="?", help="@name, t.me link or invite link; or key")
    return parser


def _embedded_refusal(exc: BaseException) -> Exception | None:
    """The embedded Redis's refusal to start in `exc` (or in an exception group), if any."""
    from bot.storage.connection import EmbeddedRedisError

    if isinstance(exc, EmbeddedRedisError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := _embedded_refusal(inner)) is not None:
                return found
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        print(f"vigil: bad configuration: {problems}", file=sys.stderr)
        return EXIT_USAGE
    # One-shot commands print their own results; their INFO logs would only interleave.
    quiet = args.command != "run" and "LOG_LEVEL" not in os.environ
    _setup_logging("WARNING" if quiet else settings.log_level)
    try:
        code: int = asyncio.run(args.func(args, settings))
        return code
    except ConfigError as exc:
        print(f"vigil: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as exc:
        from bot.storage.connection import describe, fault_kind, outage_in

        if (outage := outage_in(exc)) is not None:
            print(
                f"vigil: {fault_kind(outage)} ({describe(settings)}) for longer than "
                f"REDIS_RIDE_OUT_S={settings.redis_ride_out_s:g}s: {str(outage)[:200]}",
                file=sys.stderr,
            )
            return EXIT_ERROR
        refusal = _embedded_refusal(exc)
        if refusal is None:
            raise
        print(f"vigil: {refusal}", file=sys.stderr)  # a damaged AOF: the sentence names the fix
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
