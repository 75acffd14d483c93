"""Faults under a steady load: every fault of issue #12 injected for real, one after another,
into a running service, while posts keep arriving and alerts keep going out.

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

Then a second service on the embedded Redis it starts itself (no `REDIS_URL`), under the same
load, for the faults of the default setup:

- `embedded_disk_full`: the full disk above, under the embedded server;
- `embedded_sigkill`: the embedded redis-server killed with SIGKILL (the service starts it
  again on the same data).

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
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.config import Settings  # noqa: E402
from bot.storage.connection import EmbeddedRedis, open_redis  # noqa: E402
from bot.storage.posts import PostQueue  # noqa: E402
from tests.faults.harness import Load, RedisProcess, aof_size, limit_file_size  # noqa: E402
from tests.support.botapi import BotApiServer, Limits, WaitTimeoutError  # noqa: E402
from tests.support.service import start_service, stop_service, vigil_env  # noqa: E402

TOKEN = "123456:FAULTS-BENCH"
TORN_WRITE = b"*3\r\n$4\r\nSADD\r\n$4\r\ntorn\r\n$20\r\nhalf-writ"


Fault = Callable[[], Awaitable[float]]  # injects, clears, returns when it was cleared


@dataclass
class Phase:
    recovery: dict[str, float | None]
    survived: dict[str, bool]
    lost: int
    duplicates: int
    posted: int


async def run_faults(
    args: argparse.Namespace,
    api: BotApiServer,
    client: aioredis.Redis,
    services: list[subprocess.Popen[bytes]],
    faults: Callable[[Load], dict[str, Fault]],
) -> Phase:
    """Analysts and watches, a steady feed of posts, then each fault in turn under it."""
    load = Load(api)
    await load.setup(client)
    queue = PostQueue(client)
    stop_feed = asyncio.Event()

    async def feed() -> None:
        while not stop_feed.is_set():
            await load.post(queue)
            await asyncio.sleep(1 / args.rate)

    feeder = asyncio.create_task(feed())
    await api.wait_until(lambda: bool(load.delivered()), timeout=120)
    await asyncio.sleep(args.gap)
    recovery: dict[str, float | None] = {}
    survived: dict[str, bool] = {}
    for name, inject in faults(load).items():
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
    return Phase(recovery, survived, load.lost, load.duplicates, load.posted)


async def external_phase(args: argparse.Namespace, base: Path) -> Phase:
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
    services = [start_service("triage,bot", env, base, log)]

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
        return await fill_disk(args, server.pid, server.data_dir)

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

    def faults(_load: Load) -> dict[str, Fault]:
        return {
            "redis_sigterm": lambda: restart(signal.SIGTERM),
            "redis_sigkill": lambda: restart(signal.SIGKILL),
            "redis_oom": oom,
            "disk_full": disk_full,
            "aof_truncated": aof_truncated,
            "two_workers": two_workers,
        }

    try:
        async with open_redis(settings) as client:
            return await run_faults(args, api, client, services, faults)
    finally:
        for service in services:
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(stop_service, service)
        await api.stop()
        server.stop()


async def fill_disk(args: argparse.Namespace, pid: int, data_dir: Path) -> float:
    limit_file_size(pid, aof_size(data_dir) + 512)
    await asyncio.sleep(args.hold)
    limit_file_size(pid, None)
    return time.monotonic()


async def embedded_phase(args: argparse.Namespace, base: Path) -> Phase:
    data_dir = base / "embedded"
    api = BotApiServer(TOKEN, limits=Limits())
    await api.start()
    env = vigil_env(
        data_dir, BOT_TOKEN=TOKEN, BOT_API_URL=api.base_url, ADMIN_IDS="9000", LOG_LEVEL="INFO"
    )
    log = args.log or base / "service.log"
    services = [start_service("triage,bot", env, base, log)]
    server = EmbeddedRedis(data_dir)

    def server_pid() -> int:
        return int((data_dir / "redis.pid").read_text())

    async def disk_full() -> float:
        return await fill_disk(args, server_pid(), data_dir)

    async def sigkill() -> float:
        os.kill(server_pid(), signal.SIGKILL)  # the service notices and starts it again
        return time.monotonic()

    def faults(_load: Load) -> dict[str, Fault]:
        return {"embedded_disk_full": disk_full, "embedded_sigkill": sigkill}

    client = None
    try:
        for _ in range(1200):  # the service starts its server
            if server._ping():
                break
            await asyncio.sleep(0.05)
        client = server.client()
        return await run_faults(args, api, client, services, faults)
    finally:
        if client is not None:
            await client.aclose()
        for service in services:
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(stop_service, service)
        await api.stop()
        server.stop_if_last_sync()


async def main(args: argparse.Namespace) -> dict[str, object]:
    started = time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="vigil-faults-"))
    phases = [await external_phase(args, base), await embedded_phase(args, base)]
    recovery = {k: v for phase in phases for k, v in phase.recovery.items()}
    survived = sum(sum(phase.survived.values()) for phase in phases)
    lost = sum(phase.lost for phase in phases)
    duplicates = sum(phase.duplicates for phase in phases)
    times = [r for r in recovery.values() if r is not None]
    max_recovery = max(times) if times else None
    return {
        "bench": "faults",
        "faults": len(recovery),
        "survived": survived,
        "alerts_lost": lost,
        "duplicates": duplicates,
        "max_recovery_s": max_recovery,
        "recovery_s": recovery,
        "posts": sum(phase.posted for phase in phases),
        "bar_ok": survived == len(recovery)
        and lost == 0
        and duplicates <= len(recovery)
        and max_recovery is not None
        and max_recovery <= 10,
        "seconds": round(time.monotonic() - started, 1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=8.0, help="posts enqueued per second")
    parser.add_argument("--down", type=float, default=1.5, help="seconds Redis stays down")
    parser.add_argument("--hold", type=float, default=3.0, help="seconds OOM / full disk last")
    parser.add_argument("--gap", type=float, default=2.0, help="seconds between faults")
    parser.add_argument("--claim-idle", type=float, default=2.0, help="STREAM_CLAIM_IDLE_S")
    parser.add_argument("--log", type=Path, default=None, help="append the services' log here")
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
