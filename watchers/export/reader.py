"""The way in: a path resolved, its format detected by content, the posts read by that format.

`iter_export` is what callers use; it sends a JSON Lines file to `jsonl` and a Telegram Desktop
export to `single_chat` when its one chat's header comes first, else to `full_account`.
`detect_format` looks only at the file's first bytes, never its name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from bot.models import Post
from watchers.export.common import (
    BOM,
    CHUNK_SIZE,
    ExportError,
    ExportStats,
    Format,
    Progress,
)
from watchers.export.desktop import DesktopReader
from watchers.export.full_account import walked_posts
from watchers.export.jsonl import iter_jsonl
from watchers.export.single_chat import single_chat_posts, sniff_single_chat

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
_USERNAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{3,31}")
_FIRST_KEY = re.compile(rb'\A\s*\{\s*"((?:[^"\\]|\\.){0,200})"')


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
    head = head.removeprefix(BOM)
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
        yield from iter_jsonl(path, username, stats, progress)
        return
    reader = DesktopReader(path, username, stats, progress)
    chat = sniff_single_chat(path)
    if chat is not None:
        yield from single_chat_posts(reader, chat)
    else:
        yield from walked_posts(reader)
