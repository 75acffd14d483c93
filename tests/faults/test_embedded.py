"""The embedded Redis at start and at rest: a torn last write in its AOF is cut off and said;
a damaged AOF stops `vigil` with a sentence naming the fix (`redis-check-aof --fix`), and the
fix as written works; the server listens on no TCP port, and its socket, data dir and files
are this user's only; killed under a running service, it is started again by the service."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import stat
import subprocess
from pathlib import Path

import pytest

from bot.storage.connection import EmbeddedRedis, EmbeddedRedisError
from bot.storage.posts import PostQueue
from tests.faults.harness import Load
from tests.support.botapi import BotApiServer, Limits
from tests.support.service import start_service, stop_service, vigil, vigil_env


def _filled(data_dir: Path, keys: int = 50) -> EmbeddedRedis:
    """An embedded server on `data_dir` that held `keys` keys and was shut down."""
    server = EmbeddedRedis(data_dir)
    server.start_sync()
    client = server._sync_client(timeout=5)
    try:
        for i in range(keys):
            client.set(f"k{i}", f"v{i} ✓ <&>")
    finally:
        client.close()
    server.stop_if_last_sync()
    return server


def _count_keys(server: EmbeddedRedis) -> int:
    client = server._sync_client(timeout=5)
    try:
        return int(client.dbsize())
    finally:
        client.close()


def test_a_torn_last_write_is_cut_off_and_said(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = _filled(data_dir)
    with server.aof_path.open("ab") as fh:  # the process died in the middle of a write
        fh.write(b"*3\r\n$3\r\nSET\r\n$4\r\nlost\r\n$10\r\nhal")
    caplog.set_level(logging.WARNING, "bot.storage.connection")
    server = EmbeddedRedis(data_dir)
    server.start_sync()
    try:
        assert _count_keys(server) == 50  # every complete write survived; the torn one did not
    finally:
        server.stop_if_last_sync()
    warning = caplog.text
    assert "torn write" in warning and str(server.aof_path) in warning
    assert "redis-check-aof --fix" in warning


def test_a_damaged_aof_names_the_fix_and_the_fix_works(data_dir: Path, tmp_path: Path) -> None:
    server = _filled(data_dir)
    body = server.aof_path.read_bytes()
    middle = len(body) // 2
    server.aof_path.write_bytes(body[:middle] + b"garbage\r\n" + body[middle:])

    with pytest.raises(EmbeddedRedisError) as refused:
        EmbeddedRedis(data_dir).start_sync()
    message = str(refused.value)
    assert f"redis-check-aof --fix {server.aof_path}" in message

    # As an operator meets it: `vigil status` says it in one sentence, no traceback.
    shown = vigil("status", env=vigil_env(data_dir), cwd=tmp_path, timeout=60)
    assert shown.returncode == 1
    assert "redis-check-aof --fix" in shown.stderr and "Traceback" not in shown.stderr

    # The fix as the message gives it (the tool linked next to a copy, not in the venv).
    binary = message.split("`ln -s ")[1].split(" ")[0]
    checker = tmp_path / "redis-check-aof"
    checker.symlink_to(binary)
    fixed = subprocess.run(
        [str(checker), "--fix", str(server.aof_path)],
        input="y\n",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    server = EmbeddedRedis(data_dir)
    server.start_sync()
    try:
        assert 0 < _count_keys(server) < 50  # what lay before the damage is back
    finally:
        server.stop_if_last_sync()


def _listening_inodes() -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # LISTEN
                inodes.add(fields[9])
    return inodes


def test_the_embedded_server_is_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)  # made by a lax umask: Vigil tightens it
    data_dir.chmod(0o755)
    server = EmbeddedRedis(data_dir)
    server.start_sync()
    try:
        assert server._process is not None
        client = server._sync_client(timeout=5)
        try:
            assert client.config_get("port") == {"port": "0"}
            client.set("x", "1")
            client.bgrewriteaof()
        finally:
            client.close()
        pid = server._process.pid
        fd_dir = Path(f"/proc/{pid}/fd")
        sockets = {
            os.readlink(fd).removeprefix("socket:[").rstrip("]")
            for fd in fd_dir.iterdir()
            if os.readlink(fd).startswith("socket:")
        }
        assert sockets, "the server holds its unix socket"
        assert not sockets & _listening_inodes(), "the embedded server listens on TCP"
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
        socket_mode = server.socket_path.stat().st_mode
        assert stat.S_ISSOCK(socket_mode) and stat.S_IMODE(socket_mode) & 0o077 == 0
        files = [p for p in data_dir.iterdir() if p.is_file() and p != server.socket_path]
        assert {p.name for p in files} >= {"redis.conf", "appendonly.aof", "redis.log"}
        for path in files:
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    finally:
        server.stop_if_last_sync()


@pytest.mark.slow
@pytest.mark.timeout(170)
async def test_the_service_starts_its_embedded_redis_again_after_a_kill(tmp_path: Path) -> None:
    """`vigil run --role triage,bot` on the embedded Redis it started itself; the redis-server
    is killed (SIGKILL) while posts arrive and alerts go out. The service starts it again on
    the same data, and every alert arrives (at most one duplicate: the send in flight)."""
    data_dir = tmp_path / "data"
    api = BotApiServer("123456:FAULT-EMBEDDED", limits=Limits())
    await api.start()
    env = vigil_env(data_dir, BOT_TOKEN=api.token, BOT_API_URL=api.base_url, ADMIN_IDS="9000")
    log_path = tmp_path / "service.log"
    service = start_service("triage,bot", env, tmp_path, log_path)
    client = None
    try:
        server = EmbeddedRedis(data_dir)
        for _ in range(600):  # the service starts its server
            if server._ping():
                break
            await asyncio.sleep(0.05)
        client = server.client()
        load = Load(api)
        await load.setup(client)
        queue = PostQueue(client)
        await load.feed(queue, 5, rate=10)
        await api.wait_until(lambda: bool(load.delivered()), timeout=60)
        feeding = asyncio.create_task(load.feed(queue, 30, rate=15))
        await asyncio.sleep(0.7)
        first_pid = int((data_dir / "redis.pid").read_text())
        os.kill(first_pid, signal.SIGKILL)
        await feeding
        await load.settle(90)
        assert service.poll() is None, log_path.read_text()[-3000:]
        assert int((data_dir / "redis.pid").read_text()) != first_pid
    finally:
        if client is not None:
            await client.aclose()
        await asyncio.to_thread(stop_service, service)
        await api.stop()
    log = log_path.read_text()
    assert load.lost == 0, (sorted(load.expected - set(load.delivered()))[:10], log[-3000:])
    assert load.duplicates <= 1, load.duplicates
    assert "embedded redis: no answer on" in log and "starting it again" in log
    assert "Traceback" not in log, log[-3000:]
    assert not EmbeddedRedis(data_dir)._ping()  # the service shut it down when it left
