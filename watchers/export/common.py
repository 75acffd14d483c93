"""What every export reader shares: the block size, the error type, the counters, block reads.

`ExportError` is the one exception a reader raises for a file that cannot be ingested; its
str() names the file, the position (a byte, a line, a message) and the reason.
"""

from __future__ import annotations

import codecs
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

CHUNK_SIZE: Final = 64 * 1024
BOM: Final = codecs.BOM_UTF8
Format = Literal["telegram", "jsonl"]
Progress = Callable[[int, int], None]


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


def first_block(fh: Any) -> tuple[int, bytes]:
    """(offset, bytes) of the first block, a UTF-8 byte-order mark skipped."""
    chunk: bytes = fh.read(CHUNK_SIZE)
    if chunk.startswith(BOM):
        return len(BOM), chunk[len(BOM) :]
    return 0, chunk


def blocks(fh: Any) -> Iterator[tuple[int, bytes]]:
    """(offset, bytes) of each 64 KiB block of the file, the byte-order mark skipped."""
    offset, chunk = first_block(fh)
    while chunk:
        yield offset, chunk
        offset += len(chunk)
        chunk = fh.read(CHUNK_SIZE)
