"""Vigil as a child process, the way an operator runs it: `python -m bot ...` in a clean
environment (no .env in its working directory, none of the caller's Vigil or Telegram
variables), for the end-to-end tests and the benchmarks."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.support.botapi import BotApiServer

VIGIL_PREFIXES = ("BOT_", "TG_", "ADMIN_", "REDIS_", "VIGIL_", "LOG_", "DELIVERY_", "STREAM_")


def vigil_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """The caller's environment without Vigil's settings, plus VIGIL_DATA_DIR and `settings`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(VIGIL_PREFIXES)}
    return {**clean, "VIGIL_DATA_DIR": str(data_dir), **settings}


def vigil(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 120, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run one `vigil` command to its end."""
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=cwd,
        input=stdin,
    )


async def start_interactive(
    *args: str, env: dict[str, str], cwd: Path
) -> asyncio.subprocess.Process:
    """One `vigil` command whose prompts the test answers on stdin (`vigil login`). It runs
    in a new session, without a controlling terminal, so getpass reads stdin as well instead
    of the developer's terminal."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )


async def approve_analyst(bot_api: BotApiServer, admin: int, analyst: int) -> None:
    """A stranger writes to the running bot, the admin presses Approve on the request."""
    await bot_api.wait_until(lambda: bot_api.commands_for("default") != [], timeout=60)
    await bot_api.send_text(analyst, "hello?")
    request = await bot_api.wait_for(
        lambda m: m.chat_id == admin and "Access request" in m.text, timeout=20
    )
    await bot_api.wait_for(lambda m: m.chat_id == analyst, timeout=10)  # request sent
    await bot_api.press_button(admin, request.message_id, "Approve")
    await bot_api.wait_for(lambda m: m.chat_id == analyst and "approved" in m.text)


def start_service(
    roles: str | Sequence[str], env: dict[str, str], cwd: Path, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """`vigil run --role ROLES` in the background; stderr (its log) goes to `log`."""
    role_list = roles if isinstance(roles, str) else ",".join(roles)
    out = log.open("ab") if log is not None else None
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--role", role_list],
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=out if out is not None else subprocess.DEVNULL,
        )
    finally:
        if out is not None:
            out.close()  # the child keeps its own copy


def stop_service(service: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """SIGTERM, as systemd stops it; the exit code (killed and raised if it hangs)."""
    if service.poll() is not None:
        return service.returncode
    service.send_signal(signal.SIGTERM)
    try:
        return service.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        service.kill()
        service.wait()
        raise


__all__ = [
    "approve_analyst",
    "start_interactive",
    "start_service",
    "stop_service",
    "vigil",
    "vigil_env",
]
