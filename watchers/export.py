"""Read Telegram Desktop exports and Vigil JSON Lines into `bot.models.Post`, streaming.

Real exports run to gigabytes, so nothing here loads a file whole: JSON is pushed through
ijson's C parser (yajl2) in 64 KiB blocks and only one message at a time is built as a dict.

Shapes understood (detected by content, never by file name):
- a single-chat export, `result.json`: ``{"name", "type", "id", "messages": [...]}``;
- a full-account export: ``{"about", ..., "chats": {"list": [chat, ...]}, "left_chats": ...}``
  where each chat is shaped as above; posts of every channel and supergroup are read, other
  chats (personal, bots, basic groups, saved messages) are skipped and counted;
- JSON Lines in Vigil's own post schema (docs/POST_SCHEMA.md), one post per line.

Telegram Desktop writes a chat's `name`, `type` and `id` before its `messages`. When a
hand-edited file puts them after the messages, the reader makes one extra light pass over the
file that reads only those header fields (no message is built) and then carries on; nothing is
buffered in memory.

Album items are separate messages in an export and the export carries no album id: items sent
in the same second with consecutive ids may or may not be one album, so they are NOT joined and
each becomes its own post (with its own caption).
"""

from __future__ import annotations

import codecs
import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import ijson

from bot.models import Forward, Post, PostFormatError

log = logging.getLogger(__name__)

CHUNK_SIZE: Final = 64 * 1024
Format = Literal["telegram", "jsonl"]
Progress = Callable[[int, int], None]
ChatKey = tuple[str, int]  # ("", 0) for a single-chat export, ("chats" | "left_chats", index)

CHANNEL_TYPES: Final = frozenset(
    {"public_channel", "private_channel", "public_supergroup", "private_supergroup"}
)

# Top-level keys of Vigil's own post schema: a file whose first key is one of these is JSONL.
_POST_KEYS: Final = frozenset(
    {
        "channel_id",
        "message_id",
        "date",
        "text",
        "username",
        "title",
        "edit_date",
        "urls",
        "media",
        "views",
        "forwards",
        "forward",
        "grouped_id",
        "event",
        "source",
        "extra",
    }
)

# Telegram Desktop's `media_type` values -> Vigil media kinds (the live watcher's names).
_MEDIA_TYPES: Final = {
    "sticker": "sticker",
    "video_message": "video_note",
    "voice_message": "voice",
    "animation": "gif",
    "video_file": "video",
    "audio_file": "audio",
}
# Keys whose presence tells the media kind when there is no `media_type`.
_MEDIA_KEYS: Final = (
    ("photo", "photo"),
    ("file", "document"),
    ("poll", "poll"),
    ("place_name", "venue"),
    ("location_information", "geo"),
    ("contact_information", "contact"),
    ("game_title", "game"),
    ("invoice_information", "invoice"),
)
_LINK_ENTITIES: Final = frozenset({"link", "text_link"})
_USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{3,31}")
_FIRST_KEY = re.compile(rb'\A\s*\{\s*"((?:[^"\\]|\\.){0,200})"')
_BOM: Final = codecs.BOM_UTF8


