"""Alert rendering: an `AlertJob` in, Telegram HTML and the alert's keyboard out. Pure.

Telegram counts a message's length after entity parsing, in UTF-16 code units, and refuses more
than 4096. The text is built from parts whose visible length is known, so the post body is cut
to exactly what fits, on a boundary that is never inside a tag, an entity (everything is escaped
after cutting) or a surrogate pair (lengths are counted per code point), and not inside a
grapheme's trailing combining marks.

The follow-up of an edited post, given the text before the edit, shows what changed instead of
the whole post: removed words struck through, added words in bold, a few words of context
around each change, and one line when only whitespace or formatting changed.

An alert for a desk (a group or channel the watch was routed to: a negative chat id) names its
query as the desk's watch, not by the desk's own watch number.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from difflib import SequenceMatcher
from html import escape
from zoneinfo import ZoneInfo

from aiogram.types import InlineKeyboardMarkup

from bot import texts
from bot.alerts import AlertJob, Notice
from bot.campaign_views import spread_button
from bot.fit import utf16_len as utf16_len  # re-exported: one count for every reply
from bot.keyboards import alert_keyboard
from bot.models import Post

MAX_MESSAGE_UNITS = 4096
MAX_BOLD_SPANS = 40  # Telegram ignores entities beyond 100 per message; keep well below
WORD_BACKOFF = 80  # look this many characters back for a space to cut at
DIFF_CONTEXT = 6  # unchanged words shown each side of a change
DIFF_MAX_WORDS = 3000  # longer texts are compared on their first words (a post has ~700)
_WORD = re.compile(r"\S+")
_JOINERS = frozenset("\u200d\ufe0f\ufe0e\u20e3")


def clean_text(text: str) -> str:
    """Same length, but sendable: lone surrogates (possible in JSON input) cannot be encoded as
    UTF-8, and C0 control characters other than newline and tab are turned into spaces."""
    if text.isascii() and text.isprintable():
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if 0xD800 <= code <= 0xDFFF:
            out.append("\ufffd")
        elif (code < 0x20 and ch not in "\n\t") or code == 0x7F:
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def post_link(post: Post) -> str:
    """https://t.me/<username>/<id>, or https://t.me/c/<id>/<msg> with the bare channel id."""
    return post.link


@dataclass
class _Html:
    """HTML under construction, with its visible length in UTF-16 units."""

    parts: list[str] = field(default_factory=list)
    units: int = 0

    def text(self, value: str) -> None:
        self.parts.append(escape(value, quote=False))
        self.units += utf16_len(value)

    def tag(self, tag: str, value: str, href: str | None = None) -> None:
        attrs = f' href="{escape(href, quote=True)}"' if href is not None else ""
        self.parts.append(f"<{tag}{attrs}>{escape(value, quote=False)}</{tag}>")
        self.units += utf16_len(value)

    def raw(self, markup: str, visible: str) -> None:
        """Trusted markup (from texts) whose visible text is `visible`."""
        self.parts.append(markup)
        self.units += utf16_len(visible)

    def extend(self, other: _Html) -> None:
        self.parts.extend(other.parts)
        self.units += other.units

    def html(self) -> str:
        return "".join(self.parts)


def normalise_spans(
    spans: tuple[tuple[int, int], ...] | list[tuple[int, int]], length: int
) -> list[tuple[int, int]]:
    """Clamp to the text, drop empty ones, sort, merge overlapping or touching, cap the count."""
    clamped = sorted((max(0, a), min(length, b)) for a, b in spans if min(length, b) > max(0, a))
    merged: list[tuple[int, int]] = []
    for a, b in clamped:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged[:MAX_BOLD_SPANS]


def _cut_point(text: str, budget: int) -> int:
    """Index (in code points) of the longest prefix of `text` within `budget` UTF-16 units,
    moved back to a space when one is near and never leaving a grapheme's joiners behind."""
    used = 0
    cut = 0
    for i, ch in enumerate(text):
        width = 2 if ord(ch) > 0xFFFF else 1
        if used + width > budget:
            break
        used += width
        cut = i + 1
    else:
        return len(text)
    space = text.rfind(" ", max(0, cut - WORD_BACKOFF), cut)
    if space > 0:
        cut = space
    # Don't split "e" + combining accent, an emoji + ZWJ sequence or a keycap.
    while (
        cut > 0
        and cut < len(text)
        and (
            text[cut] in _JOINERS
            or text[cut - 1] in _JOINERS
            or unicodedata.combining(text[cut])
            or unicodedata.category(text[cut]) == "Me"
        )
    ):
        cut -= 1
    return cut


