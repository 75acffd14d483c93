"""What both Telegram Desktop JSON paths share: one message dict to one `Post`, or a skip.

Each message of either path (`single_chat`, `full_account`) comes to `DesktopReader.post`,
which checks its id and type, skips what is not a channel post (counted by reason), completes a
chat header written after the messages (one light pass over the file, once: `read_headers`) and
has `convert.message_post` build the `Post`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ijson

from bot.models import Post
from watchers.export.common import ExportError, ExportStats, Progress, blocks
from watchers.export.convert import CHANNEL_TYPES, channel_id, message_post
from watchers.export.events import Chat, ChatKey, FixedParser, HeaderPass
from watchers.export.positions import Positions

log = logging.getLogger(__name__)


class DesktopReader:
    """One Telegram Desktop file being read: its options, its counters, its error positions."""

    def __init__(
        self, path: Path, username: str | None, stats: ExportStats, progress: Progress | None
    ) -> None:
        self.path = path
        self.username = username
        self.stats = stats
        self.progress = progress
        self.errors = Positions(path, stats)
        self._headers: dict[ChatKey, Chat] | None = None

    def send_blocks(
        self, parser: FixedParser, syntax_error: Callable[[Exception, int], ExportError]
    ) -> Iterator[tuple[int, int]]:
        """Sends the file to `parser` a block at a time, yielding the (start, end) offsets of
        each block sent, and then closes the parser. A syntax error raises
        `syntax_error(exc, offset)`, offset being that of the block (of the file's end, on
        close)."""
        with self.path.open("rb") as fh:
            for offset, chunk in blocks(fh):
                try:
                    parser.send(chunk)
                except ijson.JSONError as exc:
                    raise syntax_error(exc, offset) from None
                yield offset, offset + len(chunk)
            end = fh.tell()
        try:
            parser.close()
        except ijson.JSONError as exc:
            raise syntax_error(exc, end) from None

    def progressed(self, offset: int) -> None:
        if self.progress is not None:
            self.progress(offset, self.stats.bytes_total)

    def _header(self, chat: Chat) -> Chat:
        if chat.resolved or (chat.has_id and chat.type is not None):
            return chat
        chat.resolved = True
        # The chat's id/type come after its messages (not how Telegram writes them): read the
        # headers of every chat in one light pass, once.
        if self._headers is None:
            log.info("export %s: chat header after its messages; reading headers first", chat.key)
            self._headers, failure = read_headers(self.path)
            if failure is not None:
                raise self.errors.syntax(failure[0], failure[1], None, None)
        full = self._headers.get(chat.key)
        if full is not None:
            chat.name = chat.name if chat.name is not None else full.name
            chat.type = chat.type if chat.type is not None else full.type
            if not chat.has_id:
                chat.id, chat.has_id = full.id, full.has_id
        return chat

    def post(self, chat: Chat, index: int, m: Any, block: int | None) -> Post | None:
        def fail(reason: str) -> ExportError:
            return self.errors.message(chat, index, m, block, reason)

        if not isinstance(m, dict):
            raise fail(f"a message must be an object, not {type(m).__name__}")
        if "id" not in m:
            raise fail("message without 'id'")
        msg_id = m["id"]
        if isinstance(msg_id, str) and msg_id.isdigit():
            msg_id = int(msg_id)
        if type(msg_id) is not int or msg_id <= 0:
            raise fail(f"message 'id' must be a positive integer, not {msg_id!r}")
        kind = m.get("type", "message")
        if kind != "message":
            if kind in ("service", "unsupported"):
                self.stats.skipped[kind] += 1
                return None
            if not isinstance(kind, str):
                raise fail(f"message 'type' must be a string, not {type(kind).__name__}")
            self.stats.skipped[f"type {kind}"] += 1
            return None
        chat = self._header(chat)
        if chat.type is not None and chat.type not in CHANNEL_TYPES:
            self.stats.skipped[f"not a channel ({chat.type})"] += 1
            return None
        if chat.key[0] and self.username:
            raise ExportError(
                self.path,
                "option --channel",
                "--channel names one channel, but this is a full-account export of many "
                "chats; ingest it without --channel",
            )
        channel = channel_id(chat.id) if chat.has_id else None
        if channel is None:
            raise fail(f"the chat has no valid 'id' (got {chat.id!r})")
        if not chat.counted:
            chat.counted = True
            self.stats.chats += 1
        self.stats.read += 1
        return message_post(
            m,
            fail,
            self.stats,
            channel_id=channel,
            message_id=msg_id,
            username=self.username if not chat.key[0] else None,
            title=chat.name if isinstance(chat.name, str) else "",
        )


def read_headers(path: Path) -> tuple[dict[ChatKey, Chat], tuple[Exception, int] | None]:
    """Every chat's name/type/id, without building messages (one full pass over events).

    Also returns the syntax error that stopped the pass, if any, with its block offset.
    """
    walk = HeaderPass()
    offset = 0
    with path.open("rb") as fh:
        try:
            for offset, chunk in blocks(fh):  # noqa: B007 (the offset is read after the loop)
                walk.feed(chunk)
            offset = fh.tell()
            walk.finish()
        except ijson.JSONError as exc:
            return walk.walker.chats, (exc, offset)
    return walk.walker.chats, None
