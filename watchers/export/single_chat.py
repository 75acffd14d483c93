"""The single-chat export reader (`result.json` of one channel), the common case and the fast one.

When the chat's `name`, `type` and `id` come before its `messages`, as Telegram Desktop writes
them, `sniff_single_chat` learns them from the first block and the messages are built by
ijson's C `items` one at a time, never the whole file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import ijson

from bot.models import Post
from watchers.export.common import ExportError, blocks
from watchers.export.desktop import DesktopReader
from watchers.export.events import Chat, FixedParser, HeaderPass


def sniff_single_chat(path: Path) -> Chat | None:
    """The header of a single-chat export when it precedes the messages, else None.

    Reads until the first message starts (normally within the first block). None sends the
    reader down the general path: a full-account export, a header after the messages, or a
    file that does not parse (the general path reports where).
    """
    walk = HeaderPass()
    walker = walk.walker
    with path.open("rb") as fh:
        try:
            for _offset, chunk in blocks(fh):
                walk.feed(chunk)
                if walker.problem is not None or walker.top_keys & {"chats", "left_chats"}:
                    return None
                chat = walker.chats.get(("", 0))
                if chat is not None and chat.started:
                    ready = chat.has_id and chat.type is not None and walker.root == "object"
                    return chat if ready else None
        except ijson.JSONError:
            return None
    return None


def single_chat_posts(reader: DesktopReader, chat: Chat) -> Iterator[Post]:
    """The posts of a single-chat export whose header is already known."""
    items = ijson.sendable_list()
    parser = FixedParser(ijson.items_coro(items, "messages.item", use_float=True))
    index = 0

    def syntax_error(exc: Exception, offset: int) -> ExportError:
        return reader.errors.syntax(exc, offset, chat, index)

    def built() -> Iterator[Post]:
        nonlocal index
        for message in items:
            post = reader.post(chat, index, message, None)
            index += 1
            if post is not None:
                yield post
        del items[:]

    for _start, end in reader.send_blocks(parser, syntax_error):
        yield from built()
        reader.stats.bytes_read = end
        reader.progressed(end)
    yield from built()
