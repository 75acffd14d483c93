"""The error a method handler raises: Telegram's status, wording and, for a 429, retry_after."""

from __future__ import annotations


class WaitTimeoutError(AssertionError):
    """`wait_for` gave up; the message lists what the server did receive."""


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        description: str,
        retry_after: int | None = None,
        *,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after
        self.migrate_to_chat_id = migrate_to_chat_id  # a group upgraded to a supergroup


def bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")
