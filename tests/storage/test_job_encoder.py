"""The outbox's job entries, built from repeated pieces, are exactly what json.dumps makes of
each alert's fields (the script parses them; delivery reads what it writes back)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bot.alerts import AlertJob
from bot.models import Post
from bot.storage.outbox import Emission, EmitMode, JobEncoder

HOSTILE = 'quote " back \\ slash\n\u202eRTL\u200b 🇺🇦 Зангезур </code>'


def _jobs() -> list[Emission]:
    post = Post(channel_id=-100, message_id=7, date=datetime(2026, 1, 1, tzinfo=UTC), text="x")
    out = []
    for i, (query, reasons, spans) in enumerate(
        [
            ("біженець", ("watch priority normal",), ((50, 57),)),
            (HOSTILE, (HOSTILE, "3 terms matched"), ((0, 1), (10, 120))),
            ("", (), ()),
        ]
    ):
        for analyst, extra in ((1002, {}), (7, {"held": True, "origin": "suggested"})):
            job = AlertJob(
                analyst_id=analyst,
                post=post,
                watch_id=i,
                watch_query=query,
                priority="high",
                reasons=reasons,
                spans=spans,
                language="uk",
                language_confidence=0.55149,
                kind="edit" if i == 1 else "new",
                also_in=("https://t.me/a/1", HOSTILE) if i == 2 else (),
                previous=HOSTILE if i == 1 else None,
                **extra,  # type: ignore[arg-type]
            )
            out.append(Emission(job, EmitMode.NEWER if i == 1 else EmitMode.FIRST, (-100, 7, i)))
    return out


def test_job_entries_are_json_dumps_of_the_alert_fields() -> None:
    encoder = JobEncoder()
    for n, e in enumerate(_jobs() * 2):  # the second round comes from the kept pieces
        made = encoder.job(e, n % 3 + 1, 1)
        j = e.job
        want = json.dumps(
            [str(j.analyst_id), str(e.ledger_post[2]), e.mode.value, n % 3 + 1, 1, j.rest()],
            ensure_ascii=False,
            separators=(",", ":"),
        )
        assert made == want
        assert json.loads(made)[5] == j.rest()
