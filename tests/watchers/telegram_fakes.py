"""Telegram faked at the network edge only: the few TelegramClient methods the watcher calls,
answering with real Telethon TL objects from a scripted history."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from telethon import errors
from telethon.tl import functions, types

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def message(
    channel_id: int,
    msg_id: int,
    text: str = "",
    *,
    date: datetime | None = None,
    **kwargs: Any,
) -> types.Message:
    return types.Message(
        id=msg_id,
        peer_id=types.PeerChannel(channel_id),
        date=date or T0 + timedelta(minutes=msg_id),
        message=text,
        post=True,
        **kwargs,
    )


def photo(msg_id: int = 1) -> types.MessageMediaPhoto:
    return types.MessageMediaPhoto(
        photo=types.Photo(
            id=msg_id,
            access_hash=1,
            file_reference=b"",
            date=T0,
            sizes=[],
            dc_id=2,
        )
    )


def channel_chat(channel_id: int, username: str | None, *, left: bool = True) -> types.Channel:
    return types.Channel(
        id=channel_id,
        title=f"Channel {channel_id}",
        photo=types.ChatPhotoEmpty(),
        date=T0,
        broadcast=True,
        left=left,
        access_hash=channel_id * 7,
        username=username,
    )


class FakeTelegram:
    """A scripted Telegram: histories per channel, and faults to raise at given points."""

    def __init__(self) -> None:
        self.history: dict[int, list[types.Message]] = {}
        self.requests: list[Any] = []
        self.history_calls = 0
        self.flood_after: int | None = None  # raise FloodWaitError after this many yields
        self.flood_seconds = 30
        self.crash_after: int | None = None  # raise ConnectionError after this many yields
        self.yielded = 0
        self.answers: dict[type, Callable[[Any], Any]] = {
            # the service's authorisation probe: a logged-in account's update state
            functions.updates.GetStateRequest: lambda r: types.updates.State(
                pts=1, qts=0, date=T0, seq=1, unread_count=0
            ),
        }
        self.known_peers: set[int] = set()
        self.connected = True

    def _channel_of(self, entity: Any) -> int:
        return int(entity.channel_id)

    def _tick(self) -> None:
        self.yielded += 1
        if self.flood_after is not None and self.yielded > self.flood_after:
            self.flood_after = None
            raise errors.FloodWaitError(request=None, capture=self.flood_seconds)
        if self.crash_after is not None and self.yielded > self.crash_after:
            self.crash_after = None
            raise ConnectionError("network went away")

    async def iter_messages(
        self,
        entity: Any,
        limit: int | None = None,
        *,
        min_id: int = 0,
        reverse: bool = False,
        wait_time: float | None = None,
    ) -> AsyncIterator[types.Message]:
        messages = sorted(self.history.get(self._channel_of(entity), []), key=lambda m: m.id)
        if reverse:
            chosen = [m for m in messages if m.id > min_id]
        else:
            chosen = [m for m in reversed(messages) if m.id > min_id]
        if limit is not None:
            chosen = chosen[:limit]
        for i, item in enumerate(chosen):
            if i % 100 == 0:
                self.history_calls += 1
            self._tick()
            yield item

    async def get_input_entity(self, peer: Any) -> Any:
        if isinstance(peer, types.PeerChannel) and peer.channel_id in self.known_peers:
            return types.InputPeerChannel(peer.channel_id, peer.channel_id * 7)
        raise ValueError("Could not find the input entity")

    async def __call__(self, request: Any) -> Any:
        self.requests.append(request)
        answer = self.answers.get(type(request))
        if answer is None:
            raise NotImplementedError(type(request).__name__)
        return answer(request)

    def is_connected(self) -> bool:
        return self.connected

    # connection and handler registration, as the service uses them
    authorised = True
    handlers: list[Any]

    async def connect(self) -> None:
        self.connected = True

    async def disconnect(self) -> None:
        self.connected = False

    async def is_user_authorized(self) -> bool:
        return self.authorised

    def add_event_handler(self, callback: Any, event: Any = None) -> None:
        self.__dict__.setdefault("handlers", []).append((callback, event))

    def remove_event_handler(self, callback: Any, event: Any = None) -> int:
        before = len(self.__dict__.get("handlers", []))
        self.handlers = [h for h in self.__dict__.get("handlers", []) if h[0] != callback]
        return before - len(self.handlers)


def app_config(limit: int) -> types.help.AppConfig:
    return types.help.AppConfig(
        hash=1,
        config=types.JsonObject(
            [
                types.JsonObjectValue("channels_limit_default", types.JsonNumber(float(limit))),
                types.JsonObjectValue("test", types.JsonString("x")),
            ]
        ),
    )


__all__ = ["T0", "FakeTelegram", "app_config", "channel_chat", "functions", "message", "photo"]
