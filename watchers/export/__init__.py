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

Modules: `reader` (the way in: `iter_export`, format detection), `jsonl` (JSON Lines),
`single_chat` (one channel's result.json, the fast path), `full_account` (full-account exports
and headers after messages), `desktop` (one Telegram Desktop message to a `Post`), `convert`
(dates, text and link entities, media), `events` (parser events, the escape fix, the header
pass), `positions` (where an error is, exactly), `common` (ExportError, ExportStats, blocks).
"""

from watchers.export.common import CHUNK_SIZE, ExportError, ExportStats, Format, Progress
from watchers.export.convert import CHANNEL_TYPES
from watchers.export.events import ChatKey
from watchers.export.events import EscapeFixer as _EscapeFixer
from watchers.export.reader import detect_format, iter_export, parse_channel_option, resolve_path

__all__ = [
    "CHANNEL_TYPES",
    "CHUNK_SIZE",
    "ChatKey",
    "ExportError",
    "ExportStats",
    "Format",
    "Progress",
    "_EscapeFixer",
    "detect_format",
    "iter_export",
    "parse_channel_option",
    "resolve_path",
]
