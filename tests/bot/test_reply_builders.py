"""Every reply builder, fed random hostile input, builds a reply Telegram would accept.

The builders are found by walking `bot.texts` and `bot.keyboards` (each public function that
returns a text or a keyboard), so a builder added later is covered the day it is written: its
arguments are drawn from their annotations and names. A builder whose annotation this file
does not know fails `test_every_builder_is_covered` with its name, not silently.

What "accepted" means, as the loopback Bot API server checks it: the HTML parses under
Telegram's rules (every user string escaped, tags closed and nested), the text as sent (after
`bot.fit`, which every service Bot applies) is at most 4096 UTF-16 units and still parses,
and a keyboard as sent has at most 100 buttons, each with 1-64 bytes of callback data or a URL.
Keyboards are checked before fitting too: a button whose callback data is too long would be
dropped by the fit, silently taking its action away, so every builder's own data must fit.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import UTC, datetime
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiogram.types import InlineKeyboardMarkup
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot import campaign_views, keyboards, texts
from bot.alerts import AlertJob, Notice
from bot.callback_data import AdminView, ArchiveKind, FeedbackAction, ListAction
from bot.delivery.digest import render_digest
from bot.delivery.render import render_notice
from bot.fit import (
    MAX_BUTTON_TEXT,
    MAX_BUTTONS,
    MAX_CALLBACK_DATA,
    MAX_TEXT,
    fit_markup,
    fit_text,
    utf16_len,
)
from bot.models import Post
from bot.triage.priority import Priority
from bot.triage.surge import SurgeAlert
from tests.support.html_check import parse_html

# The pieces hostile post text is made of: markup, entities, emoji (astral and joined), RTL
# and zero-width controls, combining marks, lone surrogates' neighbours, long words.
_PIECES = [
    "<",
    ">",
    "&",
    "&amp;",
    "&lt;b&gt;",
    "<b>",
    "</i>",
    '"',
    "'",
    "😀",
    "👩\u200d👩\u200d👧",
    "🇦🇿",
    "\u202e",
    "\u200f",
    "\u200b",
    "\u2066",
    "\ufeff",
    "й",
    "\u0301",
    "שלום",
    "مرحبا",
    "Qarabağ",
    "Зангезур",
    "\n",
    "\t",
    " ",
    "x" * 300,
]
_hostile = st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=20)), max_size=40).map(
    "".join
)
_long = st.integers(min_value=1, max_value=12).map(lambda n: ("<&😀 Зангезур ‮ " * 900)[: n * 850])
_str = st.one_of(_hostile, _long)
_ids = st.one_of(
    st.integers(min_value=0, max_value=10**4),
    st.integers(min_value=-(10**13), max_value=10**13),
    st.just(-1001234567890),
)
_counts = st.integers(min_value=0, max_value=10**9)
_pages = st.integers(min_value=0, max_value=10**6)
_label = st.one_of(_hostile, _long).filter(lambda s: s.strip() != "")  # a title or a name
_floats = st.floats(min_value=0, max_value=1e9, allow_nan=False)
_stream_ids = st.tuples(st.integers(0, 2**48), st.integers(0, 999)).map(lambda t: f"{t[0]}-{t[1]}")
_html_line = _str.map(escape)  # a line some other builder made (escaped HTML)

# Parameters whose value is one of a few words, by name: any of those words.
_WORDS: dict[str, st.SearchStrategy[Any]] = {
    "priority": st.sampled_from([p.value for p in Priority]),
    "current": st.sampled_from([p.value for p in Priority]),
    "threshold": st.sampled_from([p.value for p in Priority]),
    "weight": st.sampled_from([p.value for p in Priority]),
    "role": st.sampled_from(["analyst", "admin"]),
    "decision": st.sampled_from(["approved", "denied"]),
    "mode": st.sampled_from(["off", "hourly", "daily"]),
    "digest": st.sampled_from(["off", "hourly", "daily"]),
}
# Parameters that are HTML built elsewhere (a line of a list), by name.
_HTML_LISTS = {"examples", "items", "lines", "stream_lines", "health_lines", "channel_lines"}
_HTML_STRS = {"snippet_html"}


def _make_page(page: int) -> str:
    return f"pg:{page}"


_surges = st.builds(
    SurgeAlert,
    watch_id=_ids,
    posts=_counts,
    channels=_counts,
    window_hours=st.integers(min_value=1, max_value=72),
    ratio=st.floats(min_value=0, max_value=1e6, allow_nan=False),
    top_channels=st.lists(st.tuples(_ids, _counts), max_size=30).map(tuple),
    new_words=st.lists(_hostile, max_size=40).map(tuple),
    usual=st.floats(min_value=0, max_value=1e6, allow_nan=False),
    end_hour=st.integers(min_value=0, max_value=10**6),
    hourly=st.lists(_counts, max_size=200).map(tuple),
    usual_hourly=st.lists(st.floats(min_value=0, max_value=1e6), max_size=200).map(tuple),
)

# Annotation (as written, `from __future__ import annotations`) -> values.
_BY_TYPE: dict[str, st.SearchStrategy[Any]] = {
    "int": _ids,
    "int | None": st.one_of(st.none(), _ids),
    "int | str": st.one_of(_ids, _str),
    "str": _str,
    "str | None": st.one_of(st.none(), _str),
    "bool": st.booleans(),
    "float": st.floats(min_value=0, max_value=1e7, allow_nan=False),
    "list[str]": st.lists(_str, max_size=60),
    "tuple[str, ...]": st.lists(_str, max_size=60).map(tuple),
    "list[tuple[str, int]]": st.lists(st.tuples(_str, _counts), max_size=60),
    "list[tuple[int, str, int]]": st.lists(st.tuples(_ids, _str, _counts), max_size=60),
    "dict[str, object]": st.one_of(
        st.just({}),
        st.fixed_dictionaries(
            {"threshold": st.one_of(st.none(), st.floats(0, 1)), "relevant": _counts}
        ),
    ),
    "SurgeAlert": _surges,
    "Callable[[int], str]": _str.map(lambda name: lambda _id: name),
    "Sequence[tuple[int, bool]]": st.lists(st.tuples(_ids, st.booleans()), max_size=150),
    "Sequence[tuple[str, str]]": st.lists(st.tuples(_str, _str), max_size=150),
    "Sequence[tuple[int, str]]": st.lists(st.tuples(_ids, _str), max_size=150),
    "frozenset[int]": st.frozensets(_ids, max_size=20),
    "FeedbackAction | None": st.one_of(st.none(), st.sampled_from(list(FeedbackAction))),
    "ArchiveKind": st.sampled_from(list(ArchiveKind)),
    "ListAction": st.sampled_from(list(ListAction)),
    "AdminView": st.sampled_from(list(AdminView)),
    "InlineKeyboardMarkup | None": st.none(),
    # Campaign views (bot.texts spread_view, amplification_view, trends_lines).
    "list[tuple[str, float, str]]": st.lists(st.tuples(_str, _floats, _str), max_size=60),
    "list[tuple[int, float]]": st.lists(st.tuples(_counts, _floats), max_size=10),
    "list[tuple[str, str, int]]": st.lists(st.tuples(_str, _str, _counts), max_size=60),
    "list[tuple[str, float]]": st.lists(st.tuples(_str, _floats), max_size=10),
    "list[tuple[str, int, int]]": st.lists(st.tuples(_str, _counts, _counts), max_size=20),
    "list[tuple[str, list[int]]]": st.lists(
        st.tuples(_str, st.lists(_counts, min_size=14, max_size=14)), max_size=10
    ),
}


def _strategy(name: str, param: inspect.Parameter) -> st.SearchStrategy[Any] | None:
    annotation = str(param.annotation)
    if name in _WORDS:
        return _WORDS[name]
    if name in {"page", "pages", "total", "days", "scanned", "matched", "rows"}:
        return _pages
    if name in {"newer", "older"}:
        return st.one_of(st.none(), _stream_ids)
    if name == "tag":
        return st.from_regex(r"[0-9a-f]{8}", fullmatch=True)
    if name == "entries":
        return st.lists(st.tuples(st.integers(0, 9), _stream_ids), max_size=150)
    if name in {"people", "shared"} and annotation == "Sequence[tuple[int, str]]":
        return st.lists(st.tuples(_ids, _label), max_size=150)
    if name == "channels" and annotation == "Sequence[tuple[str, str]]":
        return st.lists(st.tuples(_str, _label), max_size=150)
    if name == "make":
        return st.just(_make_page)
    if name in _HTML_LISTS and annotation == "list[str]":
        return st.lists(_html_line, max_size=60)
    if name in _HTML_STRS:
        return _html_line
    if name == "link":
        return st.sampled_from(["https://t.me/chan/1", 'https://t.me/c/1/2?a=1&b="2"'])
    if annotation == "str" and name in {"at", "created", "when", "until"}:
        return _str
    return _BY_TYPE.get(annotation)


def _builders(module: Any, returns: set[str]) -> list[tuple[str, Callable[..., Any]]]:
    found = []
    for name, fn in sorted(vars(module).items()):
        if name.startswith("_") or not inspect.isfunction(fn):
            continue
        if fn.__module__ != module.__name__:
            continue
        if str(inspect.signature(fn).return_annotation) in returns:
            found.append((f"{module.__name__}.{name}", fn))
    return found


TEXT_BUILDERS = _builders(texts, {"str"})
KEYBOARD_BUILDERS = _builders(
    keyboards, {"InlineKeyboardMarkup", "InlineKeyboardMarkup | None"}
) + _builders(campaign_views, {"InlineKeyboardMarkup", "InlineKeyboardMarkup | None"})
# Not replies: plain-text lines another view escapes, or a helper reading a keyboard.
NOT_REPLIES = {"bot.texts.learning_system_lines", "bot.keyboards.url_of", "bot.texts.count_suffix"}
# Plain text: sent as a notice, which the renderer escapes (`Notice(html=False)`), or escaped
# where it is put into HTML.
PLAIN = {"bot.texts.analyst_blocked", "bot.texts.shared_label"}


def _arguments(fn: Callable[..., Any]) -> st.SearchStrategy[dict[str, Any]]:
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for name, param in inspect.signature(fn).parameters.items():
        strategy = _strategy(name, param)
        assert strategy is not None, f"{fn.__qualname__}({name}: {param.annotation}) unknown"
        fields[name] = strategy
    return st.fixed_dictionaries(fields)


def test_every_builder_is_covered() -> None:
    """A new builder with an argument type this file cannot draw fails here, by name."""
    assert len(TEXT_BUILDERS) > 40 and len(KEYBOARD_BUILDERS) > 10
    unknown = [
        f"{label}({name}: {param.annotation})"
        for label, fn in TEXT_BUILDERS + KEYBOARD_BUILDERS
        for name, param in inspect.signature(fn).parameters.items()
        if _strategy(name, param) is None
    ]
    assert unknown == [], "add a strategy for: " + ", ".join(unknown)


def _assert_sendable_html(html: str, where: str) -> None:
    parse_html(html)  # raises with the offset on anything Telegram refuses
    sent = fit_text(html, "HTML")
    assert utf16_len(parse_html(sent).text) <= MAX_TEXT, where


def _assert_sendable_keyboard(markup: InlineKeyboardMarkup | None, where: str) -> None:
    if markup is None:
        return
    for row in markup.inline_keyboard:
        for button in row:
            data = button.callback_data
            assert data is not None or button.url, f"{where}: a button with no action"
            if data is not None:
                size = len(data.encode())
                assert 1 <= size <= MAX_CALLBACK_DATA, f"{where}: {size} bytes {data!r}"
            assert button.text.strip(), f"{where}: a button with no label"  # BUTTON_TEXT_INVALID
    sent = fit_markup(markup)
    assert sum(len(row) for row in sent.inline_keyboard) <= MAX_BUTTONS, where
    labels = [b.text for row in sent.inline_keyboard for b in row]
    assert all(b.strip() and utf16_len(b) <= MAX_BUTTON_TEXT for b in labels), where
    assert all(row for row in sent.inline_keyboard), where


_RUNS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)


@pytest.mark.parametrize(
    ("label", "builder"),
    [b for b in TEXT_BUILDERS if b[0] not in NOT_REPLIES],
    ids=[b[0] for b in TEXT_BUILDERS if b[0] not in NOT_REPLIES],
)
def test_every_text_builder_builds_html_telegram_accepts(
    label: str, builder: Callable[..., str]
) -> None:
    @_RUNS
    @given(kwargs=_arguments(builder))
    def run(kwargs: dict[str, Any]) -> None:
        built = builder(**kwargs)
        if label in PLAIN:
            built = render_notice(Notice(recipient_id=1, text=built))
        _assert_sendable_html(built, f"{label}({kwargs!r:.300})")

    run()


@pytest.mark.parametrize(
    ("label", "builder"),
    [b for b in KEYBOARD_BUILDERS if b[0] not in NOT_REPLIES],
    ids=[b[0] for b in KEYBOARD_BUILDERS if b[0] not in NOT_REPLIES],
)
def test_every_keyboard_builder_builds_buttons_telegram_accepts(
    label: str, builder: Callable[..., InlineKeyboardMarkup | None]
) -> None:
    @_RUNS
    @given(kwargs=_arguments(builder))
    def run(kwargs: dict[str, Any]) -> None:
        _assert_sendable_keyboard(builder(**kwargs), f"{label}({kwargs!r:.300})")

    run()


def _job(text: str, title: str, priority: str, held: bool, reasons: tuple[str, ...]) -> AlertJob:
    post = Post(
        channel_id=-1001234567890,
        message_id=10**9,
        date=datetime(2026, 12, 7, 12, 0, tzinfo=UTC),
        text=text,
        title=title,
        username=None,
    )
    return AlertJob(
        analyst_id=1,
        post=post,
        watch_id=10**6,
        watch_query=text[:50],
        priority=priority,
        reasons=reasons,
        spans=((0, 3),),
        language="ru",
        language_confidence=0.9,
        held=held,
    )


@settings(max_examples=30, deadline=None, database=None)
@given(
    posts=st.lists(
        st.tuples(
            _str,
            _hostile,
            st.sampled_from([p.value for p in Priority]),
            st.booleans(),
            st.lists(_hostile, max_size=5).map(tuple),
        ),
        min_size=1,
        max_size=300,
    ),
    mode=st.sampled_from(["hourly", "daily"]),
)
def test_any_digest_fits_one_message(posts: list[tuple[Any, ...]], mode: str) -> None:
    jobs = [_job(*p) for p in posts]
    html = render_digest(jobs, ZoneInfo("Asia/Baku"), mode)
    parse_html(html)
    assert utf16_len(html) <= MAX_TEXT  # fits before any cut: the digest counts what it drops


@settings(max_examples=40, deadline=None, database=None)
@given(text=_str, html=st.booleans())
def test_any_notice_renders_as_sendable_html(text: str, html: bool) -> None:
    body = escape(text) if html else text  # an HTML notice is built (escaped) by its sender
    _assert_sendable_html(render_notice(Notice(recipient_id=1, text=body, html=html)), "notice")
