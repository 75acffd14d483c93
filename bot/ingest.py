"""`vigil ingest`: put the posts of an export or JSON Lines file on the posts stream.

Two passes over the file. The first reads it all and validates every post without writing
anything, so a malformed file is refused with nothing of it enqueued. The second reads it again
and enqueues in pipelined batches through `PostQueue.enqueue_many`, the same idempotent path
live posts take: (channel id, message id, edit version) already seen is a duplicate, so the
same file twice enqueues nothing new and an edited version of a post enqueues once more.

An export is history, not news: triage archives (for /test and /search) but does not alert
posts dated before its backfill cutoff (`BACKFILL_CUTOFF_H`, 24 h by default), unless they were
ingested with `alert_old` (`vigil ingest --alert`), which marks each alert as from the archive.

The file is checked for changes between the passes (size and modification time); a file still
being written is refused. A Redis failure in the middle of the second pass leaves the posts
enqueued so far on the stream; running the same ingest again completes it without duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from bot.models import Post
from bot.storage.posts import PostQueue
from watchers.export import ExportError, ExportStats, iter_export, resolve_path

log = logging.getLogger(__name__)

# Give the event loop a turn every this many posts while parsing (parsing is synchronous).
_YIELD_EVERY = 2_000


@dataclass(frozen=True, slots=True)
class IngestReport:
    read: int
    enqueued: int
    duplicates: int
    skipped: dict[str, int]
    alert_old: bool = False  # --alert: posts older than the backfill cutoff alert too
    dates_assumed_utc: int = 0  # old exports: posts whose local `date` was taken as UTC
    validate_seconds: float = 0.0
    enqueue_seconds: float = 0.0


def _signature(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


async def ingest_file(
    path: Path,
    queue: PostQueue,
    *,
    channel: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    batch: int = 500,
    alert_old: bool = False,
) -> IngestReport:
    """Validate the whole file, then enqueue its posts. Raises ExportError, enqueuing nothing.

    `progress(done, total)` counts bytes over both passes: total is twice the file size, the
    first half is validation and the second enqueueing.
    """
    if batch < 1:
        raise ValueError("batch must be at least 1")
    path = resolve_path(Path(path))
    try:
        before = _signature(path)
    except OSError as exc:
        raise ExportError(path, "byte 0", f"cannot read the file: {exc.strerror}") from exc
    size = before[0]

    def first_half(done: int, _total: int) -> None:
        if progress is not None:
            progress(done, 2 * size)

    def second_half(done: int, _total: int) -> None:
        if progress is not None:
            progress(size + done, 2 * size)

    started = time.perf_counter()
    checked = ExportStats()
    count = 0
    for _post in iter_export(path, channel=channel, stats=checked, progress=first_half):
        count += 1
        if count % _YIELD_EVERY == 0:
            await asyncio.sleep(0)
    validated = time.perf_counter()
    log.debug("ingest %s: %d posts valid, %d skipped", path.name, count, checked.skipped.total())

    if _signature(path) != before:
        raise ExportError(path, "whole file", "the file changed while it was being read")
    stats = ExportStats()
    posts: Iterator[Post] = iter_export(path, channel=channel, stats=stats, progress=second_half)
    if alert_old:
        posts = (replace(p, alert_old=True) for p in posts)
    enqueued, duplicates = await _enqueue(posts, queue, batch)
    finished = time.perf_counter()
    log.debug(
        "ingest %s: %d read, %d enqueued, %d duplicates",
        path.name,
        stats.read,
        enqueued,
        duplicates,
    )
    return IngestReport(
        read=stats.read,
        enqueued=enqueued,
        duplicates=duplicates,
        skipped=dict(stats.skipped),
        dates_assumed_utc=stats.dates_assumed_utc,
        alert_old=alert_old,
        validate_seconds=validated - started,
        enqueue_seconds=finished - validated,
    )


async def _enqueue(posts: Iterator[Post], queue: PostQueue, size: int) -> tuple[int, int]:
    """Send batch n to Redis while batch n+1 is parsed: one pipeline in flight at a time."""
    enqueued = duplicates = 0
    in_flight: asyncio.Task[tuple[int, int]] | None = None
    chunk: list[Post] = []
    try:
        for post in posts:
            chunk.append(post)
            if len(chunk) < size:
                continue
            if in_flight is not None:
                added, dup = await in_flight
                enqueued, duplicates = enqueued + added, duplicates + dup
            in_flight = asyncio.create_task(queue.enqueue_many(chunk))
            await asyncio.sleep(0)  # let the task write its pipeline before parsing on
            chunk = []
        if in_flight is not None:
            added, dup = await in_flight
            enqueued, duplicates = enqueued + added, duplicates + dup
            in_flight = None
        if chunk:
            added, dup = await queue.enqueue_many(chunk)
            enqueued, duplicates = enqueued + added, duplicates + dup
    finally:
        if in_flight is not None:  # already sent: let it finish rather than cut it mid-way
            with contextlib.suppress(Exception):
                await in_flight
    return enqueued, duplicates
