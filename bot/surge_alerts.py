"""A surge alert as its recipients get it: the notice text, the chart and the buttons.

The triage worker decides a surge (`SurgeTracker.check`, which also records the alert and its
posts for the Examples button) and hands it here with the watches that share its subject.
Watches whose analyst turned surge alerts off are left out. The chart is drawn once, out of
process (`bot.charts`), kept in Redis beside the alert, and every notice refers to it, so the
delivery worker sends a photo with the text as its caption (cut to Telegram's 1024 units). A
chart that cannot be drawn leaves a text notice: the alert matters more than its picture.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bot import texts
from bot.alerts import Notice
from bot.campaign_views import surge_alert_keyboard
from bot.charts import render_or_none, surge_spec
from bot.fit import MAX_CAPTION, fit_html
from bot.storage.campaigns import CampaignRepository
from bot.triage.surge import SurgeAlert

__all__ = ["SURGE_CHART_TIMEOUT_S", "surge_label", "surge_notices"]

# The triage worker waits for the chart before it queues the notices (about a second): a
# renderer stuck longer costs the alert its picture, not the worker its posts.
SURGE_CHART_TIMEOUT_S = 10.0


def surge_label(subject: int) -> str:
    """A surge subject as analysts know it: #N for a watch, SN for a shared watch."""
    return f"S{-subject}" if subject < 0 else f"#{subject}"


async def surge_notices(
    alert: SurgeAlert,
    recipients: Sequence[tuple[int, int]],
    query: str,
    channel_name: Callable[[int], str],
    campaigns: CampaignRepository,
    *,
    chart: bool = True,
    chart_timeout_s: float = SURGE_CHART_TIMEOUT_S,
) -> list[Notice]:
    """The notices of one surge for `recipients` ((watch id, analyst) pairs of the watches
    with the alert's subject); none for watches with surge alerts off."""
    off = await campaigns.surges_off(sorted({w for w, _owner in recipients}))
    wanted: dict[int, int] = {}  # analyst -> one of their watches (for the off button)
    for watch_id, owner in sorted(recipients):
        if watch_id not in off:
            wanted.setdefault(owner, watch_id)
    if not wanted:
        return []
    text = texts.surge_notice(alert, surge_label(alert.watch_id), query, channel_name)
    photo = None
    if chart:
        png = await render_or_none(surge_spec(alert), timeout_s=chart_timeout_s)
        if png is not None:
            photo = await campaigns.keep_chart(alert.watch_id, alert.end_hour, png)
    body = fit_html(text, MAX_CAPTION) if photo else fit_html(text)
    return [
        Notice(
            owner,
            body,
            html=True,
            markup=surge_alert_keyboard(alert.watch_id, alert.end_hour, watch_id).model_dump_json(
                exclude_none=True
            ),
            photo=photo,
        )
        for owner, watch_id in sorted(wanted.items())
    ]
