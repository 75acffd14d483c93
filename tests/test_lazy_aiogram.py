"""bot.lazy_aiogram: aiogram's models built on first use, and what that relies on in aiogram.

Each probe runs in a fresh interpreter (this process imported aiogram long ago): once as stock
aiogram, never importing `bot`, and once with `import bot` first, as every entry point does.
If a test here fails after aiogram or pydantic is upgraded, read bot/lazy_aiogram.py's
docstring: the hook leans on aiogram/types/__init__.py's `model_rebuild` loop and on three
pydantic internals. If aiogram fixed #1513 itself, delete the module and these tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]

UPDATES: list[dict[str, Any]] = [
    {
        "update_id": 10,
        "message": {
            "message_id": 5,
            "date": 1700000000,
            "chat": {"id": 7, "type": "private", "first_name": "Ann", "username": "ann"},
            "from": {"id": 7, "is_bot": False, "first_name": "Ann", "language_code": "en"},
            "text": "/watch sanctions AND oil",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
            "reply_to_message": {
                "message_id": 4,
                "date": 1699999999,
                "chat": {"id": 7, "type": "private", "first_name": "Ann"},
                "text": "hello",
            },
        },
    },
    {
        "update_id": 11,
        "callback_query": {
            "id": "4382",
            "from": {"id": 7, "is_bot": False, "first_name": "Ann"},
            "chat_instance": "-99",
            "data": "fb:up:12",
            "message": {
                "message_id": 6,
                "date": 1700000001,
                "chat": {"id": 7, "type": "private", "first_name": "Ann"},
                "from": {"id": 42, "is_bot": True, "first_name": "Vigil"},
                "text": "alert",
                "reply_markup": {
                    "inline_keyboard": [[{"text": "👍", "callback_data": "fb:up:12"}]]
                },
            },
        },
    },
    {
        "update_id": 12,
        "my_chat_member": {
            "chat": {"id": -1001, "type": "supergroup", "title": "Desk"},
            "from": {"id": 7, "is_bot": False, "first_name": "Ann"},
            "date": 1700000002,
            "old_chat_member": {
                "status": "left",
                "user": {"id": 42, "is_bot": True, "first_name": "Vigil"},
            },
            "new_chat_member": {
                "status": "administrator",
                "user": {"id": 42, "is_bot": True, "first_name": "Vigil"},
                "can_be_edited": False,
                "is_anonymous": False,
                "can_manage_chat": True,
                "can_delete_messages": True,
                "can_manage_video_chats": False,
                "can_restrict_members": False,
                "can_promote_members": False,
                "can_change_info": False,
                "can_invite_users": True,
                "can_post_stories": False,
                "can_edit_stories": False,
                "can_delete_stories": False,
                "can_send_welcome_messages": False,
            },
        },
    },
]


def probe(lazy: bool) -> None:
    """Import aiogram, use a little of it, print one JSON line of what was built and how."""
    import time

    import psutil  # type: ignore[import-untyped]  # no stubs in the lock

    if lazy:
        import bot  # noqa: F401  (installs the hook, as every entry point does)
    process = psutil.Process()
    rss, started = process.memory_info().rss, time.perf_counter()
    import aiogram  # noqa: F401
    from aiogram import Bot, Dispatcher, F, Router  # noqa: F401
    from aiogram.methods import TelegramMethod
    from aiogram.types import TelegramObject

    imported = {
        "rss_mb": (process.memory_info().rss - rss) / 2**20,
        "seconds": time.perf_counter() - started,
    }
    before_use = _built()

    from aiogram.client.default import DefaultBotProperties
    from aiogram.methods import AnswerCallbackQuery, EditMessageText, SendMessage
    from aiogram.methods.base import Response
    from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
    from aiogram.utils.chat_member import ChatMemberAdapter

    api = Bot("42:PROBE", default=DefaultBotProperties(parse_mode="HTML"))
    updates = [Update.model_validate(u, context={"bot": api}) for u in UPDATES]
    markup = InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text="Mute", callback_data="m:1")]]
    )
    methods: list[TelegramMethod[Any]] = [
        SendMessage(chat_id=7, text="<b>hit</b>", reply_markup=markup),
        EditMessageText(chat_id=7, message_id=6, text="done", reply_markup=markup),
        AnswerCallbackQuery(callback_query_id="4382", text="Thanks"),
    ]
    request_data = []  # as AiohttpSession.build_form_data prepares each field
    for method in methods:
        files: dict[str, Any] = {}
        fields = method.model_dump(warnings=False).items()
        prepared = {k: api.session.prepare_value(v, bot=api, files=files) for k, v in fields}
        request_data.append({k: v for k, v in prepared.items() if v})
    sent = Response[Message].model_validate(
        {"ok": True, "result": UPDATES[1]["callback_query"]["message"]}, context={"bot": api}
    )
    message = updates[0].message
    assert message is not None and message.from_user is not None
    member = ChatMemberAdapter.validate_python(UPDATES[2]["my_chat_member"]["new_chat_member"])
    print(
        json.dumps(
            {
                "import": imported,
                "before_use": before_use,
                "after_use": _built(),
                "types_defer_build": TelegramObject.model_config.get("defer_build"),
                "rebuild_overrides": _overrides_of("model_rebuild"),
                "methods_outside_base": _methods_outside_base(),
                "finder": _finder_state(),
                "updates": [
                    u.model_dump(mode="json", by_alias=True, exclude_none=True) for u in updates
                ],
                "event_types": [u.event_type for u in updates],
                "requests": request_data,
                "sent": sent.model_dump(mode="json", exclude_none=True),
                "reply_to_text": message.reply_to_message and message.reply_to_message.text,
                "member": [type(member).__name__, member.status],
            },
            default=str,
        )
    )


def _all_subclasses(base: type) -> list[Any]:
    found: dict[type, None] = {}
    stack: list[type] = [base]
    while stack:
        subclasses: list[type] = stack.pop().__subclasses__()
        for sub in subclasses:
            if sub not in found:
                found[sub] = None
                stack.append(sub)
    return list(found)


def _built() -> dict[str, Any]:
    from aiogram.methods import TelegramMethod
    from aiogram.types import TelegramObject

    types = _all_subclasses(TelegramObject)
    methods = [m for m in _all_subclasses(TelegramMethod) if "[" not in m.__name__]
    return {
        "types": len(types),
        "types_built": sorted(t.__name__ for t in types if t.__pydantic_complete__),
        "types_fields_incomplete": [
            t.__name__ for t in types if not t.__pydantic_fields_complete__
        ],
        "methods": len(methods),
        "methods_built": sorted(m.__name__ for m in methods if m.__pydantic_complete__),
    }


def _overrides_of(name: str) -> list[str]:
    from aiogram.types import TelegramObject

    classes = [TelegramObject, *_all_subclasses(TelegramObject)]
    return [f"{c.__module__}.{c.__qualname__}" for c in classes if name in vars(c)]


def _methods_outside_base() -> list[str]:
    import aiogram.methods
    from aiogram.methods.base import TelegramMethod

    names = [
        n for n in aiogram.methods.__all__ if n not in {"TelegramMethod", "Request", "Response"}
    ]
    classes = [getattr(aiogram.methods, n) for n in names]
    return [
        c.__name__ for c in classes if isinstance(c, type) and not issubclass(c, TelegramMethod)
    ]


def _finder_state() -> dict[str, Any] | None:
    if "bot.lazy_aiogram" not in sys.modules:
        return None
    from bot.lazy_aiogram import installed_finder

    finder = installed_finder()
    assert finder is not None
    return {"deferred": finder.deferred, "methods_deferred": finder.methods_deferred}


def _run(code: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def stock() -> dict[str, Any]:
    return _run("from tests.test_lazy_aiogram import probe; probe(lazy=False)")


@pytest.fixture(scope="module")
def lazy() -> dict[str, Any]:
    return _run("from tests.test_lazy_aiogram import probe; probe(lazy=True)")


def test_importing_bot_only_installs_the_hook() -> None:
    state = _run(
        "import json, sys, bot\n"
        "from bot.lazy_aiogram import LazyAiogramFinder\n"
        "print(json.dumps({'first': isinstance(sys.meta_path[0], LazyAiogramFinder),"
        " 'loaded': sorted(m for m in ('aiogram', 'pydantic') if m in sys.modules)}))"
    )
    assert state == {"first": True, "loaded": []}


def test_pinned_aiogram_still_does_what_the_hook_relies_on(stock: dict[str, Any]) -> None:
    assert stock["types_defer_build"] is True, (
        "aiogram's TelegramObject no longer sets defer_build: bot.lazy_aiogram needs rethinking"
    )
    assert stock["rebuild_overrides"] == [], (
        "aiogram now defines model_rebuild itself, which bot.lazy_aiogram overrides"
    )
    assert stock["methods_outside_base"] == [], (
        "some aiogram methods do not derive from aiogram.methods.base.TelegramMethod"
    )
    built = stock["after_use"]
    assert len(built["types_built"]) > 0.9 * built["types"], (
        "stock aiogram no longer builds every type at import (aiogram #1513 fixed?): "
        "bot.lazy_aiogram may be unnecessary"
    )
    assert built["types_fields_incomplete"] == []


def test_the_hook_deferred_every_type_and_method(lazy: dict[str, Any]) -> None:
    finder, before = lazy["finder"], lazy["before_use"]
    assert finder["methods_deferred"], "aiogram.methods.base was not patched"
    # Every type passed through the model_rebuild loop of aiogram/types/__init__.py...
    assert finder["deferred"] >= before["types"] - 5, (
        f"only {finder['deferred']} of {before['types']} types went through aiogram's "
        "model_rebuild loop: aiogram/types/__init__.py changed"
    )
    # ...came out with resolved fields (pydantic's rebuild_model_fields) and no validator.
    assert before["types_fields_incomplete"] == []
    assert before["types_built"] == []
    assert before["methods_built"] == []
    assert lazy["rebuild_overrides"] == ["aiogram.types.base.TelegramObject"]


def test_lazy_models_validate_and_serialise_as_eager_ones(
    stock: dict[str, Any], lazy: dict[str, Any]
) -> None:
    for key in ("updates", "event_types", "requests", "sent", "reply_to_text", "member"):
        assert lazy[key] == stock[key], key
    assert lazy["updates"] == UPDATES  # nothing lost on the way in or out
    assert lazy["event_types"] == ["message", "callback_query", "my_chat_member"]
    assert lazy["member"] == ["ChatMemberAdministrator", "administrator"]
    assert json.loads(lazy["requests"][0]["reply_markup"]) == {
        "inline_keyboard": [[{"text": "Mute", "callback_data": "m:1"}]]
    }
    assert lazy["requests"][0]["parse_mode"] == "HTML"  # the Bot's default, filled in


def test_only_used_models_are_built_and_the_import_is_lighter(
    stock: dict[str, Any], lazy: dict[str, Any]
) -> None:
    built = lazy["after_use"]
    # Using three updates, three methods and a chat member adapter builds those alone
    # (their nested types are inlined into them, not built as models of their own).
    assert set(built["methods_built"]) == {"SendMessage", "EditMessageText", "AnswerCallbackQuery"}
    assert len(built["types_built"]) < 10, built["types_built"]
    assert lazy["import"]["rss_mb"] < stock["import"]["rss_mb"] - 60, (lazy, stock["import"])
