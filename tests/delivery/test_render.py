from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.alerts import AlertJob, Notice
from bot.callback_data import FeedbackAction, FeedbackCB
from bot.delivery.render import post_link, render_alert, render_notice, utf16_len
from bot.models import Post
from tests.support.html_check import entity_text, parse_html, strip_text

KYIV = ZoneInfo("Europe/Kyiv")


def _job(text: str, spans: tuple[tuple[int, int], ...] = (), **kw: object) -> AlertJob:
    post = Post(
        channel_id=kw.pop("channel_id", 1001),  # type: ignore[arg-type]
        message_id=42,
        date=datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
        text=text,
        username=kw.pop("username", "chan_name"),  # type: ignore[arg-type]
        title=kw.pop("title", "Title <b>&"),  # type: ignore[arg-type]
    )
    return AlertJob(
        analyst_id=7,
        post=post,
        watch_id=3,
        watch_query=str(kw.pop("query", "мигрант* & <x>")),
        priority=str(kw.pop("priority", "high")),
        reasons=("watch priority high",),
        spans=spans,
        language="ru",
        language_confidence=0.97,
        kind=str(kw.pop("kind", "new")),
    )


def _parsed(html: str) -> str:
    parsed = strip_text(parse_html(html))
    assert utf16_len(parsed.text) <= 4096
    return parsed.text


def test_alert_has_everything_and_bolds_spans() -> None:
    text = "Призыв выслать мигрантов <script>&amp; 🇺🇦 مرحبا\u200b"
    html, kb = render_alert(_job(text, ((15, 24),)), KYIV)
    parsed = parse_html(html)
    assert text in parsed.text  # everything escaped and shown verbatim
    bold = [
        parsed.text.encode("utf-16-le")[e.offset * 2 : (e.offset + e.length) * 2].decode(
            "utf-16-le"
        )
        for e in parsed.entities
        if e.type == "bold"
    ]
    assert "мигрантов" in bold
    assert "Title <b>&" in parsed.text and "@chan_name" in parsed.text
    assert "14:00" in parsed.text  # 12:00 UTC in Kyiv (EET)
    assert (
        "ru 97%" in parsed.text and "Watch #3" in parsed.text and "мигрант* & <x>" in parsed.text
    )
    assert any(
        e.type == "text_link" and e.url == "https://t.me/chan_name/42" for e in parsed.entities
    )
    buttons = [b for row in kb.inline_keyboard for b in row]
    assert [b.text for b in buttons] == ["👍 Relevant", "👎 Noise", "🔕 Mute channel", "Open"]
    assert buttons[3].url == "https://t.me/chan_name/42"
    data = FeedbackCB.unpack(buttons[0].callback_data or "")
    assert (data.action, data.channel_id, data.message_id, data.watch_id) == (
        FeedbackAction.RELEVANT,
        1001,
        42,
        3,
    )


def test_edit_and_delete_render_distinctly() -> None:
    new = parse_html(render_alert(_job("x"), KYIV)[0]).text
    edit = parse_html(render_alert(_job("x", kind="edit"), KYIV)[0]).text
    gone = parse_html(render_alert(_job("x", kind="delete"), KYIV)[0]).text
    assert "✏️ edited" in edit and "🗑 deleted" in gone
    assert "edited" not in new and "deleted" not in new


def test_long_post_is_cut_with_ellipsis_on_a_safe_boundary() -> None:
    text = ("😀 word " * 3000)[:10_000]
    html, _ = render_alert(_job(text, ((0, 1), (9990, 10_000))), KYIV)
    plain = _parsed(html)
    assert "…" in plain
    assert utf16_len(plain) > 3900  # cut close to the limit, not far below
    assert "\ufffd" not in plain


def test_private_channel_link_and_empty_text() -> None:
    job = _job("", channel_id=-1001234567890, username=None, title="")
    assert post_link(job.post) == "https://t.me/c/1234567890/42"
    html, _kb = render_alert(job, KYIV)
    assert "(no text)" in _parsed(html)


def test_malformed_spans_and_lone_surrogates_are_tolerated() -> None:
    text = "abc\ud800def\x00ghi"
    html, _ = render_alert(_job(text, ((-5, 2), (8, 100), (4, 3), (1, 5))), KYIV)
    plain = _parsed(html)
    html.encode("utf-8")  # sendable
    assert "abc\ufffddef ghi" in plain


def test_notice_is_escaped() -> None:
    html = render_notice(Notice(1, "a < b & c > d"))
    assert "a < b & c > d" in parse_html(html).text


_pieces = st.one_of(
    st.characters(codec="utf-8"),
    st.sampled_from(
        [
            "<",
            ">",
            "&",
            "&amp;",
            "\u200b",
            "\u200d",
            "👨‍👩‍👧",
            "\u0301",
            "שלום",
            "\U0001f1fa\U0001f1e6",
            " ",
            "\n",
            "<b>",
            "</i>",
            "😀" * 50,
        ]
    ),
)
_texts = st.lists(_pieces, max_size=3000).map("".join)


