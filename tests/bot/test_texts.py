from __future__ import annotations

import pytest

from bot import texts
from tests.support.html_check import parse_html

CONSTANTS = [v for k, v in vars(texts).items() if k.isupper() and isinstance(v, str)]
HOSTILE = "<b>&amp; </i> \u202e😀 & < >"


@pytest.mark.parametrize("text", CONSTANTS)
def test_every_constant_is_valid_telegram_html(text: str) -> None:
    parse_html(text)


def test_builders_escape_user_data() -> None:
    built = [
        texts.access_request(1, HOSTILE, HOSTILE),
        texts.access_decided(1, HOSTILE, "approved", HOSTILE),
        texts.query_error(HOSTILE * 3, HOSTILE, 5),
        texts.watch_added(1, HOSTILE, "high"),
        texts.watch_line(1, HOSTILE, "low", True),
        texts.test_result(HOSTILE, 7, 10, 2, []),
        texts.test_example(HOSTILE, 'https://t.me/x/1?a=1&b="2"', "ok"),
        texts.channel_line(HOSTILE, HOSTILE, HOSTILE),
        texts.muted(HOSTILE, HOSTILE),
        texts.channel_card(HOSTILE, HOSTILE, HOSTILE, HOSTILE, "normal", HOSTILE),
        texts.analyst_card(1, HOSTILE, HOSTILE, "analyst", False),
        texts.audit_line(HOSTILE, 1, HOSTILE, HOSTILE, HOSTILE),
        texts.dead_line(HOSTILE, HOSTILE, HOSTILE),
        texts.settings_view(HOSTILE, HOSTILE, HOSTILE, HOSTILE),
    ]
    for html in built:
        assert HOSTILE in parse_html(html).text, html
