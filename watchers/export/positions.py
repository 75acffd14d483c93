"""Where a problem is in a Telegram Desktop file, worded for the person who has to fix it.

`Positions` makes the ExportError for a bad message (its byte, its index in its chat, its id)
and for a syntax error (yajl's message reworded, the exact byte). The main pass only knows the
64 KiB block a problem showed in; `_locate` replays the file, on a file already known to be bad,
to find the exact byte.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import ijson

from watchers.export.common import CHUNK_SIZE, ExportError, ExportStats, blocks, first_block
from watchers.export.events import Chat, ChatKey, HeaderPass, Walker

_YAJL_REASONS: Final = (
    ("premature EOF", "truncated JSON: the file ends in the middle of the document"),
    ("invalid bytes in UTF8 string", "invalid UTF-8"),
    ("trailing garbage", "extra data after the end of the JSON document"),
)


def _yajl_reason(exc: Exception) -> str:
    text = str(exc)
    for needle, reason in _YAJL_REASONS:
        if needle in text:
            return reason
    first = text.split("\\n" if text.startswith("b'") else "\n", 1)[0]
    return "invalid JSON: " + first.removeprefix("b'")


class Positions:
    """Positioned ExportErrors for one file (`stats.bytes_total` already set)."""

    def __init__(self, path: Path, stats: ExportStats) -> None:
        self.path = path
        self.stats = stats

    @staticmethod
    def chat_label(chat: Chat) -> str:
        if chat.key[0] == "":
            return "messages"
        return f"{chat.key[0]}.list[{chat.key[1]}].messages"

    def message(
        self, chat: Chat, index: int, message: Any, block: int | None, reason: str
    ) -> ExportError:
        byte = _locate(self.path, block, (chat.key, index))
        msg_id = message.get("id") if isinstance(message, dict) else None
        ident = f" (id {msg_id})" if type(msg_id) is int else ""
        where = f"byte {byte}" if byte is not None else "byte ?"
        label = chat.name if isinstance(chat.name, str) else chat.id
        position = (
            f"{where}, {self.chat_label(chat)}[{index}]{ident}"
            f" (message #{index + 1} of chat {label!r})"
        )
        return ExportError(self.path, position, reason, byte=byte, message_index=index)

    def walker_syntax(self, exc: Exception, offset: int, walker: Walker) -> ExportError:
        chat = walker.current.get("") or next(reversed(walker.current.values()), None)
        return self.syntax(exc, offset, chat, chat.messages if chat else None)

    def syntax(
        self, exc: Exception, offset: int, chat: Chat | None, index: int | None
    ) -> ExportError:
        reason = _yajl_reason(exc)
        if "truncated" in reason:
            byte: int | None = self.stats.bytes_total
        else:
            byte = _locate(self.path, offset, None)
        if byte is None:
            byte = offset
        where = f"byte {byte}"
        if chat is not None and index is not None:
            where += f" (in {self.chat_label(chat)}[{index}], message #{index + 1})"
        return ExportError(self.path, where, reason, byte=byte, message_index=index)


def _find_message_block(path: Path, target: tuple[ChatKey, int]) -> int | None:
    """Offset of the 64 KiB block in which message `target` starts."""
    walk = HeaderPass()
    with path.open("rb") as fh:
        try:
            for offset, chunk in blocks(fh):
                walk.feed(chunk)
                if walk.started_after(target):
                    return offset
        except ijson.JSONError:
            return None
    return None


def _locate(path: Path, block: int | None, target: tuple[ChatKey, int] | None) -> int | None:
    """The exact byte offset of a syntax error (target None) or of the start of a message.

    The main pass feeds the parser 64 KiB blocks, so it knows at best the block in which a
    problem showed. Only ever run on a file already known to be bad: this replays the file up
    to that block (first finding the block where the message starts, when not known) and then
    feeds the block one byte at a time.
    """
    if block is None:
        if target is None:
            return None
        block = _find_message_block(path, target)
        if block is None:
            return None
    walk = HeaderPass()

    def reached() -> bool:
        return target is not None and walk.started_after(target)

    with path.open("rb") as fh:
        done, chunk = first_block(fh)
        try:
            while done < block and chunk:
                piece, chunk = chunk[: block - done], chunk[block - done :]
                walk.feed(piece)
                done += len(piece)
                if not chunk:
                    chunk = fh.read(CHUNK_SIZE)
            if reached():
                return None
            chunk += fh.read(max(0, CHUNK_SIZE - len(chunk)))
            for i in range(len(chunk)):
                try:
                    walk.feed(chunk[i : i + 1])
                except ijson.JSONError:
                    return done + i if target is None else None
                if reached():
                    return done + i
        except ijson.JSONError:
            return None
    return None
