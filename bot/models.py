"""Vigil's own post model: what every source (watcher, export, JSONL) turns into.

The JSON form (`Post.to_json` / `Post.from_json`) is the posts-stream payload and the JSON Lines
ingest schema documented in docs/POST_SCHEMA.md. Times are UTC.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

PostEvent = Literal["new", "edit", "delete"]
# A deletion outranks any edit, so a repeated delete event is a duplicate.
DELETED_VERSION = 2**53


class PostFormatError(ValueError):
    """A post in Vigil's schema has a missing or ill-typed field."""


@dataclass(frozen=True, slots=True)
class Forward:
    """Where a forwarded post came from: ids when Telegram tells them, else only a name."""

    channel_id: int | None = None
    message_id: int | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Post:
    channel_id: int
    message_id: int
    date: datetime
    text: str = ""
    username: str | None = None
    title: str = ""
    edit_date: datetime | None = None
    urls: tuple[str, ...] = ()
    media: str | None = None
    views: int | None = None
    forwards: int | None = None
    forward: Forward | None = None
    grouped_id: int | None = None
    event: PostEvent = "new"
    source: str = "live"
    # `vigil ingest --alert`: alert it even if it is older than the backfill cutoff.
    alert_old: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def link(self) -> str:
        if self.username:
            return f"https://t.me/{self.username}/{self.message_id}"
        raw = str(abs(self.channel_id))
        if self.channel_id < 0 and raw.startswith("100") and len(raw) > 10:
            raw = raw[3:]  # a Bot-API style -100<id> slipped in: t.me/c wants the bare id
        return f"https://t.me/c/{raw}/{self.message_id}"

    @property
    def version(self) -> int:
        """Idempotency version: 0 for the original, the edit time for edits."""
        if self.event == "delete":
            return DELETED_VERSION
        return int(self.edit_date.timestamp()) if self.edit_date else 0

    @property
    def key(self) -> tuple[int, int, int]:
        return (self.channel_id, self.message_id, self.version)

    def to_dict(self) -> dict[str, Any]:
        # Built by hand: dataclasses.asdict deep-copies and was 40 % of ingest's CPU.
        fwd = self.forward
        data: dict[str, Any] = {
            "channel_id": self.channel_id,
            "message_id": self.message_id,
            "date": self.date.isoformat(),
            "text": self.text,
            "username": self.username,
            "title": self.title,
            "edit_date": self.edit_date.isoformat() if self.edit_date else None,
            "urls": list(self.urls),
            "media": self.media,
            "views": self.views,
            "forwards": self.forwards,
            "forward": (
                None
                if fwd is None
                else {"channel_id": fwd.channel_id, "message_id": fwd.message_id, "name": fwd.name}
            ),
            "grouped_id": self.grouped_id,
            "event": self.event,
            "source": self.source,
        }
        if self.alert_old:
            data["alert_old"] = True
        if self.extra:
            data["extra"] = dict(self.extra)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Any) -> Post:
        if not isinstance(data, dict):
            raise PostFormatError(f"a post must be a JSON object, not {type(data).__name__}")
        try:
            channel_id = _int(data, "channel_id", required=True)
            message_id = _int(data, "message_id", required=True)
            assert channel_id is not None and message_id is not None
            date = _date(data.get("date"), "date")
            if date is None:
                raise PostFormatError("field 'date' is required")
            text = data.get("text", "") or ""
            if not isinstance(text, str):
                raise PostFormatError(f"field 'text' must be a string, not {type(text).__name__}")
            fwd = data.get("forward")
            forward = None
            if fwd is not None:
                if not isinstance(fwd, dict):
                    raise PostFormatError("field 'forward' must be an object")
                forward = Forward(
                    channel_id=_int(fwd, "channel_id"),
                    message_id=_int(fwd, "message_id"),
                    name=_str(fwd, "name"),
                )
            urls = data.get("urls") or []
            if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
                raise PostFormatError("field 'urls' must be a list of strings")
            event = data.get("event", "new")
            if event not in ("new", "edit", "delete"):
                raise PostFormatError(f"field 'event' must be new, edit or delete, not {event!r}")
            extra = data.get("extra") or {}
            if not isinstance(extra, dict):
                raise PostFormatError("field 'extra' must be an object")
            return cls(
                channel_id=channel_id,
                message_id=message_id,
                date=date,
                text=text,
                username=(_str(data, "username") or "").lstrip("@") or None,
                title=_str(data, "title") or "",
                edit_date=_date(data.get("edit_date"), "edit_date"),
                urls=tuple(urls),
                media=_str(data, "media"),
                views=_int(data, "views"),
                forwards=_int(data, "forwards"),
                forward=forward,
                grouped_id=_int(data, "grouped_id"),
                event=event,
                source=_str(data, "source") or "live",
                alert_old=data.get("alert_old") is True,
                extra=extra,
            )
        except PostFormatError:
            raise
        except (TypeError, ValueError, OverflowError) as exc:
            raise PostFormatError(str(exc)) from exc

    @classmethod
    def from_json(cls, raw: str | bytes) -> Post:
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise PostFormatError(f"not valid JSON: {exc.msg} at column {exc.colno}") from exc
        return cls.from_dict(data)


def _int(data: dict[str, Any], name: str, *, required: bool = False) -> int | None:
    value = data.get(name)
    if value is None:
        if required:
            raise PostFormatError(f"field {name!r} is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and value.lstrip("-").isdigit():
            return int(value)
        raise PostFormatError(f"field {name!r} must be an integer, not {type(value).__name__}")
    return value


def _str(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise PostFormatError(f"field {name!r} must be a string, not {type(value).__name__}")
    return value


def _date(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        dt = datetime.fromtimestamp(value, UTC)
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value)
        except ValueError as exc:
            raise PostFormatError(f"field {name!r}: {value!r} is not an ISO 8601 time") from exc
    else:
        raise PostFormatError(f"field {name!r} must be an ISO 8601 string or unix seconds")
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