class ExportError(ValueError):
    """A file that cannot be ingested. str() names the file, the position and the reason."""

    def __init__(
        self,
        path: Path | str,
        position: str,
        reason: str,
        *,
        byte: int | None = None,
        line: int | None = None,
        message_index: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.position = position
        self.reason = reason
        self.byte = byte
        self.line = line
        self.message_index = message_index
        super().__init__(f"{self.path}: {position}: {reason}")


@dataclass
class ExportStats:
    """Counters filled while a file is read (mutable: the reader adds to it as it goes)."""

    read: int = 0  # posts produced
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> messages skipped
    chats: int = 0  # chats (channels) that produced posts
    dates_assumed_utc: int = 0  # old exports without date_unixtime: local `date` read as UTC
    bytes_read: int = 0
    bytes_total: int = 0
    format: Format | None = None


def parse_channel_option(text: str) -> str:
    """'@name', 'name' or 't.me/name' -> 'name'. Raises ValueError for anything else."""
    value = text.strip()
    for prefix in ("https://", "http://"):
        value = value.removeprefix(prefix)
    value = value.removeprefix("t.me/").removeprefix("telegram.me/").lstrip("@").rstrip("/")
    if not _USERNAME.fullmatch(value):
        raise ValueError(f"{text!r} is not a channel @username (5-32 letters, digits or _)")
    return value


def resolve_path(path: Path) -> Path:
    """A directory Telegram Desktop exported into stands for the result.json inside it."""
    if path.is_dir() and (path / "result.json").is_file():
        return path / "result.json"
    return path


def detect_format(path: Path) -> Format:
    """Telegram Desktop export or Vigil JSON Lines, by the file's first bytes."""
    with path.open("rb") as fh:
        head = fh.read(CHUNK_SIZE)
    head = head.removeprefix(_BOM)
    stripped = head.lstrip()
    if not stripped:
        raise ExportError(path, "byte 0", "the file is empty", byte=0)
    first = stripped[:1]
    start = len(head) - len(stripped)
    if first == b"[":
        raise ExportError(
            path,
            f"byte {start}",
            "the top level is a JSON list; expected an object (a Telegram Desktop export "
            "result.json) or JSON Lines (one post object per line)",
            byte=start,
        )
    if first != b"{":
        hint = ""
        if stripped[:15].lower().startswith((b"<!doctype", b"<html")):
            hint = " (this looks like an HTML export: export the chat again as JSON)"
        raise ExportError(
            path,
            f"byte {start}",
            f"not JSON: the file starts with {stripped[:20]!r}{hint}",
            byte=start,
        )
    match = _FIRST_KEY.match(stripped)
    if match is not None and match.group(1).decode("utf-8", "replace") in _POST_KEYS:
        return "jsonl"
    return "telegram"


def iter_export(
    path: Path,
    *,
    channel: str | None = None,
    stats: ExportStats | None = None,
    progress: Progress | None = None,
) -> Iterator[Post]:
    """Posts of a Telegram Desktop export or a JSON Lines file, in file order.

    `channel` is the exported channel's @username (exports don't carry it); it makes post links
    public (t.me/<username>/<id>). `progress(bytes_done, bytes_total)` is called after each
    block read; `stats` is filled as the file is read. Raises ExportError on a malformed file
    (possibly after some posts were yielded: validate the whole file first if that matters).
    """
    path = resolve_path(Path(path))
    stats = stats if stats is not None else ExportStats()
    username = None
    if channel:
        try:
            username = parse_channel_option(channel)
        except ValueError as exc:
            raise ExportError(path, "option --channel", str(exc)) from exc
    try:
        fmt = detect_format(path)
        stats.format = fmt
        stats.bytes_total = path.stat().st_size
    except OSError as exc:
        raise ExportError(path, "byte 0", f"cannot read the file: {exc.strerror}") from exc
    if fmt == "jsonl":
        yield from _iter_jsonl(path, username, stats, progress)
    else:
        yield from _TelegramReader(path, username, stats, progress).posts()


# --- JSON Lines ------------------------------------------------------------------------------


def _iter_jsonl(
    path: Path, username: str | None, stats: ExportStats, progress: Progress | None
) -> Iterator[Post]:
    offset = 0
    with path.open("rb") as fh:
        for line_no, raw in enumerate(fh, 1):
            line_start = offset
            offset += len(raw)
            if line_no == 1:
                raw = raw.removeprefix(_BOM)
                line_start += offset - line_start - len(raw)
            stats.bytes_read = offset
            if progress is not None and line_no % 1000 == 0:
                progress(offset, stats.bytes_total)
            if not raw.strip():
                continue
            yield _jsonl_post(path, raw, line_no, line_start, username)
            stats.read += 1
    if progress is not None:
        progress(offset, stats.bytes_total)


def _jsonl_post(path: Path, raw: bytes, line_no: int, start: int, username: str | None) -> Post:
    def error(reason: str, byte: int = start, column: int | None = None) -> ExportError:
        where = f"line {line_no}" + (f", column {column}" if column is not None else "")
        return ExportError(path, f"{where} (byte {byte})", reason, byte=byte, line=line_no)

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error("invalid UTF-8", start + exc.start) from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        byte = start + len(text[: exc.pos].encode("utf-8"))
        raise error(f"invalid JSON: {exc.msg}", byte, exc.colno) from exc
    try:
        post = Post.from_dict(data)
    except PostFormatError as exc:
        raise error(str(exc)) from exc
    if isinstance(data, dict) and "source" not in data:
        post = replace(post, source="jsonl")
    if username and not post.username:
        post = replace(post, username=username)
    return post


# --- Telegram Desktop JSON -------------------------------------------------------------------


class _EscapeFixer:
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
class _Chat:
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


class _Walker:
    """Turns parser events into (chat, message index, message dict), one message at a time."""

    def __init__(self, *, build: bool = True) -> None:
        self.build = build
        self.chats: dict[ChatKey, _Chat] = {}
        self.current: dict[str, _Chat] = {}  # section -> chat being read
        self.counts: Counter[str] = Counter()
        self.root: str | None = None
        self.top_keys: set[str] = set()
        self.out: list[tuple[_Chat, int, Any, int]] = []  # chat, index, message, block
        self.block = 0  # file offset of the block being fed (set by the reader)
        self._msg_block = 0
        self._stack: list[Any] = []
        self._key: str = ""
        self._msg_chat: _Chat | None = None
        self.problem: str | None = None

    def chat(self, section: str) -> _Chat:
        chat = self.current.get(section)
        if chat is None:  # the single-chat root
            chat = self.current[section] = self.chats[(section, 0)] = _Chat((section, 0))
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
                    chat = _Chat((section, index))
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


class _TelegramReader:
    def __init__(
        self, path: Path, username: str | None, stats: ExportStats, progress: Progress | None
    ) -> None:
        self.path = path
        self.username = username
        self.stats = stats
        self.progress = progress
        self._headers: dict[ChatKey, _Chat] | None = None

    def posts(self) -> Iterator[Post]:
        chat = _sniff_single_chat(self.path)
        if chat is not None:
            yield from self._single_chat_posts(chat)
        else:
            yield from self._walked_posts()

    def _single_chat_posts(self, chat: _Chat) -> Iterator[Post]:
        """The common case, fast: messages built by ijson's C `items` (header already known)."""
        items = ijson.sendable_list()
        parser = ijson.items_coro(items, "messages.item", use_float=True)
        fixer = _EscapeFixer()
        total = self.stats.bytes_total
        index = 0
        with self.path.open("rb") as fh:
            offset, chunk = _first_block(fh)
            while chunk:
                try:
                    parser.send(fixer.feed(chunk))
                except ijson.JSONError as exc:
                    raise self._syntax_error(exc, offset, chat, index) from None
                offset += len(chunk)
                for message in items:
                    post = self._post(chat, index, message, None)
                    index += 1
                    if post is not None:
                        self.stats.read += 1
                        yield post
                del items[:]
                self.stats.bytes_read = offset
                if self.progress is not None:
                    self.progress(offset, total)
                chunk = fh.read(CHUNK_SIZE)
            try:
                rest = fixer.flush()
                if rest:  # an empty send would end the parser
                    parser.send(rest)
                parser.close()
            except ijson.JSONError as exc:
                raise self._syntax_error(exc, offset, chat, index) from None
            for message in items:
                post = self._post(chat, index, message, None)
                index += 1
                if post is not None:
                    self.stats.read += 1
                    yield post

    def _walked_posts(self) -> Iterator[Post]:
        """Any shape (full-account exports, headers after messages): events walked in Python."""
        walker = _Walker()
        events = ijson.sendable_list()
        parser = ijson.parse_coro(events, use_float=True)
        fixer = _EscapeFixer()
        total = self.stats.bytes_total
        with self.path.open("rb") as fh:
            offset, chunk = _first_block(fh)
            while chunk:
                walker.block = offset
                try:
                    parser.send(fixer.feed(chunk))
                except ijson.JSONError as exc:
                    raise self._walker_syntax_error(exc, offset, walker) from None
                walker.feed(events)
                del events[:]
                if walker.problem is not None:
                    raise ExportError(
                        self.path,
                        f"bytes {offset}-{offset + len(chunk)}",
                        walker.problem,
                        byte=offset,
                    )
                offset += len(chunk)
                self.stats.bytes_read = offset
                yield from self._convert(walker)
                if self.progress is not None:
                    self.progress(offset, total)
                chunk = fh.read(CHUNK_SIZE)
            try:
                rest = fixer.flush()
                if rest:  # an empty send would end the parser
                    parser.send(rest)
                parser.close()
            except ijson.JSONError as exc:
                raise self._walker_syntax_error(exc, offset, walker) from None
            walker.feed(events)
            yield from self._convert(walker)
        self._check_document(walker)

    def _check_document(self, walker: _Walker) -> None:
        if walker.root != "object":
            found = {"array": "a JSON list"}.get(walker.root or "", f"a JSON {walker.root}")
            raise ExportError(
                self.path, "byte 0", f"the top level is {found}; expected an object", byte=0
            )
        if not walker.chats and not ({"messages", "chats", "left_chats"} & walker.top_keys):
            raise ExportError(
                self.path,
                "top level",
                "not a Telegram Desktop export: no 'messages' (one chat) or 'chats' "
                "(full-account export) found",
                byte=0,
            )

    def _convert(self, walker: _Walker) -> Iterator[Post]:
        if not walker.out:
            return
        batch, walker.out = walker.out, []
        for chat, index, message, block in batch:
            post = self._post(chat, index, message, block)
            if post is not None:
                self.stats.read += 1
                yield post

    # Errors ----------------------------------------------------------------------------------

    def _chat_label(self, chat: _Chat) -> str:
        if chat.key[0] == "":
            return "messages"
        return f"{chat.key[0]}.list[{chat.key[1]}].messages"

    def _message_error(
        self, chat: _Chat, index: int, message: Any, block: int | None, reason: str
    ) -> ExportError:
        byte = _locate(self.path, block, (chat.key, index))
        msg_id = message.get("id") if isinstance(message, dict) else None
        ident = f" (id {msg_id})" if type(msg_id) is int else ""
        where = f"byte {byte}" if byte is not None else "byte ?"
        label = chat.name if isinstance(chat.name, str) else chat.id
        position = (
            f"{where}, {self._chat_label(chat)}[{index}]{ident}"
            f" (message #{index + 1} of chat {label!r})"
        )
        return ExportError(self.path, position, reason, byte=byte, message_index=index)

    def _walker_syntax_error(self, exc: Exception, offset: int, walker: _Walker) -> ExportError:
        chat = walker.current.get("") or next(reversed(walker.current.values()), None)
        return self._syntax_error(exc, offset, chat, chat.messages if chat else None)

    def _syntax_error(
        self, exc: Exception, offset: int, chat: _Chat | None, index: int | None
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
            where += f" (in {self._chat_label(chat)}[{index}], message #{index + 1})"
        return ExportError(self.path, where, reason, byte=byte, message_index=index)

    # Headers ---------------------------------------------------------------------------------

    def _header(self, chat: _Chat) -> _Chat:
        if chat.resolved or (chat.has_id and chat.type is not None):
            return chat
        chat.resolved = True
        # The chat's id/type come after its messages (not how Telegram writes them): read the
        # headers of every chat in one light pass, once.
        if self._headers is None:
            log.info("export %s: chat header after its messages; reading headers first", chat.key)
            self._headers, failure = _read_headers(self.path)
            if failure is not None:
                raise self._syntax_error(failure[0], failure[1], None, None)
        full = self._headers.get(chat.key)
        if full is not None:
            chat.name = chat.name if chat.name is not None else full.name
            chat.type = chat.type if chat.type is not None else full.type
            if not chat.has_id:
                chat.id, chat.has_id = full.id, full.has_id
        return chat

    # Messages --------------------------------------------------------------------------------

    def _post(self, chat: _Chat, index: int, m: Any, block: int | None) -> Post | None:
        def fail(reason: str) -> ExportError:
            return self._message_error(chat, index, m, block, reason)

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
        channel_id = _channel_id(chat.id) if chat.has_id else None
        if channel_id is None:
            raise fail(f"the chat has no valid 'id' (got {chat.id!r})")
        if not chat.counted:
            chat.counted = True
            self.stats.chats += 1
        date = self._date(m, "date", fail, required=True)
        assert date is not None
        edit_date = self._date(m, "edited", fail, required=False)
        text, urls = _text(m, fail)
        media = _media(m)
        if media == "poll" and not text:
            text = _poll_text(m.get("poll"))
        forward = None
        if "forwarded_from" in m:
            name = m["forwarded_from"]
            forward = Forward(name=name if isinstance(name, str) else None)
        return Post(
            channel_id=channel_id,
            message_id=msg_id,
            date=date,
            text=text,
            username=self.username if not chat.key[0] else None,
            title=chat.name if isinstance(chat.name, str) else "",
            edit_date=edit_date,
            urls=urls,
            media=media,
            forward=forward,
            source="export",
        )

    def _date(
        self, m: dict[str, Any], name: str, fail: Callable[[str], ExportError], *, required: bool
    ) -> datetime | None:
        unix = m.get(f"{name}_unixtime")
        if unix is not None:
            if isinstance(unix, str) and unix.isdigit() and unix.isascii():
                seconds = int(unix)
            elif type(unix) is int and unix >= 0:
                seconds = unix
            else:
                raise fail(f"bad '{name}_unixtime' {unix!r}: expected a string of digits")
            try:
                return datetime.fromtimestamp(seconds, UTC)
            except (OverflowError, OSError, ValueError) as exc:
                raise fail(f"bad '{name}_unixtime' {unix!r}: out of range") from exc
        raw = m.get(name)
        if raw is None:
            if required:
                raise fail(f"message without '{name}' or '{name}_unixtime'")
            return None
        if not isinstance(raw, str):
            raise fail(f"bad '{name}' {raw!r}: expected an ISO 8601 time string")
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError as exc:
            raise fail(f"bad '{name}' {raw!r}: expected an ISO 8601 time string") from exc
        if parsed.tzinfo is None:
            # Older exports have only the exporting machine's local time, with no zone.
            if name == "date":
                self.stats.dates_assumed_utc += 1
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)


def _channel_id(value: Any) -> int | None:
    if isinstance(value, str) and value.lstrip("-").isdigit():
        value = int(value)
    if type(value) is not int:
        return None
    if value < 0:  # Bot API style -100<id>
        text = str(value)
        if not text.startswith("-100") or len(text) <= 4:
            return None
        value = int(text[4:])
    return value if value > 0 else None


def _text(m: dict[str, Any], fail: Callable[[str], ExportError]) -> tuple[str, tuple[str, ...]]:
    """The message text (or caption) and the URLs of its link entities."""
    parts = m.get("text_entities")
    if parts is None:
        parts = m.get("text", "")
        name = "text"
    else:
        name = "text_entities"
        if not isinstance(parts, list):
            raise fail(f"'text_entities' must be a list, not {type(parts).__name__}")
    if parts is None:
        return "", ()
    if isinstance(parts, str):
        return parts, ()
    if not isinstance(parts, list):
        raise fail(f"'{name}' must be a string or a list, not {type(parts).__name__}")
    pieces: list[str] = []
    urls: list[str] = []
    for part in parts:
        if isinstance(part, str):
            pieces.append(part)
            continue
        if not isinstance(part, dict):
            raise fail(f"'{name}' items must be strings or objects, not {type(part).__name__}")
        piece = part.get("text", "")
        if not isinstance(piece, str):
            raise fail(f"'{name}' entity 'text' must be a string, not {type(piece).__name__}")
        pieces.append(piece)
        kind = part.get("type")
        if kind in _LINK_ENTITIES:
            url = part.get("href") if kind == "text_link" else piece
            if isinstance(url, str) and url and url not in urls:
                urls.append(url)
    return "".join(pieces), tuple(urls)


def _media(m: dict[str, Any]) -> str | None:
    media_type = m.get("media_type")
    if isinstance(media_type, str):
        return _MEDIA_TYPES.get(media_type, media_type)
    for key, kind in _MEDIA_KEYS:
        if key in m:
            return kind
    return None


def _poll_text(poll: Any) -> str:
    if not isinstance(poll, dict):
        return ""
    lines = [poll.get("question")]
    answers = poll.get("answers")
    if isinstance(answers, list):
        lines.extend(a.get("text") for a in answers if isinstance(a, dict))
    return "\n".join(line for line in lines if isinstance(line, str) and line)


# --- light passes used only on the rare paths ------------------------------------------------


def _first_block(fh: Any) -> tuple[int, bytes]:
    """(offset, bytes) of the first block, a UTF-8 byte-order mark skipped."""
    chunk: bytes = fh.read(CHUNK_SIZE)
    if chunk.startswith(_BOM):
        return len(_BOM), chunk[len(_BOM) :]
    return 0, chunk


def _blocks(fh: Any) -> Iterator[tuple[int, bytes]]:
    """(offset, bytes) of each 64 KiB block of the file, the byte-order mark skipped."""
    offset, chunk = _first_block(fh)
    while chunk:
        yield offset, chunk
        offset += len(chunk)
        chunk = fh.read(CHUNK_SIZE)


class _HeaderPass:
    """A header-only walk (no messages built), fed bytes as they come. ijson.JSONError out of
    `feed` or `finish` means the bytes fed so far do not parse."""

    def __init__(self) -> None:
        self.walker = _Walker(build=False)
        self._events = ijson.sendable_list()
        self._parser = ijson.parse_coro(self._events, use_float=True)
        self._fixer = _EscapeFixer()

    def feed(self, data: bytes) -> None:
        self._parser.send(self._fixer.feed(data))
        self.walker.feed(self._events)
        del self._events[:]

    def finish(self) -> None:
        rest = self._fixer.flush()
        if rest:
            self._parser.send(rest)
        self._parser.close()
        self.walker.feed(self._events)
        del self._events[:]

    def started_after(self, target: tuple[ChatKey, int]) -> bool:
        """Whether the walk has reached the start of message `target` (chat, index)."""
        chat = self.walker.chats.get(target[0])
        return chat is not None and chat.started > target[1]


def _find_message_block(path: Path, target: tuple[ChatKey, int]) -> int | None:
    """Offset of the 64 KiB block in which message `target` starts."""
    walk = _HeaderPass()
    with path.open("rb") as fh:
        try:
            for offset, chunk in _blocks(fh):
                walk.feed(chunk)
                if walk.started_after(target):
                    return offset
        except ijson.JSONError:
            return None
    return None


def _sniff_single_chat(path: Path) -> _Chat | None:
    """The header of a single-chat export when it precedes the messages, else None.

    Reads until the first message starts (normally within the first block). None sends the
    reader down the general path: a full-account export, a header after the messages, or a
    file that does not parse (the general path reports where).
    """
    walk = _HeaderPass()
    walker = walk.walker
    with path.open("rb") as fh:
        try:
            for _offset, chunk in _blocks(fh):
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


def _read_headers(path: Path) -> tuple[dict[ChatKey, _Chat], tuple[Exception, int] | None]:
    """Every chat's name/type/id, without building messages (one full pass over events).

    Also returns the syntax error that stopped the pass, if any, with its block offset.
    """
    walk = _HeaderPass()
    offset = 0
    with path.open("rb") as fh:
        try:
            for offset, chunk in _blocks(fh):  # noqa: B007 (the offset is read after the loop)
                walk.feed(chunk)
            offset = fh.tell()
            walk.finish()
        except ijson.JSONError as exc:
            return walk.walker.chats, (exc, offset)
    return walk.walker.chats, None


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
    walk = _HeaderPass()

    def reached() -> bool:
        return target is not None and walk.started_after(target)

    with path.open("rb") as fh:
        done, chunk = _first_block(fh)
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
