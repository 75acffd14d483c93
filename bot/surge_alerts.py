"""A surge alert as its recipients get it: the notice text, the chart and the buttons.

The triage worker decides a surge (`SurgeTracker.check`, which also records the alert and its
posts for the Examples button), notes it unsent, and in a task beside its batches hands it here
with the watches that share its subject, then appends the notices and marks it told in one
step (`AlertOutbox.tell_surge`). Watches whose analyst turned surge alerts off are left out.
The chart is drawn once, out of process (`bot.charts`), kept in Redis beside the alert, and
every notice refers to it, so the delivery worker sends a photo with the text as its caption
(cut to Telegram's 1024 units). A chart that cannot be drawn leaves a text notice: the alert
matters more than its picture.
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

# A surge's notices wait for its chart (about a second), in a task of the triage worker's
# beside its batches: a renderer stuck longer costs the alert its picture, nothing else.
SURGE_CHART_TIMEOUT_S = 10.0
MAX_LABEL = 64  # a shared watch's label in the notice's first line (names are at most 60)


def surge_label(subject: int, name: str = "") -> str:
    """A surge subject as analysts know it (plain text): #N for a watch; for a shared watch
    SN and its name, as /shared shows it."""
    if subject >= 0:
        return f"#{subject}"
    return texts.shared_label(-subject, name)[:MAX_LABEL]


async def surge_notices(
    alert: SurgeAlert,
    recipients: Sequence[tuple[int, int]],
    query: str,
    channel_name: Callable[[int], str],
    campaigns: CampaignRepository,
    *,
    chart: bool = True,
    chart_timeout_s: float = SURGE_CHART_TIMEOUT_S,
    label: str | None = None,
) -> list[Notice]:
    """The notices of one surge for `recipients` ((watch id, analyst) pairs of the watches
    with the alert's subject); none for watches with surge alerts off. `label` names the
    subject (`surge_label`; a shared watch's with its name), `query` is shown beside it."""
    off = await campaigns.surges_off(sorted({w for w, _owner in recipients}))
    wanted: dict[int, int] = {}  # analyst -> one of their watches (for the off button)
    for watch_id, owner in sorted(recipients):
        if watch_id not in off:
            wanted.setdefault(owner, watch_id)
    if not wanted:
        return []
    text = texts.surge_notice(alert, label or surge_label(alert.watch_id), query, channel_name)
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
