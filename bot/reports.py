"""An analyst's own alerts as a report: the CSV of /export and the chart of /stats.

The source is the analyst's delivered log (`DeliveryLedger.delivered`), what the delivery worker
records for every alert it sends (channel, message, watch, priority, kind, chat_message, at).
What the log does not hold is joined in: the post (the archive, which expires after
ARCHIVE_TTL_DAYS: the alert is still listed, with an empty text), the language and watch query
(the delivery ledger's `meta`, else the watch as it is now), the channel's @username (the
archived post, else the channel registry) and the analyst's 👍/👎 (FeedbackRepository).

`alerts_csv`, `build_export`, `summarise` and `stats_spec` are pure; `read_alerts` is the only
part that reads storage.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from bot.models import Post
from bot.storage.archive import ArchiveRepository
from bot.storage.channels import ChannelRepository
from bot.storage.feedback import FeedbackRepository
from bot.storage.ledger import DeliveryLedger
from bot.storage.watches import WatchRepository
from bot.triage.priority import PRIORITIES

log = logging.getLogger(__name__)

CSV_COLUMNS = (
    "time",
    "channel",
    "link",
    "watch_id",
    "watch_query",
    "priority",
    "kind",
    "feedback",
    "language",
    "text",
)
DEFAULT_EXPORT_DAYS = 30
MAX_EXPORT_DAYS = 365
STATS_DAYS = 14
# Bots may upload documents up to 50 MB through Telegram's Bot API; keep clear of it.
MAX_EXPORT_BYTES = 45 * 1024 * 1024
READ_PAGE = 500

# Spreadsheet formula triggers (OWASP "CSV injection"); tab and CR are triggers too.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")
_DAYS = re.compile(r"(\d{1,4})d?", re.IGNORECASE | re.ASCII)
_SURROGATE = re.compile("[\ud800-\udfff]")


class ReportRangeError(ValueError):
    """A /export range that is not a number of days within the limits."""


@dataclass(frozen=True, slots=True)
class AlertRow:
    """One alert as the analyst received it, joined with its post (when still archived)."""

    at: float  # unix time the alert was sent
    channel_id: int
    message_id: int
    channel: str  # '@username', or the channel id when it has none (or is unknown)
    link: str
    watch_id: int
    watch_query: str
    priority: str
    kind: str
    feedback: str  # 'relevant' | 'noise' | ''
    language: str
    text: str  # '' when the post has left the archive


@dataclass(frozen=True, slots=True)
class CsvExport:
    data: bytes
    rows: int  # how many alerts the file holds (the newest ones when cut to max_bytes)


@dataclass(frozen=True, slots=True)
class StatsSummary:
    total: int
    by_priority: tuple[tuple[str, int], ...]  # urgent first, every priority present
    top_watches: tuple[tuple[int, str, int], ...]  # (watch id, query, alerts), most first
    relevant: int
    noise: int


# --- pure: arguments ----------------------------------------------------------------------


def parse_days(args: str | None, default: int = DEFAULT_EXPORT_DAYS) -> int:
    """'/export 7d' -> 7; nothing -> `default`. ReportRangeError on anything else."""
    raw = (args or "").strip()
    if not raw:
        return default
    match = _DAYS.fullmatch(raw)
    if match is None:
        raise ReportRangeError(f"{raw[:32]!r} is not a number of days like 7d or 30d")
    days = int(match.group(1))
    if not 1 <= days <= MAX_EXPORT_DAYS:
        raise ReportRangeError(f"the range must be 1 to {MAX_EXPORT_DAYS} days")
    return days


def window_start(now: datetime, zone: tzinfo, days: int) -> datetime:
    """Local midnight `days - 1` days before `now`'s local date: the start of a day window."""
    first: date = now.astimezone(zone).date() - timedelta(days=days - 1)
    return datetime.combine(first, time(0), tzinfo=zone)


# --- pure: CSV ----------------------------------------------------------------------------


