"""The error a method handler raises: Telegram's status, wording and, for a 429, retry_after."""

from __future__ import annotations


class WaitTimeoutError(AssertionError):
    """`wait_for` gave up; the message lists what the server did receive."""


class ApiError(Exception):
    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after


def bad(description: str) -> ApiError:
    return ApiError(400, f"Bad Request: {description}")
