"""Crash safety: `kill -9` the service at random moments, restart it, count what arrives.

SPEC §8: after a crash at any moment and a restart, 0 alerts lost and at most 1 duplicate per
crash. This runs the real service (`python -m bot run --role triage,bot`) as a child process
against the loopback Bot API server (tests/support/botapi/, in this process) and an embedded
Redis that outlives the child. Posts are ingested while the service runs; the child is killed
with SIGKILL at random times (`--crashes`), restarted each time, and finally left to finish.
Each post matches exactly one analyst's watch, so every (analyst, post) should arrive once.

Prints one JSON line: expected, delivered, lost, duplicates, crashes, `resume_s` (the
longest time from a restart to the next alert delivered, with the default settings: no
shortened claim timeout), seconds. Each kill hits a working service: it comes 1–4 s after
the incarnation it kills delivered its first alert (a kill during start-up would make the next
restart's resume time include a whole other start-up). `startup_s` is how long a fresh
`vigil run` takes to deliver its first alert of a backlog, the floor under `resume_s`.
Run from the repository root: `.venv/bin/python bench/crash.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.models import Post  # noqa: E402
from bot.storage.connection import EmbeddedRedis  # noqa: E402
from bot.storage.posts import PostQueue  # noqa: E402
from bot.storage.users import UserRepository  # noqa: E402
from bot.storage.watches import WatchRepository  # noqa: E402
from tests.support.botapi import BotApiServer, Limits  # noqa: E402
from tests.support.service import start_service, vigil_env  # noqa: E402

ADMIN = 9000
TOKEN = "123456:CRASH-BENCH"
MARK = re.compile(r"crashpost(\d+)")


async def main(args: argparse.Namespace) -> dict[str, object]:
    rng = random.Random(args.seed)
    data_dir = Path(tempfile.mkdtemp(prefix="vigil-crash-")) / "data"
    server = EmbeddedRedis(data_dir)
    server.start_sync()
    redis = server.client()
    api = BotApiServer(TOKEN, limits=Limits())
    await api.start()
    analysts = list(range(1001, 1001 + args.analysts))
    for user_id in [ADMIN, *analysts]:
        api.add_user(user_id, first_name=f"user{user_id}")
    users = UserRepository(redis, frozenset({ADMIN}))
    await users.ensure_admins()
    watches = WatchRepository(redis)
    for i, analyst in enumerate(analysts):
        await users.request_access(analyst, f"analyst {analyst}", None)
        await users.approve(analyst)
        await watches.add(analyst, f"=topicword{i}")
    env = vigil_env(
        data_dir,
        BOT_TOKEN=TOKEN,
        BOT_API_URL=api.base_url,
        ADMIN_IDS=str(ADMIN),
        LOG_LEVEL="INFO" if args.log else "WARNING",
    )

    def spawn() -> subprocess.Popen[bytes]:
        return start_service("triage,bot", env, data_dir.parent, log=args.log)

    def sends() -> list[float]:
        """When each alert reached the Bot API (time.monotonic()), in order."""
        return sorted(
            m.received_at
            for m in api.sent
            if m.method == "sendMessage" and MARK.search(m.text or "")
        )

    def up_since(spawned: float) -> float | None:
        """When this incarnation first delivered (None: not yet): a kill after that hits a
        working service, not its start-up."""
        return next((t for t in sends() if t > spawned), None)

    queue = PostQueue(redis)
    started = time.monotonic()
    child = spawn()
    spawned = time.monotonic()
    expected: Counter[tuple[int, int]] = Counter()
    crashes = 0
    restarts: list[float] = []  # time.monotonic() of each restart after a kill
    delay = rng.uniform(1.0, 4.0)  # after the incarnation's first delivery
    for n in range(args.posts):
        i = rng.randrange(len(analysts))
        post = Post(
            channel_id=777,
            message_id=n + 1,
            date=datetime.now(UTC),
            text=f"crashpost{n + 1}: topicword{i} & <b>not a tag</b> 🚨",
            username="crashbench",
            title="Crash bench",
        )
        await queue.enqueue(post)
        expected[(analysts[i], n + 1)] = 1
        await asyncio.sleep(1 / args.rate)
        up = up_since(spawned)
        if crashes < args.crashes and up is not None and time.monotonic() >= up + delay:
            child.send_signal(signal.SIGKILL)
            child.wait()
            crashes += 1
            restarts.append(time.monotonic())
            child = spawn()
            spawned = time.monotonic()
            delay = rng.uniform(1.0, 4.0)
    while crashes < args.crashes:  # the remaining crashes happen while it delivers
        await asyncio.sleep(0.1)
        up = up_since(spawned)
        everything_sent = len(sends()) >= len(expected)  # then nothing follows a restart
        if not everything_sent and (up is None or time.monotonic() < up + delay):
            continue
        delay = rng.uniform(0.5, 2.0)
        child.send_signal(signal.SIGKILL)
        child.wait()
        crashes += 1
        restarts.append(time.monotonic())
        child = spawn()
        spawned = time.monotonic()

    def delivered() -> Counter[tuple[int, int]]:
        got: Counter[tuple[int, int]] = Counter()
        for message in api.sent:
            m = MARK.search(message.text)
            if m and message.method == "sendMessage":
                got[(message.chat_id, int(m.group(1)))] += 1
        return got

    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if set(delivered()) >= set(expected):
            break
        await asyncio.sleep(0.5)
    await asyncio.sleep(2)  # anything still in flight would show up as a duplicate
    child.send_signal(signal.SIGTERM)
    try:
        child.wait(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
    got = delivered()
    # From each restart to the next alert delivered (restarts after which nothing was left to
    # deliver do not count).
    sent_at = sends()
    resumes = [
        next(t for t in sent_at if t > r) - r for r in restarts if any(t > r for t in sent_at)
    ]
    lost = sum(1 for key in expected if key not in got)
    duplicates = sum(n - 1 for n in got.values() if n > 1)
    await api.stop()
    await redis.aclose()
    server.stop_if_last_sync()
    return {
        "bench": "crash",
        "posts": args.posts,
        "analysts": args.analysts,
        "expected": len(expected),
        "delivered": len(set(got) & set(expected)),
        "lost": lost,
        "duplicates": duplicates,
        "crashes": crashes,
        "duplicates_per_crash": round(duplicates / crashes, 2) if crashes else 0.0,
        "bar_ok": lost == 0 and duplicates <= crashes,
        "startup_s": round(sent_at[0] - started, 2) if sent_at else None,
        "resume_s": round(max(resumes), 2) if resumes else None,
        "resumes_s": [round(r, 2) for r in resumes],
        "resume_bar_ok": bool(resumes) and max(resumes) <= 5.0,
        "seconds": round(time.monotonic() - started, 1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=300)
    parser.add_argument("--analysts", type=int, default=30)
    parser.add_argument("--rate", type=float, default=20.0, help="posts enqueued per second")
    parser.add_argument("--crashes", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--log", type=Path, default=None, help="append the service's log here")
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