def render_body(text: str, spans: list[tuple[int, int]], budget: int) -> _Html:
    """The post text with spans in bold, cut with an ellipsis to `budget` UTF-16 units."""
    body = _Html()
    if utf16_len(text) > budget:
        cut = _cut_point(text, max(0, budget - utf16_len(texts.ELLIPSIS)))
        text = text[:cut].rstrip() if cut < len(text) else text
        truncated = True
    else:
        truncated = False
    pos = 0
    for a, b in spans:
        if a >= len(text):
            break
        b = min(b, len(text))
        if a > pos:
            body.text(text[pos:a])
        body.tag("b", text[a:b])
        pos = b
    if pos < len(text):
        body.text(text[pos:])
    if truncated:
        body.text(texts.ELLIPSIS)
    return body


def _words(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)][:DIFF_MAX_WORDS]


def only_layout_changed(before: str, after: str) -> bool:
    """The same words in the same order: the edit changed whitespace or formatting only
    (formatting does not reach the text)."""
    return before.split() == after.split()


def render_diff(before: str, after: str, budget: int) -> _Html | None:
    """Removed words in <s>, added ones in <b>, `DIFF_CONTEXT` unchanged words around each
    change, within `budget` UTF-16 units; None when the words are the same."""
    old, new = _words(before), _words(after)
    if [w for w, _a, _b in old] == [w for w, _a, _b in new]:
        return None
    ops = SequenceMatcher(None, [w for w, _a, _b in old], [w for w, _a, _b in new], autojunk=False)
    codes = ops.get_opcodes()
    pieces: list[tuple[str, str]] = []  # (tag or "" or "gap", text)

    def span(words: list[tuple[str, int, int]], text: str, i: int, j: int) -> str:
        return text[words[i][1] : words[j - 1][2]] if j > i else ""

    for n, (op, i1, i2, j1, j2) in enumerate(codes):
        if op == "equal":
            first, last, size = n == 0, n == len(codes) - 1, j2 - j1
            if not first and not last and size <= 2 * DIFF_CONTEXT:
                pieces.append(("", span(new, after, j1, j2)))
                continue
            if not first:  # the words after the previous change
                pieces.append(("", span(new, after, j1, min(j2, j1 + DIFF_CONTEXT))))
            if size > (DIFF_CONTEXT if first or last else 2 * DIFF_CONTEXT):
                pieces.append(("gap", ELLIPSIS_GAP))
            if not last:  # the words before the next change
                pieces.append(("", span(new, after, max(j1, j2 - DIFF_CONTEXT), j2)))
            continue
        if i2 > i1:
            pieces.append(("s", span(old, before, i1, i2)))
        if j2 > j1:
            pieces.append(("b", span(new, after, j1, j2)))
    body = _Html()
    for k, (tag, text) in enumerate(pieces):
        if not text:
            continue
        sep = "" if k == 0 or tag == "gap" or pieces[k - 1][0] == "gap" else " "
        if tag == "gap":
            text = text.lstrip() if k == 0 else text.rstrip() if k == len(pieces) - 1 else text
        piece = _Html()
        if sep:
            piece.text(sep)
        if tag in ("s", "b"):
            piece.tag(tag, text)
        else:
            piece.text(text)
        if body.units + piece.units > budget:
            room = budget - body.units - utf16_len(sep) - utf16_len(texts.ELLIPSIS)
            if room > 20 and tag != "gap":  # what fits of this piece, then the marker
                cut = _cut_point(text, room)
                if sep:
                    body.text(sep)
                (body.tag(tag, text[:cut]) if tag in ("s", "b") else body.text(text[:cut]))
            body.text(texts.ELLIPSIS)
            break
        body.extend(piece)
    return body


ELLIPSIS_GAP = " … "


def _format_time(when: datetime, tz: ZoneInfo) -> str:
    local = when.astimezone(tz)
    return f"{local:%d %b %Y %H:%M} {local.tzname() or tz.key}"


