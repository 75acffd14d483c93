"""Telegram Desktop JSON as parser events: the escape fix, the event walker, the header pass.

ijson's push parser turns 64 KiB blocks into events; `Walker` turns those into one message at
a time per chat (or, with build=False, only counts messages and keeps each chat's header).
`HeaderPass` is that light walk fed raw bytes, used by the rare paths: the single-chat sniff,
reading headers written after the messages, and locating an error exactly.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Final

import ijson

ChatKey = tuple[str, int]  # ("", 0) for a single-chat export, ("chats" | "left_chats", index)


class EscapeFixer:
    """Rewrites Telegram Desktop's non-JSON `\\xHH` string escapes to `\\u00HH`.

    Telegram Desktop escapes control characters other than \\n, \\r and \\t as `\\x0B` and
    the like (export_output_json.cpp, SerializeString), which is not JSON: without this a
    gigabyte export with one vertical tab in it could not be read at all.
    """

    _ESCAPE = re.compile(rb"(\\+)x")

    def __init__(self) -> None:
        self._carry = b""

    @staticmethod
    def _fix(match: re.Match[bytes]) -> bytes:
        slashes = match.group(1)
        if len(slashes) % 2:
            return slashes[:-1] + b"\\u00"
        return match.group(0)

    def feed(self, chunk: bytes) -> bytes:
        data = self._carry + chunk if self._carry else chunk
        self._carry = b""
        # A backslash run near the end may continue in the next block: hold it back.
        tail = data.rfind(b"\\", max(0, len(data) - 4))
        if tail != -1:
            while tail > 0 and data[tail - 1] == 0x5C:
                tail -= 1
            data, self._carry = data[:tail], data[tail:]
        if b"\\x" in data:
            data = self._ESCAPE.sub(self._fix, data)
        return data

    def flush(self) -> bytes:
        data, self._carry = self._carry, b""
        return self._ESCAPE.sub(self._fix, data) if b"\\x" in data else data


@dataclass
class Chat:
    key: ChatKey
    name: str | None = None
    type: str | None = None
    id: Any = None
    has_id: bool = False
    messages: int = 0  # messages seen so far (index of the next one)
    started: int = 0  # messages whose start was seen
    counted: bool = False
    resolved: bool = False  # header completed from the light header pass


# prefix of a chat object -> section; prefix of a chat's header field -> (section, field);
# prefix of a message object -> section.
_CHAT_PREFIXES: Final = {"chats.list.item": "chats", "left_chats.list.item": "left_chats"}
_HEADER_PREFIXES: Final = {
    **{name: ("", name) for name in ("name", "type", "id")},
    **{
        f"{prefix}.{name}": (section, name)
        for prefix, section in _CHAT_PREFIXES.items()
        for name in ("name", "type", "id")
    },
}
_MESSAGE_PREFIXES: Final = {
    "messages.item": "",
    **{f"{prefix}.messages.item": section for prefix, section in _CHAT_PREFIXES.items()},
}
_MESSAGES_FIELDS: Final = frozenset(p.removesuffix(".item") for p in _MESSAGE_PREFIXES)
_JSON_TYPES: Final = {
    "start_map": "an object",
    "string": "a string",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
}
_SCALARS: Final = frozenset({"string", "number", "null", "boolean"})
_OPEN: Final = frozenset({"start_map", "start_array"})
_CLOSE: Final = frozenset({"end_map", "end_array"})


class Walker:
    """Turns parser events into (chat, message index, message dict), one message at a time."""

    def __init__(self, *, build: bool = True) -> None:
        self.build = build
        self.chats: dict[ChatKey, Chat] = {}
        self.current: dict[str, Chat] = {}  # section -> chat being read
        self.counts: Counter[str] = Counter()
        self.root: str | None = None
        self.top_keys: set[str] = set()
        self.out: list[tuple[Chat, int, Any, int]] = []  # chat, index, message, block
        self.block = 0  # file offset of the block being fed (set by the reader)
        self._msg_block = 0
        self._stack: list[Any] = []
        self._key: str = ""
        self._msg_chat: Chat | None = None
        self.problem: str | None = None

    def chat(self, section: str) -> Chat:
        chat = self.current.get(section)
        if chat is None:  # the single-chat root
            chat = self.current[section] = self.chats[(section, 0)] = Chat((section, 0))
        return chat

    def feed(self, events: list[tuple[str, str, Any]]) -> None:
        stack = self._stack
        for prefix, event, value in events:
            if stack:  # inside a message: build it
                if event == "map_key":
                    self._key = value
                    continue
                if event in _CLOSE:
                    done = stack.pop()
                    if not stack:
                        assert self._msg_chat is not None
                        chat = self._msg_chat
                        if self.build:
                            self.out.append((chat, chat.messages, done, self._msg_block))
                        chat.messages += 1
                    continue
                if event == "start_map":
                    item: Any = {}
                elif event == "start_array":
                    item = []
                else:
                    item = value
                parent = stack[-1]
                if type(parent) is dict:
                    parent[self._key] = item
                else:
                    parent.append(item)
                if event in _OPEN:
                    stack.append(item)
                continue
            section = _MESSAGE_PREFIXES.get(prefix)
            if section is not None:  # a message starts (a non-object one is refused later)
                chat = self._msg_chat = self.chat(section)
                chat.started += 1
                self._msg_block = self.block
                if event == "start_map":
                    stack.append({})
                elif event == "start_array":
                    stack.append([])
                else:
                    if self.build:
                        self.out.append((chat, chat.messages, value, self.block))
                    chat.messages += 1
                continue
            if event == "start_map":
                section = _CHAT_PREFIXES.get(prefix)
                if section is not None:
                    index = self.counts[section]
                    self.counts[section] += 1
                    chat = Chat((section, index))
                    self.current[section] = self.chats[chat.key] = chat
                elif prefix == "" and self.root is None:
                    self.root = "object"
            elif event in _SCALARS:
                where = _HEADER_PREFIXES.get(prefix)
                if where is not None:
                    chat = self.chat(where[0])
                    if where[1] == "id":
                        chat.id, chat.has_id = value, True
                    else:
                        setattr(chat, where[1], value)
                elif prefix == "" and self.root is None:
                    self.root = event
            elif event == "map_key" and prefix == "":
                self.top_keys.add(value)
            elif event == "start_array" and prefix == "" and self.root is None:
                self.root = "array"
            if prefix in _MESSAGES_FIELDS and event in _JSON_TYPES and self.problem is None:
                self.problem = f"'{prefix}' must be a list of messages, not {_JSON_TYPES[event]}"


class FixedParser:
    """An ijson push parser fed through an `EscapeFixer`. ijson.JSONError out of `send` or
    `close` means the bytes sent so far do not parse."""

    def __init__(self, parser: Any) -> None:
        self._parser = parser
        self._fixer = EscapeFixer()

    def send(self, chunk: bytes) -> None:
        self._parser.send(self._fixer.feed(chunk))

    def close(self) -> None:
        rest = self._fixer.flush()
        if rest:  # an empty send would end the parser
            self._parser.send(rest)
        self._parser.close()


class HeaderPass:
    """A header-only walk (no messages built), fed bytes as they come. ijson.JSONError out of
    `feed` or `finish` means the bytes fed so far do not parse."""

    def __init__(self) -> None:
        self.walker = Walker(build=False)
        self._events = ijson.sendable_list()
        self._parser = FixedParser(ijson.parse_coro(self._events, use_float=True))

    def feed(self, data: bytes) -> None:
        self._parser.send(data)
        self._walk()

    def finish(self) -> None:
        self._parser.close()
        self._walk()

    def _walk(self) -> None:
        self.walker.feed(self._events)
        del self._events[:]

    def started_after(self, target: tuple[ChatKey, int]) -> bool:
        """Whether the walk has reached the start of message `target` (chat, index)."""
        chat = self.walker.chats.get(target[0])
        return chat is not None and chat.started > target[1]
