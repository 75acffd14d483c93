"""Faults under a steady load: every fault of issue #12 injected for real, one after another,
into one running service, while posts keep arriving and alerts keep going out.

The service is `python -m bot run --role triage,bot` (a child process, default settings but
for a claim timeout of `--claim-idle` s so the two-worker race happens within the run) on an
external `REDIS_URL`: a real redis-server on a TCP port (tests/faults/harness.py), Telegram is
the loopback Bot API server (tests/support/botapi/, Telegram's flood limits) in this process.
Posts are enqueued at `--rate` a second the whole time, each matching one analyst's watch.
The faults, in order:

- `redis_sigterm`: Redis stopped with SIGTERM, started again `--down` s later;
- `redis_sigkill`: the same with SIGKILL;
- `redis_oom`: `maxmemory` set below what Redis holds (noeviction) for `--hold` s;
- `disk_full`: the AOF may not grow (RLIMIT_FSIZE on the server: see the harness) for `--hold` s;
- `aof_truncated`: Redis killed, a torn write appended to its AOF, Redis started on it;
- `two_workers`: a second `--role triage` process joins and is frozen (SIGSTOP) twice for
  longer than the claim timeout, so the first reclaims and triages what it held.

A fault is survived when the service is still running after it and a post enqueued after the
fault was cleared reaches its analyst within 30 s; its recovery time is that delay (cleared to
delivered: the whole path works again). At the end every expected alert is counted.

Prints one JSON line: `"bench": "faults"`, `faults`, `survived`, `alerts_lost`, `duplicates`,
`max_recovery_s`, `recovery_s` (per fault), `bar_ok` (survived = faults, alerts_lost 0,
duplicates <= faults, max_recovery_s <= 10), seconds.
Run from the repository root: `.venv/bin/python bench/faults.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.config import Settings  # noqa: E402
from bot.storage.connection import open_redis  # noqa: E402
from bot.storage.posts import PostQueue  # noqa: E402
from tests.faults.harness import Load, RedisProcess, aof_size, limit_file_size  # noqa: E402
from tests.support.botapi import BotApiServer, Limits, WaitTimeoutError  # noqa: E402
from tests.support.service import start_service, stop_service, vigil_env  # noqa: E402

TOKEN = "123456:FAULTS-BENCH"
TORN_WRITE = b"*3\r\n$4\r\nSADD\r\n$4\r\ntorn\r\n$20\r\nhalf-writ"


async def main(args: argparse.Namespace) -> dict[str, object]:
    started = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="vigil-faults-"))
    server = RedisProcess(base / "redis")
    server.start()
    api = BotApiServer(TOKEN, limits=Limits())
    await api.start()
    env = vigil_env(
        base / "data",
        BOT_TOKEN=TOKEN,
        BOT_API_URL=api.base_url,
        ADMIN_IDS="9000",
        REDIS_URL=server.url,
        STREAM_CLAIM_IDLE_S=str(args.claim_idle),
        LOG_LEVEL="INFO",
    )
    log = args.log or base / "service.log"
    settings = Settings(_env_file=None, REDIS_URL=server.url, VIGIL_DATA_DIR=str(base / "data"))
    services: list[subprocess.Popen[bytes]] = []
    recovery: dict[str, float | None] = {}
    survived: dict[str, bool] = {}
    async with open_redis(settings) as client:
        load = Load(api)
        await load.setup(client)
        services.append(start_service("triage,bot", env, base, log))
        queue = PostQueue(client)
        stop_feed = asyncio.Event()

        async def feed() -> None:
            while not stop_feed.is_set():
                await load.post(queue)
                await asyncio.sleep(1 / args.rate)

        feeder = asyncio.create_task(feed())
        await api.wait_until(lambda: bool(load.delivered()), timeout=120)
        await asyncio.sleep(args.gap)

        async def restart(sig: signal.Signals) -> float:
            server.stop(sig)
            await asyncio.sleep(args.down)
            await asyncio.to_thread(server.start)
            return time.monotonic()

        async def oom() -> float:
            with server.sync() as control:
                control.config_set("maxmemory-policy", "noeviction")
                control.config_set("maxmemory", "1mb")
                await asyncio.sleep(args.hold)
                control.config_set("maxmemory", "0")
            return time.monotonic()

        async def disk_full() -> float:
            limit_file_size(server.pid, aof_size(server.data_dir) + 512)
            await asyncio.sleep(args.hold)
            limit_file_size(server.pid, None)
            return time.monotonic()

        async def aof_truncated() -> float:
            server.stop(signal.SIGKILL)
            with (server.data_dir / "appendonly.aof").open("ab") as fh:
                fh.write(TORN_WRITE)
            await asyncio.to_thread(server.start)
            return time.monotonic()

        async def two_workers() -> float:
            second = start_service("triage", env, base, log)
            services.append(second)
            await asyncio.sleep(args.gap + 4)  # its language model loads, then it reads
            for _ in range(2):
                second.send_signal(signal.SIGSTOP)
                await asyncio.sleep(args.claim_idle + 1.5)
                second.send_signal(signal.SIGCONT)
                await asyncio.sleep(1.0)
            return time.monotonic()

        faults: dict[str, Callable[[], Awaitable[float]]] = {
            "redis_sigterm": lambda: restart(signal.SIGTERM),
            "redis_sigkill": lambda: restart(signal.SIGKILL),
            "redis_oom": oom,
            "disk_full": disk_full,
            "aof_truncated": aof_truncated,
            "two_workers": two_workers,
        }
        for name, inject in faults.items():
            cleared = await inject()

            def through(at: float = cleared) -> bool:
                return load.end_to_end_after(at) is not None

            with contextlib.suppress(WaitTimeoutError):
                await api.wait_until(through, 30)
            recovery[name] = load.end_to_end_after(cleared)
            survived[name] = recovery[name] is not None and services[0].poll() is None
            await asyncio.sleep(args.gap)
        stop_feed.set()
        await feeder
        await load.settle(120)
    for service in services:
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(stop_service, service)
    await api.stop()
    server.stop()
    times = [r for r in recovery.values() if r is not None]
    max_recovery = max(times) if times else None
    result: dict[str, object] = {
        "bench": "faults",
        "faults": len(faults),
        "survived": sum(survived.values()),
        "alerts_lost": load.lost,
        "duplicates": load.duplicates,
        "max_recovery_s": max_recovery,
        "recovery_s": recovery,
        "posts": load.posted,
        "alerts_expected": len(load.expected),
        "bar_ok": sum(survived.values()) == len(faults)
        and load.lost == 0
        and load.duplicates <= len(faults)
        and max_recovery is not None
        and max_recovery <= 10,
        "seconds": round(time.monotonic() - started, 1),
    }
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=8.0, help="posts enqueued per second")
    parser.add_argument("--down", type=float, default=1.5, help="seconds Redis stays down")
    parser.add_argument("--hold", type=float, default=3.0, help="seconds OOM / full disk last")
    parser.add_argument("--gap", type=float, default=2.0, help="seconds between faults")
    parser.add_argument("--claim-idle", type=float, default=2.0, help="STREAM_CLAIM_IDLE_S")
    parser.add_argument("--log", type=Path, default=None, help="append the services' log here")
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
