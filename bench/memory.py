"""Memory of the service with every role busy in one process: 10,000 watches, 500 channels.

SPEC §8: all roles in one process, 10,000 watches, 500 channels, ≤ 300 MB RSS. The service
runs as a child process (`python -m bot run --role watcher,triage,bot`) against servers in this
process: the loopback Bot API server, and the loopback MTProto server standing in for Telegram,
where the watcher's account (logged in here first, as `vigil login` does) is a member of 500
channels. 10,000 watches (real vocabulary from `../shared/data/ntrex/`, see bench/triage.py)
are stored first, and each of the 100 analysts has given `--verdicts` 👍 / 👎 on archived
posts, so the service's learner trains 100 relevance models at start and triage scores with
them (`models` counts them in Redis at the end); then real posts of those channels are
ingested and triaged while the bot delivers, one post a channel is published live on the
loopback Telegram (the watcher's update handlers), and the reconciler walks the 500 channels.
The child's peak RSS (VmHWM) and final RSS are read from /proc. `startup_s` runs from the
spawn to every measured role ready: the bot's commands registered, the triage role's search
worker present (its language model loaded), the watcher's account connected. `test_reply_s`
is the /test reply's wait (asked of the triage role through the request stream; without a
triage role, the bot's "no triage worker" line).

Prints one JSON line per run. Run from the repository root: `.venv/bin/python bench/memory.py`
(`--roles triage,bot` measures without the watcher; `--each` runs every role alone, then all
of them together, one line each).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.triage import load_sentences, make_posts, make_watches  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.storage import keys  # noqa: E402
from bot.storage.channels import ChannelRepository  # noqa: E402
from bot.storage.connection import EmbeddedRedis  # noqa: E402
from bot.storage.health import AccountState, HealthRepository  # noqa: E402
from bot.storage.posts import PostQueue  # noqa: E402
from bot.storage.repos import Repositories  # noqa: E402
from bot.storage.requests import SearchRequests  # noqa: E402
from bot.storage.streams import stream_stats  # noqa: E402
from bot.storage.users import UserRepository  # noqa: E402
from bot.storage.watches import WatchRepository  # noqa: E402
from tests.support.botapi import BotApiServer, Limits  # noqa: E402
from tests.support.mtproto import MTProtoServer  # noqa: E402
from tests.support.mtproto.crypto import new_server_key  # noqa: E402
from tests.support.mtproto.fixtures import TEST_API_HASH, TEST_API_ID, sign_in  # noqa: E402
from watchers.client import make_client  # noqa: E402

ADMIN = 9000
TOKEN = "123456:MEMORY-BENCH"
PHONE = "+447700900777"


def proc_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


async def log_in(telegram: MTProtoServer, data_dir: Path) -> dict[str, str]:
    """What `vigil login` leaves behind, and the settings that point the service at it."""
    key_path = telegram.write_public_key(data_dir.parent / "mtproto_key.pem")
    env = {
        "TG_API_ID": str(TEST_API_ID),
        "TG_API_HASH": TEST_API_HASH,
        "TG_SERVER": telegram.address,
        "TG_SERVER_KEY": str(key_path),
    }
    settings = Settings(_env_file=None, VIGIL_DATA_DIR=str(data_dir), **env)  # type: ignore[arg-type]
    client = make_client(settings, "vigil", create=True)
    await sign_in(telegram, client, PHONE)
    await client.disconnect()
    return env


def spawn_service(env: dict[str, str], cwd: Path, roles: str) -> subprocess.Popen[bytes]:
    with (cwd / "service.log").open("wb") as log:  # the child keeps its own copy
        return subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--role", roles],
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )


async def roles_ready(
    roles: str, api: BotApiServer, health: HealthRepository, searches: SearchRequests
) -> bool:
    """Is every role of `roles` serving yet (see the module docstring)?"""
    if "bot" in roles and api.commands_for("default") == []:
        return False
    if "triage" in roles and await searches.workers() == 0:
        return False
    if "watcher" in roles:
        states = await health.account_states()
        if not any(AccountState.from_json(k, v).connected for k, v in states.items()):
            return False
    return True


async def give_verdicts(
    redis: Any, analysts: list[int], sentences: dict[str, list[str]], rng: random.Random, n: int
) -> int:
    """Every analyst has given `n` verdicts (half each way) on archived posts before the
    service starts: its learner trains the 100 models at start, and triage scores with them."""
    if n <= 0:
        return 0
    repos = Repositories.build(redis)
    # Channels apart from the live ones.
    judged = [
        replace(p, channel_id=p.channel_id + 50_000_000)
        for p in make_posts(sentences, rng)
        if p.text
    ][: n * 4]
    await repos.archive.put_many(judged)
    for analyst in analysts:
        for i, p in enumerate(rng.sample(judged, n)):
            verdict = "relevant" if i % 2 == 0 else "noise"
            await repos.feedback.set(analyst, p.channel_id, p.message_id, 0, verdict)
    return len(analysts)


async def main(args: argparse.Namespace) -> dict[str, object]:
    rng = random.Random(args.seed)
    sentences = load_sentences()
    data_dir = Path(tempfile.mkdtemp(prefix="vigil-mem-")) / "data"
    server = EmbeddedRedis(data_dir)
    server.start_sync()
    redis = server.client()
    api = BotApiServer(TOKEN, limits=Limits(enabled=False))
    await api.start()
    users = UserRepository(redis, frozenset({ADMIN}))
    await users.ensure_admins()
    analysts = list(range(1000, 1000 + args.analysts))
    for user_id in [ADMIN, *analysts]:
        api.add_user(user_id, first_name=f"user{user_id}")
    for analyst in analysts:
        await users.request_access(analyst, f"analyst {analyst}", None)
        await users.approve(analyst)
    watches = WatchRepository(redis)
    for spec, _parts in make_watches(sentences, args.watches, rng):
        await watches.add(analysts[spec.id % len(analysts)], spec.query, spec.priority)
    trained = await give_verdicts(redis, analysts, sentences, rng, args.verdicts)
    telegram = MTProtoServer(key=new_server_key())
    await telegram.start()
    account = telegram.add_account(PHONE, first_name="Vigil")
    tg_env = await log_in(telegram, data_dir)
    channels = ChannelRepository(redis)
    world = []
    for i in range(args.channels):
        # Already joined (500 joins would take the joiner days, by design).
        channel = telegram.add_channel(f"chan{i}", title=f"C{i}", channel_id=1_000_000 + i)
        telegram.join(channel, account)
        world.append(channel)
        entry = await channels.add(f"@chan{i}", ADMIN)
        resolved = await channels.mark_resolved(
            entry.key,
            channel_id=channel.id,
            access_hash=channel.access_hash,
            username=f"chan{i}",
            title=f"C{i}",
            resolved_by="vigil",
        )
        assert resolved is not None
        await channels.mark_joined(resolved.key, "vigil")
    env = {
        **(tg_env if "watcher" in args.roles else {}),
        **{k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "TG_", "REDIS_"))},
        "BOT_TOKEN": TOKEN,
        "BOT_API_URL": api.base_url,
        "ADMIN_IDS": str(ADMIN),
        "VIGIL_DATA_DIR": str(data_dir),
        "LOG_LEVEL": "INFO",  # to service.log beside the data dir
        "DELIVERY_GLOBAL_RATE": "200",
        "DELIVERY_CHAT_RATE": "50",
    }
    child = spawn_service(env, data_dir.parent, args.roles)
    started = time.monotonic()
    health, searches = HealthRepository(redis), SearchRequests(redis)

    async def until_ready() -> float:
        while not await roles_ready(args.roles, api, health, searches):
            if child.poll() is not None:
                raise RuntimeError(f"service exited; log: {data_dir.parent / 'service.log'}")
            await asyncio.sleep(0.05)
        return time.monotonic() - started

    ready = asyncio.create_task(until_ready())
    now = datetime.now(UTC)  # live posts: older ones would be archived as a backfill
    posts = [replace(p, date=now) for p in make_posts(sentences, rng)[: args.posts]]
    queue = PostQueue(redis)
    for i in range(0, len(posts), 200):
        await queue.enqueue_many(posts[i : i + 200])
        await asyncio.sleep(0.2)
    if "watcher" in args.roles:  # live updates through the watcher's handlers
        for channel in world:
            lang = rng.choice(sorted(sentences))
            await telegram.post(channel, rng.choice(sentences[lang]))
    startup_s = await asyncio.wait_for(ready, 300)
    test_reply_s = None
    if "bot" in args.roles:  # asked of the triage role: the bot loads no model for it
        asked = time.monotonic()
        after = len(api.sent)
        await api.send_text(analysts[0], "/test мигрант")
        await api.wait_for(lambda m: m.chat_id == analysts[0], 240, after=after)
        test_reply_s = round(time.monotonic() - asked, 2)
    deadline = time.monotonic() + args.timeout
    peak_sample = 0.0
    models = 0
    while time.monotonic() < deadline:
        stats = await stream_stats(redis, keys.POSTS_STREAM, keys.TRIAGE_GROUP, keys.POSTS_DEAD)
        peak_sample = max(peak_sample, proc_mb(child.pid, "VmRSS"))
        if "triage" not in args.roles:
            break
        models = int(await redis.hlen(keys.MODELS))
        if (
            stats.lag == 0
            and stats.pending == 0
            and stats.length >= len(posts)
            and models >= trained
        ):
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(args.settle)  # delivery keeps working meanwhile
    hwm = proc_mb(child.pid, "VmHWM")
    rss = proc_mb(child.pid, "VmRSS")
    alerts = int(await redis.xlen(keys.ALERTS_STREAM))
    child.terminate()
    try:
        child.wait(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        print(f"service did not stop on SIGTERM; log: {data_dir.parent / 'service.log'}")
    redis_mb = float((await redis.info("memory"))["used_memory"]) / 2**20
    await api.stop()
    await telegram.stop()
    await redis.aclose()
    server.stop_if_last_sync()
    return {
        "bench": "memory",
        "roles": args.roles,
        "watches": args.watches,
        "channels": args.channels,
        "analysts": args.analysts,
        "models": models,
        "posts": len(posts),
        "alerts": alerts,
        "sent": len(api.sent),
        "peak_rss_mb": round(hwm, 1),
        "final_rss_mb": round(rss, 1),
        "telegram_calls": len(telegram.calls),
        "bar_mb": 300,
        "redis_used_mb": round(redis_mb, 1),
        "startup_s": round(startup_s, 2),
        "test_reply_s": test_reply_s,
        "seconds": round(time.monotonic() - started, 1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--roles", default="watcher,triage,bot", help="roles in the measured process"
    )
    parser.add_argument("--watches", type=int, default=10_000)
    parser.add_argument("--channels", type=int, default=500)
    parser.add_argument("--analysts", type=int, default=100)
    parser.add_argument(
        "--verdicts", type=int, default=20, help="verdicts each analyst has given (0: none)"
    )
    parser.add_argument("--posts", type=int, default=5_000)
    parser.add_argument("--settle", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--each", action="store_true", help="every role alone, then all together (a line each)"
    )
    options = parser.parse_args()
    runs = ["watcher", "triage", "bot", options.roles] if options.each else [options.roles]
    for roles in runs:
        print(
            json.dumps(asyncio.run(main(argparse.Namespace(**{**vars(options), "roles": roles})))),
            flush=True,
        )
