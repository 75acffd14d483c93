"""Messages the bot sends, edits and deletes: sendMessage, sendPhoto, sendDocument, the three
edits ("message is not modified" when nothing changes), deleteMessage, getFile.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from tests.support.botapi import calls
from tests.support.botapi.calls import Params, method, required_integer, scalars, string
from tests.support.botapi.checks import MAX_CAPTION, MAX_TEXT, formatted, image_size, markup
from tests.support.botapi.errors import ApiError, bad
from tests.support.botapi.world import Chat, SentMessage, StoredFile
from tests.support.html_check import ParsedText

if TYPE_CHECKING:
    from tests.support.botapi.world import World

_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)


def _content(world: World, params: Params, *, caption: bool) -> tuple[str, ParsedText]:
    if caption:
        name, entities, limit = "caption", "caption_entities", MAX_CAPTION
    else:
        name, entities, limit = "text", "entities", MAX_TEXT
    return formatted(
        params, name, entities, limit, caption=caption, strict_ampersand=world.strict_ampersand
    )


def _send(
    world: World,
    params: Params,
    chat: Chat,
    method_name: str,
    message_id: int,
    content: tuple[str, ParsedText],
    reply_markup: dict[str, Any] | None,
    file: StoredFile | None = None,
) -> Any:
    raw, parsed = content
    message = SentMessage(
        chat_id=chat.user.id,
        message_id=message_id,
        method=method_name,
        text=parsed.text,
        html=raw,
        entities=parsed.entities,
        reply_markup=reply_markup,
        received_at=params["_received_at"],
        params=scalars(params),
        file=file,
        date=int(time.time()),
    )
    world.record(message)
    return world.message_json(message)


@method("sendMessage")
async def send_message(world: World, params: Params) -> Any:
    chat = calls.chat(world, params)
    content = _content(world, params, caption=False)
    reply_markup = markup(params)
    world.flood.check(chat.user.id)
    message_id = chat.new_message_id()
    return _send(world, params, chat, "sendMessage", message_id, content, reply_markup)


def _upload(world: World, params: Params, name: str) -> tuple[str, str | None, bytes]:
    value = params.get(name)
    if isinstance(value, str) and value.startswith("attach://"):
        value = params.get(value[len("attach://") :])
    if isinstance(value, tuple):
        filename, content_type, data = value
        if not data:
            raise bad("file must be non-empty")
        return filename or name, content_type, data
    if isinstance(value, str) and value in world.files:
        stored = world.files[value]
        return stored.filename, stored.mime_type, stored.data
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        raise bad("failed to get HTTP URL content")
    if not value:
        raise bad(f"there is no {name} in the request")
    raise bad("wrong file identifier/HTTP URL specified")


async def _send_file(world: World, params: Params, kind: str) -> Any:
    chat = calls.chat(world, params)
    content = _content(world, params, caption=True)
    filename, content_type, data = _upload(world, params, kind)
    width = height = 0
    if kind == "photo":
        size = image_size(data)
        if size is None:
            raise bad("IMAGE_PROCESS_FAILED")
        width, height = size
    reply_markup = markup(params)
    world.flood.check(chat.user.id)
    message_id = chat.new_message_id()
    number = next(world.file_ids)
    stored = StoredFile(
        chat_id=chat.user.id,
        message_id=message_id,
        kind=kind,
        file_id=f"{kind.upper()}-{number}-{secrets.token_hex(6)}",
        file_unique_id=f"U{kind[0]}{number}",
        filename=filename,
        mime_type=content_type,
        data=data,
        width=width,
        height=height,
    )
    world.files[stored.file_id] = stored
    (world.photos if kind == "photo" else world.documents).append(stored)
    method_name = "sendPhoto" if kind == "photo" else "sendDocument"
    return _send(world, params, chat, method_name, message_id, content, reply_markup, stored)


@method("sendPhoto")
async def send_photo(world: World, params: Params) -> Any:
    return await _send_file(world, params, "photo")


@method("sendDocument")
async def send_document(world: World, params: Params) -> Any:
    return await _send_file(world, params, "document")


def _target(world: World, params: Params) -> SentMessage:
    if string(params, "inline_message_id"):
        raise bad("inline messages are not supported by the loopback server")
    chat = calls.chat(world, params)
    message_id = required_integer(params, "message_id")
    current = chat.messages.get(message_id)
    if current is None:
        raise bad("message to edit not found")
    return current


def _edit(
    world: World, params: Params, current: SentMessage, method_name: str, **changes: Any
) -> Any:
    # Telegram compares the resulting content, not the HTML that produced it.
    compared = [name for name in changes if name != "html"]
    if all(getattr(current, name) == changes[name] for name in compared):
        raise ApiError(400, _NOT_MODIFIED)
    message = replace(
        current,
        method=method_name,
        received_at=params["_received_at"],
        params=scalars(params),
        **changes,
    )
    world.record(message)
    return world.message_json(message, edited=True)


async def _edit_content(world: World, params: Params, *, caption: bool) -> Any:
    current = _target(world, params)
    if caption and current.file is None:
        raise bad("there is no caption in the message to edit")
    if not caption and current.file is not None:
        raise bad("there is no text in the message to edit")
    raw, parsed = _content(world, params, caption=caption)
    return _edit(
        world,
        params,
        current,
        "editMessageCaption" if caption else "editMessageText",
        text=parsed.text,
        html=raw,
        entities=parsed.entities,
        reply_markup=markup(params),
    )


@method("editMessageText")
async def edit_message_text(world: World, params: Params) -> Any:
    return await _edit_content(world, params, caption=False)


@method("editMessageCaption")
async def edit_message_caption(world: World, params: Params) -> Any:
    return await _edit_content(world, params, caption=True)


@method("editMessageReplyMarkup")
async def edit_message_reply_markup(world: World, params: Params) -> Any:
    current = _target(world, params)
    return _edit(world, params, current, "editMessageReplyMarkup", reply_markup=markup(params))


@method("deleteMessage")
async def delete_message(world: World, params: Params) -> Any:
    chat = calls.chat(world, params, for_write=False)
    message_id = required_integer(params, "message_id")
    if message_id not in chat.messages:
        raise bad("message to delete not found")
    del chat.messages[message_id]
    world.deleted.append((chat.user.id, message_id))
    return True


@method("getFile")
async def get_file(world: World, params: Params) -> Any:
    file_id = string(params, "file_id") or ""
    stored = world.files.get(file_id)
    if stored is None:
        raise bad("invalid file_id")
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": len(stored.data),
        "file_path": stored.file_path,
    }
