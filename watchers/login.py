"""`vigil login`: the one interactive step (phone, code, 2FA password through getpass)."""

from __future__ import annotations

import asyncio
import getpass
import os
from typing import Any

from telethon import errors

from bot.config import Settings
from watchers.client import (
    TelegramUnreachableError,
    connect,
    make_client,
    session_names,
    session_path,
)


class LoginError(RuntimeError):
    """The login could not finish; str() says why, for the person at the terminal."""


def _describe(me: Any) -> str:
    name = " ".join(p for p in (me.first_name, me.last_name) if p) or "(no name)"
    handle = f" @{me.username}" if getattr(me, "username", None) else ""
    return f"{name}{handle} (id {me.id})"


async def _ask(prompt: str, *, secret: bool = False) -> str:
    reader = getpass.getpass if secret else input
    return (await asyncio.to_thread(reader, prompt)).strip()


async def login(settings: Settings, name: str | None) -> str:
    """Log a Telegram account into session `name` (default: the first of TG_SESSION).

    Returns a line saying who is logged in and where the session file is.
    """
    name = name or session_names(settings)[0]
    client = make_client(settings, name, create=True)
    path = session_path(settings, name)
    try:
        await connect(client, name)
    except TelegramUnreachableError as exc:
        raise LoginError(str(exc)) from None
    try:
        me = await _sign_in(client)
    except (EOFError, KeyboardInterrupt):
        raise LoginError(
            "login cancelled before it finished; the session is not logged in"
        ) from None
    except (errors.PhoneNumberInvalidError, errors.PhoneNumberUnoccupiedError):
        raise LoginError(
            "Telegram knows no account with that phone number (international format, "
            "e.g. +447700900123)"
        ) from None
    except (errors.PhoneNumberBannedError, errors.PhoneNumberFloodError) as exc:
        raise LoginError(f"Telegram refused the phone number: {exc}") from None
    except errors.FloodWaitError as exc:
        raise LoginError(
            f"Telegram asks to wait {exc.seconds} s before the next login attempt"
        ) from None
    finally:
        await client.disconnect()
    os.chmod(path, 0o600)
    line = f"Logged in as {_describe(me)}; session {name!r} saved to {path}"
    print(line)
    return line


async def _sign_in(client: Any) -> Any:
    """The prompts: phone, code (again if mistyped), 2FA password (again if wrong)."""
    if not await client.is_user_authorized():
        phone = await _ask("Phone number (international format, e.g. +44...): ")
        await client.send_code_request(phone)
        while True:
            code = await _ask("The code Telegram sent you: ")
            try:
                await client.sign_in(phone=phone, code=code)
                break
            except errors.PhoneCodeInvalidError:
                print("That code is not right; try again.")
            except errors.SessionPasswordNeededError:
                while True:
                    password = await _ask("Two-step verification password: ", secret=True)
                    try:
                        await client.sign_in(password=password)
                        break
                    except errors.PasswordHashInvalidError:
                        print("Wrong password; try again.")
                break
    return await client.get_me()
