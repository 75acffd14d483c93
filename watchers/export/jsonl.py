"""The JSON Lines reader: Vigil's own post schema (docs/POST_SCHEMA.md), one post per line.

A bad line is reported by line, column and byte; posts without a `source` get "jsonl".
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from bot.models import Post, PostFormatError
from watchers.export.common import BOM, ExportError, ExportStats, Progress


def iter_jsonl(
    path: Path, username: str | None, stats: ExportStats, progress: Progress | None
) -> Iterator[Post]:
    offset = 0
    with path.open("rb") as fh:
        for line_no, raw in enumerate(fh, 1):
            line_start = offset
            offset += len(raw)
            if line_no == 1:
                raw = raw.removeprefix(BOM)
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