def _cell(value: str) -> str:
    """Neutralise a cell a spreadsheet would run as a formula (a plain number is left)."""
    if value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def _csv_record(row: AlertRow, zone: tzinfo) -> bytes:
    when = datetime.fromtimestamp(row.at, UTC).astimezone(zone).isoformat(timespec="seconds")
    values = (
        when,
        row.channel,
        row.link,
        str(row.watch_id),
        row.watch_query,
        row.priority,
        row.kind,
        row.feedback,
        row.language,
        row.text,
    )
    buffer = io.StringIO()
    csv.writer(buffer).writerow([_cell(v) for v in values])
    text = buffer.getvalue()
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (a malformed \ud800 escape) is no UTF-8
        return _SURROGATE.sub("\ufffd", text).encode("utf-8")


def build_export(
    rows: Sequence[AlertRow], zone: tzinfo = UTC, *, max_bytes: int | None = None
) -> CsvExport:
    """The CSV file (UTF-8 with BOM, so Excel reads Cyrillic right; CRLF rows), oldest alert
    first. With `max_bytes`, only the newest alerts that fit are kept."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow(CSV_COLUMNS)
    head = "\ufeff".encode() + buffer.getvalue().encode("utf-8")
    ordered = sorted(rows, key=lambda r: (r.at, r.channel_id, r.message_id))
    records: list[bytes] = []
    size = len(head)
    for row in reversed(ordered):
        record = _csv_record(row, zone)
        if max_bytes is not None and size + len(record) > max_bytes:
            break
        records.append(record)
        size += len(record)
    records.reverse()
    return CsvExport(head + b"".join(records), len(records))


def alerts_csv(rows: Sequence[AlertRow], zone: tzinfo = UTC) -> bytes:
    """Every row as CSV; see `build_export`."""
    return build_export(rows, zone).data


# --- pure: stats --------------------------------------------------------------------------


def _known_priority(priority: str) -> str:
    return priority if priority in PRIORITIES else "normal"


def summarise(rows: Iterable[AlertRow], top: int = 5) -> StatsSummary:
    rows = list(rows)
    by_priority = Counter(_known_priority(r.priority) for r in rows)
    per_watch = Counter(r.watch_id for r in rows)
    queries: dict[int, str] = {}
    verdicts: dict[tuple[int, int, int], str] = {}
    for r in rows:
        if r.watch_query:
            queries[r.watch_id] = r.watch_query
        if r.feedback:
            verdicts[(r.channel_id, r.message_id, r.watch_id)] = r.feedback
    ranked = sorted(per_watch.items(), key=lambda item: (-item[1], item[0]))[:top]
    verdict_counts = Counter(verdicts.values())
    return StatsSummary(
        total=len(rows),
        by_priority=tuple((p, by_priority[p]) for p in PRIORITIES),
        top_watches=tuple((w, queries.get(w, ""), n) for w, n in ranked),
        relevant=verdict_counts["relevant"],
        noise=verdict_counts["noise"],
    )


def daily_counts(
    rows: Iterable[AlertRow], zone: tzinfo, now: datetime, days: int = STATS_DAYS
) -> tuple[list[date], dict[str, list[int]]]:
    """The `days` local dates ending today, and per priority the alerts of each date."""
    first = window_start(now, zone, days).date()
    dates = [first + timedelta(days=i) for i in range(days)]
    counts = {p: [0] * days for p in PRIORITIES}
    for r in rows:
        index = (datetime.fromtimestamp(r.at, UTC).astimezone(zone).date() - first).days
        if 0 <= index < days:
            counts[_known_priority(r.priority)][index] += 1
    return dates, counts


def stats_spec(
    rows: Iterable[AlertRow],
    tz: tzinfo,
    *,
    now: datetime | None = None,
    days: int = STATS_DAYS,
    trends: Sequence[tuple[str, Sequence[int]]] = (),
) -> dict[str, Any]:
    """The /stats chart's spec (`bot.charts`): alerts per local day over the last `days` days,
    stacked by priority, and with `trends` ((label, posts per day) per watch) a second panel of
    each watch's matching posts per day."""
    now = now or datetime.now(UTC)
    dates, counts = daily_counts(rows, tz, now, days)
    spec: dict[str, Any] = {
        "kind": "stats",
        "dates": [d.strftime("%d %b") for d in dates],
        "counts": counts,
        "title": f"Alerts per day, last {days} days ({tz})",
    }
    if trends:
        spec["trends"] = [{"label": label, "daily": list(daily)} for label, daily in trends]
    return spec