@settings(max_examples=60, deadline=None)
@given(
    text=_texts,
    spans=st.lists(st.tuples(st.integers(-10, 7000), st.integers(-10, 7000)), max_size=60),
    title=st.text(max_size=300),
    query=st.text(max_size=500),
)
def test_any_text_renders_as_valid_html_within_the_limit(
    text: str, spans: list[tuple[int, int]], title: str, query: str
) -> None:
    html, _ = render_alert(_job(text, tuple(spans), title=title, query=query), KYIV)
    _parsed(html)
    html.encode("utf-8")


@settings(max_examples=40, deadline=None)
@given(
    pattern=st.text(
        alphabet=st.sampled_from(["😀", "a", " ", "<", "&", "\u0301", "\u200d", "ש"]),
        min_size=1,
        max_size=40,
    ),
    size=st.integers(3500, 10_000),
    cut_spans=st.booleans(),
)
def test_texts_at_the_limit_fit(pattern: str, size: int, cut_spans: bool) -> None:
    text = (pattern * (size // len(pattern) + 1))[:size]
    spans = ((0, 4000), (4090, 4100)) if cut_spans else ()
    html, _ = render_alert(_job(text, spans), KYIV)
    _parsed(html)


def _edit(before: str, after: str, title: str = "Title <b>&") -> str:
    html, _kb = render_alert(_job(after, kind="edit", title=title), KYIV, previous=before)
    return html


def test_an_edit_shows_the_words_removed_and_added() -> None:
    before = "Власти требуют выслать всех мигрантов из города <немедленно> & без суда. " * 3
    after = before.replace("всех ", "", 1).replace("города", "области 🇺🇦", 1) + "Обновлено."
    html = _edit(before, after)
    parsed = parse_html(html)
    struck = [entity_text(parsed.text, e) for e in parsed.entities if e.type == "strikethrough"]
    bold = [entity_text(parsed.text, e) for e in parsed.entities if e.type == "bold"]
    assert struck == ["всех", "города"]
    assert "области 🇺🇦" in bold and "Обновлено." in bold
    assert "✏️ edited" in parsed.text and "What changed" in parsed.text
    assert "<немедленно> &" in parsed.text  # context, escaped
    assert "…" in parsed.text  # the unchanged middle is left out


def test_an_edit_of_whitespace_or_formatting_only_says_so_in_one_line() -> None:
    before = "Призыв  выслать\nмигрантов & <b>"
    plain = _parsed(_edit(before, " Призыв выслать мигрантов  &   <b>\n"))
    assert "Only whitespace or formatting changed" in plain
    assert "мигрантов" not in plain.split("Only whitespace")[1].split("\n")[0]
    assert "Only whitespace" in _parsed(_edit("same text", "same text"))


def test_without_the_previous_text_an_edit_shows_the_post() -> None:
    html, _ = render_alert(_job("новый текст", kind="edit"), KYIV)
    assert "новый текст" in _parsed(html) and "What changed" not in _parsed(html)


def test_a_huge_edit_fits() -> None:
    before = " ".join(f"слово{i}" for i in range(2500))
    after = " ".join(f"😀{i}" if i % 2 else f"слово{i}" for i in range(2500))
    plain = _parsed(_edit(before, after))
    assert plain.count("…") >= 1 and utf16_len(plain) > 3500


@settings(max_examples=60, deadline=None)
@given(before=_texts, after=_texts, title=st.text(max_size=300))
def test_any_edit_renders_as_valid_html_within_the_limit(
    before: str, after: str, title: str
) -> None:
    html = _edit(before, after, title=title)
    _parsed(html)
    html.encode("utf-8")


def test_a_suggestion_says_so_and_names_no_watch() -> None:
    post = Post(
        channel_id=5, message_id=9, date=datetime(2026, 3, 1, tzinfo=UTC), text="Депортация <&>"
    )
    job = AlertJob(
        analyst_id=1,
        post=post,
        watch_id=0,
        watch_query="",
        priority="normal",
        reasons=("🧭 Suggested: like posts your team marked relevant",),
        spans=(),
        language="ru",
        language_confidence=0.9,
        origin="suggested",
    )
    html, keyboard = render_alert(job, ZoneInfo("UTC"))
    text = parse_html(html).text
    assert "🧭 suggested" in text.splitlines()[0]
    assert "Watch #" not in text and "no longer" not in text
    assert "like posts your team marked relevant" in text
    assert "Депортация <&>" in text
    assert keyboard.inline_keyboard[0][0].text == "👍 Relevant"  # the same buttons train it


def test_a_desk_alert_names_its_query_not_the_desks_watch_number() -> None:
    """A group or channel (negative chat id) reads the query; its own watch number means
    nothing to the team. The text still fits and keeps the 👍 / 👎 buttons."""
    job = replace(_job("Призыв выслать мигрантов " + "я" * 10_000), analyst_id=-1001234567890)
    html, keyboard = render_alert(job, KYIV)
    text = _parsed(html)
    assert "🔎 Desk watch: мигрант* & <x>" in text and "Watch #3" not in text
    assert any("👍" in b.text for row in keyboard.inline_keyboard for b in row)
    private, _ = render_alert(_job("Призыв выслать мигрантов"), KYIV)
    assert "Watch #3: " in _parsed(private)
