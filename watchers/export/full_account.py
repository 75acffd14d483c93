"""The general Telegram Desktop reader: full-account exports, and headers after the messages.

A full-account export is ``{"about", ..., "chats": {"list": [chat, ...]}, "left_chats": ...}``
with each chat shaped as a single-chat export; posts of every channel and supergroup are read,
other chats (personal, bots, basic groups, saved messages) are skipped and counted. Parser
events are walked in Python (`events.Walker`), so any order of keys is understood, and the
document's shape is checked once the file has been read.
"""

from __future__ import annotations

from collections.abc import Iterator

import ijson

from bot.models import Post
from watchers.export.common import ExportError
from watchers.export.desktop import DesktopReader
from watchers.export.events import FixedParser, Walker


def walked_posts(reader: DesktopReader) -> Iterator[Post]:
    """Any shape (full-account exports, headers after messages): events walked in Python."""
    walker = Walker()
    events = ijson.sendable_list()
    parser = FixedParser(ijson.parse_coro(events, use_float=True))

    def syntax_error(exc: Exception, offset: int) -> ExportError:
        return reader.errors.walker_syntax(exc, offset, walker)

    for start, end in reader.send_blocks(parser, syntax_error):
        walker.block = start
        walker.feed(events)
        del events[:]
        if walker.problem is not None:
            raise ExportError(reader.path, f"bytes {start}-{end}", walker.problem, byte=start)
        reader.stats.bytes_read = end
        yield from _convert(reader, walker)
        reader.progressed(end)
    walker.feed(events)
    yield from _convert(reader, walker)
    _check_document(reader, walker)


def _check_document(reader: DesktopReader, walker: Walker) -> None:
    if walker.root != "object":
        found = {"array": "a JSON list"}.get(walker.root or "", f"a JSON {walker.root}")
        raise ExportError(
            reader.path, "byte 0", f"the top level is {found}; expected an object", byte=0
        )
    if not walker.chats and not ({"messages", "chats", "left_chats"} & walker.top_keys):
        raise ExportError(
            reader.path,
            "top level",
            "not a Telegram Desktop export: no 'messages' (one chat) or 'chats' "
            "(full-account export) found",
            byte=0,
        )


def _convert(reader: DesktopReader, walker: Walker) -> Iterator[Post]:
    if not walker.out:
        return
    batch, walker.out = walker.out, []
    for chat, index, message, block in batch:
        post = reader.post(chat, index, message, block)
        if post is not None:
            yield post