# --- Redis: the analyst's alerts --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Entry:
    at: float
    channel_id: int
    message_id: int
    watch_id: int
    priority: str
    kind: str
    language: str | None
    query: str | None


def _parse_entry(entry_id: str, fields: dict[str, str]) -> _Entry:
    """ValueError/KeyError on a malformed entry."""
    at_raw = fields.get("at")
    at = float(at_raw) if at_raw else int(entry_id.split("-", 1)[0]) / 1000
    return _Entry(
        at=at,
        channel_id=int(fields["channel"]),
        message_id=int(fields["message"]),
        watch_id=int(fields.get("watch") or 0),
        priority=fields.get("priority") or "normal",
        kind=fields.get("kind") or "new",
        language=fields.get("lang"),
        query=fields.get("query"),
    )


async def _stream_entries(ledger: DeliveryLedger, analyst_id: int, since: float) -> list[_Entry]:
    out: list[_Entry] = []
    skipped = 0
    for entry in await ledger.delivered(analyst_id, since):
        try:
            parsed = _parse_entry(entry.id, entry.fields)
        except (KeyError, ValueError, OverflowError):
            skipped += 1
            continue
        if parsed.at >= since:
            out.append(parsed)
    if skipped:
        log.warning("reports: %d malformed entries in the alerts of %s", skipped, analyst_id)
    return out


def _meta(raw: Any) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except (TypeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


async def read_alerts(
    ledger: DeliveryLedger,
    archive: ArchiveRepository,
    analyst_id: int,
    since: float,
    *,
    watches: WatchRepository,
    feedback: FeedbackRepository,
    channels: ChannelRepository,
    with_text: bool = True,
) -> list[AlertRow]:
    """The analyst's alerts sent at or after `since` (unix), oldest first. Without
    `with_text` the archive is not read (texts empty), which is all /stats needs."""
    entries = await _stream_entries(ledger, analyst_id, since)
    if not entries:
        return []
    posts = sorted({(e.channel_id, e.message_id) for e in entries})
    metas: dict[tuple[int, int], dict[str, Any]] = {}
    archived: dict[tuple[int, int], Post] = {}
    for i in range(0, len(posts), READ_PAGE):
        chunk = posts[i : i + READ_PAGE]
        for post_key, raw in zip(chunk, await ledger.metas(analyst_id, chunk), strict=True):
            metas[post_key] = _meta(raw)
        if with_text:
            archived.update(await archive.get_many(chunk))

    verdicts = await feedback.all_for(analyst_id)
    wanted = {e.watch_id for e in entries if not e.query}
    current = {w.id: w.query for w in await watches.get_many(sorted(wanted))}
    usernames: dict[int, str | None] = {
        cid: post.username for (cid, _m), post in archived.items() if post.username
    }
    for channel_id in {e.channel_id for e in entries} - usernames.keys():
        known = await channels.by_id(channel_id)
        usernames[channel_id] = known.username if known is not None else None

    rows: list[AlertRow] = []
    for e in entries:
        post_key = (e.channel_id, e.message_id)
        meta = metas.get(post_key, {})
        post = archived.get(post_key)
        username = usernames.get(e.channel_id)
        # The meta was written for the alert of one watch; its query is that watch's.
        meta_query = (
            str(meta.get("query") or "") if str(meta.get("watch")) == str(e.watch_id) else ""
        )
        link_post = post or Post(
            e.channel_id, e.message_id, datetime.fromtimestamp(e.at, UTC), username=username
        )
        rows.append(
            AlertRow(
                at=e.at,
                channel_id=e.channel_id,
                message_id=e.message_id,
                channel=f"@{username}" if username else str(e.channel_id),
                link=link_post.link,
                watch_id=e.watch_id,
                watch_query=e.query or meta_query or current.get(e.watch_id, ""),
                priority=e.priority,
                kind=e.kind,
                feedback=verdicts.get((e.channel_id, e.message_id, e.watch_id), ""),
                language=e.language or str(meta.get("lang") or ""),
                text=post.text if post is not None else "",
            )
        )
    rows.sort(key=lambda r: r.at)
    return rows
