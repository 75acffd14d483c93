"""A surge alert's notices: who gets one, what fits, and what is sent when the chart is not
there (drawing failed, or the kept chart expired before delivery)."""

from __future__ import annotations

from bot.alerts import Notice
from bot.fit import MAX_CAPTION, MAX_TEXT
from bot.surge_alerts import MAX_LABEL, surge_label, surge_notices
from bot.triage.surge import SurgeAlert
from tests.bot.harness import BotApp, running
from tests.delivery.util import settled
from tests.support.html_check import parse_html

ANN, BOB = 950, 951
HOSTILE = "<b>&amp; \u202eRTL\u200b 🇺🇦 Зангезур " * 300  # about 10,000 characters


def alert(watch_id: int = 5) -> SurgeAlert:
    return SurgeAlert(
        watch_id,
        37,
        14,
        3,
        6.2,
        tuple((600 + i, 9 - i) for i in range(8)),
        tuple(HOSTILE[i : i + 50] for i in range(0, 400, 50)),
        6.0,
        490_000,
        (1,) * 69 + (9, 12, 16),
        (1.0,) * 72,
    )


async def test_recipients_are_the_watches_with_surges_on_and_the_caption_fits(
    app: BotApp,
) -> None:
    campaigns = app.repos.campaigns
    await campaigns.set_surges(12, False)
    notices = await surge_notices(
        alert(-3), [(11, ANN), (12, BOB), (13, ANN)], HOSTILE, lambda c: HOSTILE, campaigns
    )
    assert [n.recipient_id for n in notices] == [ANN]  # BOB's only watch has them off
    (notice,) = notices
    assert notice.photo == "surge:-3:490000"
    chart = await campaigns.chart(notice.photo)
    assert chart is not None and chart.startswith(b"\x89PNG")
    visible = parse_html(notice.text).text
    assert len(visible.encode("utf-16-le")) // 2 <= MAX_CAPTION
    assert "SS3" not in notice.text and "watch S3" in notice.text
    assert notice.markup is not None and '"sg:ex:-3:490000:-1"' in notice.markup
    assert '"sg:of:11:0:-1"' in notice.markup  # ANN's first watch of the subject
    # Everyone off: no notice at all.
    await campaigns.set_surges(11, False)
    await campaigns.set_surges(13, False)
    assert await surge_notices(alert(-3), [(11, ANN), (13, ANN)], "q", str, campaigns) == []


async def test_without_a_chart_the_alert_is_sent_as_text(app: BotApp) -> None:
    await app.make_analyst(ANN)
    campaigns = app.repos.campaigns
    # Drawing fails (no time to draw): a text notice, up to a message's length.
    (failed,) = await surge_notices(
        alert(), [(5, ANN)], HOSTILE, lambda c: HOSTILE, campaigns, chart_timeout_s=0.001
    )
    assert failed.photo is None
    assert len(parse_html(failed.text).text.encode("utf-16-le")) // 2 <= MAX_TEXT
    # A kept chart that expired before delivery: the notice goes out as a message.
    expired = Notice(ANN, "📈 <b>Surge</b> · watch #5", html=True, photo="surge:5:1")
    await app.repos.notices.send(failed, expired)
    async with running(app.worker(chat_rate=100, global_rate=100)):
        await settled(app.redis, 30)
    sent = [m for m in app.server.sent if m.chat_id == ANN]
    assert [m.method for m in sent] == ["sendMessage", "sendMessage"]
    assert app.server.photos == []
    assert "Surge" in sent[0].text and next(t for t, _d in sent[0].buttons()) == "🔎 Examples"


async def test_a_shared_watch_is_named_escaped_and_cut(app: BotApp) -> None:
    assert surge_label(5) == "#5" and surge_label(-3) == "S3"
    label = surge_label(-3, "<b>Border</b> & " + "x" * 100)
    assert label.startswith("S3 <b>Border</b> & x") and len(label) == MAX_LABEL
    (notice,) = await surge_notices(
        alert(-3), [(11, ANN)], "q", str, app.repos.campaigns, chart=False, label=label
    )
    assert "watch S3 &lt;b&gt;Border&lt;/b&gt; &amp; xxx" in notice.text
    parse_html(notice.text)  # well-formed
