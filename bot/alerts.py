"""The alerts-stream payload: one entry per (post, analyst), written by triage, read by delivery.

An alert written by triage references its archived post (`ref`, with a `stub`: `post_stub`)
instead of copying it; the outbox's consumer hydrates it into a `post` field before delivery
sees it (bot/storage/outbox.py). `from_fields` reads either shape.

A notice (admin message from the system: a watcher went silent, an analyst blocked the bot) is
a separate small payload on the same stream, so it gets the same durability and rate limits.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from bot.models import Post, PostEvent, PostFormatError
from bot.triage.priority import PRIORITIES

# "also": a copy of an already-alerted story appeared elsewhere; `post` is the FIRST post (only
# its ids matter) and `also_in` the links of every copy so far. Delivery edits the first alert.
ALERT_KINDS = frozenset({"new", "edit", "delete", "also"})


@lru_cache(maxsize=4096)
def _json_list(items: tuple[str, ...]) -> str:
    # The same reasons and links recur across a batch's alerts: encode each tuple once.
    return json.dumps(list(items), ensure_ascii=False)


@lru_cache(maxsize=4096)
def _json_spans(spans: tuple[tuple[int, int], ...]) -> str:
    return json.dumps([list(s) for s in spans])


@dataclass(frozen=True, slots=True)
class AlertJob:
    analyst_id: int
    post: Post
    watch_id: int
    watch_query: str
    priority: str
    reasons: tuple[str, ...]
    spans: tuple[tuple[int, int], ...]
    language: str
    language_confidence: float
    kind: str = "new"
    also_in: tuple[str, ...] = ()
    # The analyst's learned model judged it noise with confidence: it goes to their digest,
    # whatever their instant threshold (nothing is dropped; /settings learning off stops it).
    held: bool = False
    # "suggested": the desk model found it, no watch matched (watch_id 0).
    origin: str = "watch"
    # An edit's follow-up: the text before the edit, for the difference (None: not known).
    previous: str | None = None

    def to_fields(self) -> dict[str, str]:
        return {"post": self.post.to_json(), **self.rest()}

    def rest(self) -> dict[str, str]:
        """Every field but the post, as strings (the `job` object of a stream entry)."""
        fields = {
            "type": "alert",
            "analyst": str(self.analyst_id),
            "watch": str(self.watch_id),
            "query": self.watch_query,
            "priority": self.priority,
            "reasons": _json_list(self.reasons),
            "spans": _json_spans(self.spans),
            "lang": self.language,
            "lang_conf": f"{self.language_confidence:.3f}",
            "kind": self.kind,
            "also_in": _json_list(self.also_in),
        }
        if self.held:
            fields["held"] = "1"
        if self.origin != "watch":
            fields["origin"] = self.origin
        if self.previous is not None:
            fields["previous"] = self.previous
        return fields

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> AlertJob:
        """Parse a stream entry (either shape); ValueError (with the field) on anything
        malformed."""
        stub: Post | None = None
        if "post" not in fields and "ref" in fields:
            # Not hydrated (read straight off the stream): the post as its stub describes it,
            # without its text. Delivery reads through `AlertConsumer`, which hydrates.
            stub = post_from_stub(fields["ref"], fields.get("stub", ""))
        if "job" in fields:
            try:
                rest = json.loads(fields["job"])
                if not isinstance(rest, dict):
                    raise ValueError("malformed alert entry: 'job' is not an object")
                outer = fields
                fields = {str(k): str(v) for k, v in rest.items()}
                if stub is None:
                    fields["post"] = outer["post"]
            except (KeyError, json.JSONDecodeError) as exc:
                raise ValueError(f"malformed alert entry: {exc}") from exc
        try:
            post = stub if stub is not None else Post.from_json(fields["post"])
            kind = fields.get("kind", "new")
            priority = fields.get("priority", "normal")
            if kind not in ALERT_KINDS:
                raise ValueError(f"unknown alert kind {kind!r}")
            if priority not in PRIORITIES:
                raise ValueError(f"unknown priority {priority!r}")
            spans = tuple((int(a), int(b)) for a, b in json.loads(fields.get("spans", "[]")))
            return cls(
                analyst_id=int(fields["analyst"]),
                post=post,
                watch_id=int(fields.get("watch", "0")),
                watch_query=fields.get("query", ""),
                priority=priority,
                reasons=tuple(str(r) for r in json.loads(fields.get("reasons", "[]"))),
                spans=spans,
                language=fields.get("lang", "und"),
                language_confidence=float(fields.get("lang_conf", "0")),
                kind=kind,
                also_in=tuple(str(x) for x in json.loads(fields.get("also_in", "[]"))),
                held=fields.get("held") == "1",
                origin=fields.get("origin", "watch"),
                previous=fields.get("previous"),
            )
        except KeyError as exc:
            raise ValueError(f"alert entry lacks field {exc.args[0]!r}") from exc
        except (PostFormatError, json.JSONDecodeError, TypeError) as exc:
            raise ValueError(f"malformed alert entry: {exc}") from exc


def post_stub(post: Post) -> str:
    """What an alert keeps of its post besides the reference: its version, a link's parts and
    a checksum of its text (whether the archived text is still the one it matched)."""
    edited = post.edit_date.isoformat() if post.edit_date else None
    data = [post.date.isoformat(), edited, post.event, post.username, post.title, text_sum(post)]
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def text_sum(post: Post) -> int:
    return zlib.crc32(post.text.encode("utf-8", "surrogatepass"))


def parse_post_ref(ref: str) -> tuple[int, int]:
    channel, _, message = ref.partition(":")
    try:
        return int(channel), int(message)
    except ValueError:
        return 0, 0  # an unreadable reference finds nothing: the entry gets the fallback


def post_from_stub(ref: str, stub: str) -> Post:
    """The post as the stub describes it, without its text; ValueError if it is malformed."""
    return read_stub(ref, stub)[0]


def read_stub(ref: str, stub: str) -> tuple[Post, int | None]:
    """The stub's post (without its text) and its text's checksum; ValueError if malformed."""
    channel, message = parse_post_ref(ref)
    try:
        date, edited, event, username, title, checksum = json.loads(stub)
        post = Post(
            channel_id=channel,
            message_id=message,
            date=_when(date) or datetime.now(UTC),
            username=str(username) if username else None,
            title=str(title or ""),
            edit_date=_when(edited),
            event=_event(event),
        )
        return post, int(checksum) if checksum is not None else None
    except (json.JSONDecodeError, TypeError, ValueError, PostFormatError) as exc:
        raise ValueError(f"malformed alert stub: {exc}") from exc


def _event(raw: Any) -> PostEvent:
    if raw == "edit":
        return "edit"
    if raw == "delete":
        return "delete"
    if raw in ("new", None):
        return "new"
    raise ValueError(f"unknown post event {raw!r}")


def _when(raw: Any) -> datetime | None:
    if not raw:
        return None
    when = datetime.fromisoformat(str(raw))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Notice:
    """A system message for one admin (or analyst), delivered like an alert."""

    recipient_id: int
    text: str  # plain text, escaped by the renderer; or, with html=True, built and escaped HTML
    html: bool = False
    # Inline buttons as the Bot API's reply_markup JSON (an access request's Approve / Deny).
    markup: str | None = None
    # A picture sent with the text as its caption: a reference the campaign repository
    # resolves (`CampaignRepository.chart`, a surge alert's chart); sent as text once expired.
    photo: str | None = None

    def to_fields(self) -> dict[str, str]:
        fields = {"type": "notice", "analyst": str(self.recipient_id), "notice": self.text}
        if self.html:
            fields["html"] = "1"
        if self.markup:
            fields["markup"] = self.markup
        if self.photo:
            fields["photo"] = self.photo
        return fields

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> Notice:
        try:
            return cls(
                int(fields["analyst"]),
                fields["notice"],
                fields.get("html") == "1",
                fields.get("markup") or None,
                fields.get("photo") or None,
            )
        except (KeyError, ValueError) as exc:
            raise ValueError(f"malformed notice entry: {exc}") from exc


def is_notice(fields: Mapping[str, str]) -> bool:
    return fields.get("type") == "notice" or ("notice" in fields and "post" not in fields)