def render_alert(
    job: AlertJob,
    tz: ZoneInfo,
    *,
    max_units: int = MAX_MESSAGE_UNITS,
    previous: str | None = None,
) -> tuple[str, InlineKeyboardMarkup]:
    """The alert message (HTML) and its buttons: 👍 / 👎 / 🔕 / Open. For an edit, `previous`
    is the post's text before it: the body then shows what changed."""
    post = job.post
    link = post_link(post)

    head = _Html()
    marker = texts.PRIORITY_MARKERS.get(job.priority, "")
    head.text(f"{marker} ")
    head.tag("b", texts.PRIORITY_NAMES.get(job.priority, job.priority))
    kind = texts.KIND_LABELS.get(job.kind, "")
    if job.origin == "suggested":
        kind = texts.SUGGESTED_LABEL
    if kind:
        head.text(" · ")
        head.tag("b", kind)
    head.text("\n")
    title = clean_text(post.title) or (f"@{post.username}" if post.username else "channel")
    head.tag("b", title[:256])
    if post.username and title != f"@{post.username}":
        head.text(f" @{post.username}")
    head.text("\n")
    language = f"{job.language}"
    if job.language != "und":
        language += f" {round(job.language_confidence * 100)}%"
    head.text(f"🕒 {_format_time(post.date, tz)} · 🌐 {language}")
    if post.edit_date is not None and job.kind == "edit":
        head.text(f" · edited {_format_time(post.edit_date, tz)}")
    head.text("\n\n")

    foot = _Html()
    foot.text("\n\n🔗 ")
    foot.tag("a", texts.OPEN_POST, href=link)
    if job.also_in:
        foot.text(f" · also in {texts.count_suffix(len(job.also_in), 'channel')}")
    if job.origin == "suggested":
        pass  # no watch matched: the reason line says why it was sent
    elif job.watch_id and job.analyst_id < 0:
        # A desk (a group or channel): its watch number means nothing to the team; the query
        # says why it came (the route's source is in /routes).
        foot.text(f"\n🔎 {texts.DESK_WATCH}: ")
        foot.tag("code", clean_text(job.watch_query)[:600])
    elif job.watch_id:
        foot.text(f"\n🔎 Watch #{job.watch_id}: ")
        foot.tag("code", clean_text(job.watch_query)[:600])
    else:  # an edit or deletion of a post alerted on before, which matches no watch now
        foot.text(f"\n🔎 {texts.NO_LONGER_MATCHES}")
    if job.reasons:
        foot.text("\n")
        foot.tag("i", clean_text("; ".join(job.reasons))[:300])

    text = clean_text(post.text)
    doc = _Html()
    doc.extend(head)
    if job.kind == "edit" and previous is not None:
        budget = max(0, max_units - head.units - foot.units)
        doc.extend(_edit_body(clean_text(previous), text, budget))
    elif text.strip():
        budget = max(0, max_units - head.units - foot.units)
        spans = normalise_spans(job.spans, len(text))
        doc.extend(render_body(text, spans, budget))
    else:
        doc.raw(texts.NO_TEXT, "(no text)")
    doc.extend(foot)
    keyboard = alert_keyboard(post.channel_id, post.message_id, job.watch_id, link)
    if job.also_in:  # a story with copies: how it spread (handlers.campaigns)
        keyboard.inline_keyboard.append([spread_button(post.channel_id, post.message_id)])
    return doc.html(), keyboard


def _edit_body(before: str, after: str, budget: int) -> _Html:
    body = _Html()
    if only_layout_changed(before, after):
        body.text(texts.EDIT_ONLY_LAYOUT)
        return body
    line = _Html()
    line.tag("i", texts.EDIT_DIFF_LEGEND)
    line.text("\n")
    diff = render_diff(before, after, max(0, budget - line.units))
    if diff is None:  # cannot happen after only_layout_changed; kept total
        body.text(texts.EDIT_ONLY_LAYOUT)
        return body
    body.extend(line)
    body.extend(diff)
    return body


def render_notice(notice: Notice) -> str:
    """A system notice: plain text, escaped and cut to fit (HTML notices, such as digests,
    are built to fit by their own renderer)."""
    if notice.html:
        return notice.text
    budget = MAX_MESSAGE_UNITS - utf16_len(texts.NOTICE_PREFIX)
    body = render_body(clean_text(notice.text), [], budget)
    return texts.NOTICE_PREFIX + body.html()
