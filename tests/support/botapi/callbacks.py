"""Callback queries: answerCallbackQuery, once per query, with Telegram's length limit.

The query itself is made by the test (`World.press`); an unanswered one stays in
`open_queries` (see `unanswered_callbacks`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.support.botapi.calls import Params, boolean, method, string
from tests.support.botapi.checks import MAX_CALLBACK_ANSWER
from tests.support.botapi.errors import bad
from tests.support.botapi.world import CallbackAnswer

if TYPE_CHECKING:
    from tests.support.botapi.world import World


@method("answerCallbackQuery")
async def answer_callback_query(world: World, params: Params) -> Any:
    query_id = string(params, "callback_query_id") or ""
    if query_id not in world.open_queries:
        raise bad("query is too old and response timeout expired or query ID is invalid")
    text = string(params, "text")
    if text is not None and len(text) > MAX_CALLBACK_ANSWER:
        raise bad("MESSAGE_TOO_LONG")
    url = string(params, "url")
    del world.open_queries[query_id]
    world.callback_answers[query_id] = CallbackAnswer(
        query_id=query_id,
        text=text,
        show_alert=boolean(params, "show_alert"),
        url=url,
        answered_at=params["_received_at"],
    )
    return True
