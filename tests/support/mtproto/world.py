"""The Telegram the test plays: accounts, channels and their posts, and injected faults.

`World` is the state behind the loopback MTProto server (which subclasses it): the test adds
accounts and channels, posts, edits and deletes as a channel admin would, revokes sessions and
injects RPC errors; the server answers clients from it and pushes updates to the participants'
connections. Every change to a channel bumps its pts and is kept as an event, so
updates.getChannelDifference can answer any pts the way Telegram does.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from telethon.tl import types

from tests.support.mtproto import crypto

__all__ = [
    "Account",
    "AuthKeyInfo",
    "ChannelEvent",
    "ChannelPost",
    "Forward",
    "InjectedError",
    "RpcCall",
    "World",
    "WorldChannel",
]

DEFAULT_CHANNELS_CAP = 500
USERNAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{3,31}")


def _now() -> datetime:
    return datetime.fromtimestamp(int(time.time()), UTC)


def _random_long() -> int:
    return int.from_bytes(os.urandom(8), "little", signed=True)


def normalise_phone(phone: str) -> str:
    return re.sub(r"[^\d]", "", phone)


@dataclass(slots=True)
class Account:
    """A Telegram user account: what `vigil login` signs into."""

    user_id: int
    phone: str  # digits only, as Telegram stores it
    first_name: str
    last_name: str | None = None
    username: str | None = None
    access_hash: int = field(default_factory=_random_long)
    password: str | None = None
    hint: str | None = None
    channels: set[int] = field(default_factory=set)  # channel ids the account is a participant of
    channels_cap: int | None = None  # None: the world's cap
    pts: int = 1  # the account's common message box (private chats; never moves here)
    salt1: bytes = field(default_factory=lambda: os.urandom(40))
    salt2: bytes = field(default_factory=lambda: os.urandom(16))
    verifier: int | None = None  # g^x mod p of the password

    def set_password(self, password: str | None, hint: str | None = None) -> None:
        self.password = password
        self.hint = hint
        self.salt1, self.salt2 = os.urandom(40), os.urandom(16)
        self.verifier = (
            None
            if password is None
            else pow(
                crypto.DH_G,
                crypto.password_hash(self.salt1, self.salt2, password),
                crypto.DH_PRIME,
            )
        )

    def to_tl(self, *, viewer: int | None) -> types.User:
        is_self = viewer == self.user_id
        return types.User(
            id=self.user_id,
            is_self=is_self,
            access_hash=self.access_hash,
            first_name=self.first_name,
            last_name=self.last_name,
            username=self.username,
            phone=self.phone if is_self else None,
            status=types.UserStatusRecently() if not is_self else None,
        )


@dataclass(frozen=True, slots=True)
class Forward:
    """A forward header: the source channel and post (or just a name, for hidden senders)."""

    channel_id: int | None = None
    message_id: int | None = None
    from_name: str | None = None
    date: datetime | None = None
    post_author: str | None = None


@dataclass(slots=True)
class ChannelPost:
    id: int
    date: datetime
    text: str = ""
    entities: tuple[Any, ...] = ()
    photo: tuple[int, int] | None = None  # (width, height) of an attached photo
    forward: Forward | None = None
    grouped_id: int | None = None
    edit_date: datetime | None = None
    views: int = 1


@dataclass(frozen=True, slots=True)
class ChannelEvent:
    pts: int  # the channel's pts after the event
    pts_count: int
    kind: str  # new | edit | delete
    message_ids: tuple[int, ...]
    at: float  # time.time()


@dataclass(slots=True)
class WorldChannel:
    id: int
    access_hash: int
    title: str
    username: str | None = None
    invite_hash: str | None = None
    private: bool = False
    invite_expired: bool = False
    about: str = ""
    date: datetime = field(default_factory=_now)
    pts: int = 1
    next_id: int = 1
    posts: dict[int, ChannelPost] = field(default_factory=dict)
    events: list[ChannelEvent] = field(default_factory=list)
    participants: set[int] = field(default_factory=set)
    banned: set[int] = field(default_factory=set)

    def sorted_posts(self) -> list[ChannelPost]:
        return [self.posts[i] for i in sorted(self.posts)]

    def to_tl(self, *, viewer: int | None) -> types.Channel:
        return types.Channel(
            id=self.id,
            title=self.title,
            photo=types.ChatPhotoEmpty(),
            date=self.date,
            broadcast=True,
            left=viewer not in self.participants,
            access_hash=self.access_hash,
            username=self.username,
            participants_count=len(self.participants),
        )

    def forbidden_tl(self) -> types.ChannelForbidden:
        return types.ChannelForbidden(
            id=self.id, access_hash=self.access_hash, title=self.title, broadcast=True
        )

    def post_tl(self, post: ChannelPost) -> types.Message:
        media: Any = None
        if post.photo is not None:
            width, height = post.photo
            media = types.MessageMediaPhoto(
                photo=types.Photo(
                    id=self.id * 1_000_000 + post.id,
                    access_hash=self.access_hash ^ post.id,
                    file_reference=b"\x01" + post.id.to_bytes(4, "big"),
                    date=post.date,
                    sizes=[types.PhotoSize("x", width, height, width * height // 10)],
                    dc_id=2,
                )
            )
        fwd = None
        if post.forward is not None:
            source = post.forward
            fwd = types.MessageFwdHeader(
                date=source.date or post.date,
                from_id=types.PeerChannel(source.channel_id) if source.channel_id else None,
                from_name=source.from_name,
                channel_post=source.message_id,
                post_author=source.post_author,
            )
        return types.Message(
            id=post.id,
            peer_id=types.PeerChannel(self.id),
            date=post.date,
            message=post.text,
            post=True,
            fwd_from=fwd,
            media=media,
            entities=list(post.entities) or None,
            views=post.views,
            forwards=0,
            edit_date=post.edit_date,
            grouped_id=post.grouped_id,
        )


@dataclass(slots=True)
class AuthKeyInfo:
    """One auth key the server made, kept for the server's lifetime (sessions outlive clients)."""

    key: bytes
    key_id: int
    salt: int
    created: float
    user_id: int | None = None  # the account logged in on this key
    pending_user: int | None = None  # code accepted, 2FA password still needed
    revoked: bool = False
    layer: int | None = None
    init: dict[str, Any] = field(default_factory=dict)  # initConnection's fields
    srp: dict[int, tuple[int, int]] = field(default_factory=dict)  # srp_id -> (b, B)


@dataclass(frozen=True, slots=True)
class RpcCall:
    key_id: int
    user_id: int | None
    method: str  # Telegram's name: "messages.getHistory"
    error: str | None  # "420 FLOOD_WAIT_7" when answered with an rpc_error
    at: float


@dataclass(slots=True)
class InjectedError:
    method: str
    code: int
    message: str
    on_call: int  # the first call (counting from injection, 1-based) that fails
    times: int  # how many calls fail from then on
    user_id: int | None = None  # only calls of this account; None: anyone
    seen: int = 0
    fired: int = 0

    def take(self, method: str, user_id: int | None) -> bool:
        if method != self.method or (self.user_id is not None and self.user_id != user_id):
            return False
        if self.fired >= self.times:
            return False
        self.seen += 1
        if self.seen >= self.on_call:
            self.fired += 1
            return True
        return False


@dataclass(frozen=True, slots=True)
class SentCode:
    phone: str
    code: str
    phone_code_hash: str
    at: float


class World:
    """The scripted state. Methods without a leading underscore are for the test."""

    def __init__(self) -> None:
        self.accounts: dict[int, Account] = {}
        self.channels: dict[int, WorldChannel] = {}
        self.auth_keys: dict[int, AuthKeyInfo] = {}
        self.channels_cap = DEFAULT_CHANNELS_CAP
        self.codes: list[SentCode] = []
        self.calls: list[RpcCall] = []
        self.unimplemented: list[str] = []  # methods asked for that the loopback does not answer
        self.errors: list[InjectedError] = []
        self._user_ids = itertools.count(100_000_001)
        self._channel_ids = itertools.count(1_500_000_001)
        self._grouped_ids = itertools.count(13_000_000_000_000_001)

    # ------------------------------------------------------------------ accounts

    def add_account(
        self,
        phone: str,
        *,
        first_name: str = "Test",
        last_name: str | None = None,
        username: str | None = None,
        password: str | None = None,
        hint: str | None = None,
        user_id: int | None = None,
    ) -> Account:
        """A registered Telegram account; `password` turns on two-step verification."""
        account = Account(
            user_id=user_id if user_id is not None else next(self._user_ids),
            phone=normalise_phone(phone),
            first_name=first_name,
            last_name=last_name,
            username=username,
        )
        if password is not None:
            account.set_password(password, hint)
        self.accounts[account.user_id] = account
        return account

    def account_by_phone(self, phone: str) -> Account | None:
        digits = normalise_phone(phone)
        return next((a for a in self.accounts.values() if a.phone == digits), None)

    def login_code(self, phone: str) -> str:
        """The last code the server "sent" to this phone (what the user reads in the app)."""
        digits = normalise_phone(phone)
        for sent in reversed(self.codes):
            if sent.phone == digits:
                return sent.code
        raise LookupError(f"no login code was sent to {phone}")

    def revoke(self, account: Account | int) -> int:
        """Terminate every session of the account (Settings → Devices → Terminate): each of its
        auth keys stays known but is logged out, so every call needing authorisation answers
        401 AUTH_KEY_UNREGISTERED. Returns how many keys were revoked."""
        user_id = account if isinstance(account, int) else account.user_id
        revoked = 0
        for info in self.auth_keys.values():
            if info.user_id == user_id or info.pending_user == user_id:
                info.user_id = info.pending_user = None
                info.revoked = True
                revoked += 1
        return revoked

    def keys_of(self, account: Account | int) -> list[AuthKeyInfo]:
        user_id = account if isinstance(account, int) else account.user_id
        return [k for k in self.auth_keys.values() if k.user_id == user_id]

    # ------------------------------------------------------------------ channels

    def add_channel(
        self,
        username: str | None = None,
        *,
        title: str | None = None,
        channel_id: int | None = None,
        access_hash: int | None = None,
        invite_hash: str | None = None,
        private: bool = False,
        about: str = "",
    ) -> WorldChannel:
        """A broadcast channel. A private one has no username: only its invite link finds it."""
        if username is not None and not USERNAME_RE.fullmatch(username):
            raise ValueError(f"not a Telegram username: {username!r}")
        if private and invite_hash is None:
            invite_hash = secrets.token_urlsafe(12)
        channel = WorldChannel(
            id=channel_id if channel_id is not None else next(self._channel_ids),
            access_hash=access_hash if access_hash is not None else _random_long(),
            title=title or (username or "Private channel"),
            username=None if private else username,
            invite_hash=invite_hash,
            private=private,
            about=about,
        )
        self.channels[channel.id] = channel
        return channel

    def channel_by_username(self, username: str) -> WorldChannel | None:
        wanted = username.lower()
        return next(
            (c for c in self.channels.values() if c.username and c.username.lower() == wanted),
            None,
        )

    def join(self, channel: WorldChannel, account: Account) -> None:
        """Make the account a participant without a request (as if it had joined earlier)."""
        channel.participants.add(account.user_id)
        account.channels.add(channel.id)

    def expire_invite(self, channel: WorldChannel) -> None:
        channel.invite_expired = True

    def new_grouped_id(self) -> int:
        return next(self._grouped_ids)

    async def post(
        self,
        channel: WorldChannel,
        text: str = "",
        *,
        photo: bool | tuple[int, int] = False,
        forward: Forward | None = None,
        grouped_id: int | None = None,
        entities: Sequence[Any] = (),
        date: datetime | None = None,
        push: bool = True,
    ) -> ChannelPost:
        """Publish a post; participants' connections get UpdateNewChannelMessage unless
        `push=False` (Telegram dropping the update: only getChannelDifference finds it)."""
        post = ChannelPost(
            id=channel.next_id,
            date=date or _now(),
            text=text,
            entities=tuple(entities),
            photo=(800, 600) if photo is True else (photo or None),
            forward=forward,
            grouped_id=grouped_id,
        )
        channel.next_id += 1
        channel.posts[post.id] = post
        event = self._event(channel, "new", (post.id,))
        if push:
            await self._push(channel, event)
        return post

    async def post_album(
        self,
        channel: WorldChannel,
        parts: int,
        caption: str = "",
        *,
        push: bool = True,
    ) -> list[ChannelPost]:
        """`parts` photos sharing one grouped_id, the caption on the first, as apps send them."""
        gid = self.new_grouped_id()
        return [
            await self.post(
                channel, caption if i == 0 else "", photo=True, grouped_id=gid, push=push
            )
            for i in range(parts)
        ]

    async def post_many(
        self, channel: WorldChannel, texts: Iterable[str], *, push: bool = False
    ) -> list[ChannelPost]:
        """History: many posts at once (not pushed by default)."""
        return [await self.post(channel, text, push=push) for text in texts]

    async def edit(
        self, channel: WorldChannel, message_id: int, text: str, *, push: bool = True
    ) -> ChannelPost:
        post = channel.posts.get(message_id)
        if post is None:
            raise LookupError(f"channel {channel.id} has no post {message_id}")
        post.text = text
        post.edit_date = _now()
        event = self._event(channel, "edit", (message_id,))
        if push:
            await self._push(channel, event)
        return post

    async def delete(
        self, channel: WorldChannel, *message_ids: int, push: bool = True
    ) -> ChannelEvent:
        gone = tuple(i for i in message_ids if channel.posts.pop(i, None) is not None)
        if not gone:
            raise LookupError(f"channel {channel.id} has none of the posts {message_ids}")
        event = self._event(channel, "delete", gone)
        if push:
            await self._push(channel, event)
        return event

    def _event(self, channel: WorldChannel, kind: str, ids: tuple[int, ...]) -> ChannelEvent:
        count = len(ids)
        channel.pts += count
        event = ChannelEvent(channel.pts, count, kind, ids, time.time())
        channel.events.append(event)
        return event

    def event_update(self, channel: WorldChannel, event: ChannelEvent) -> Any:
        """The update Telegram sends for an event (the post as it is now)."""
        if event.kind == "delete":
            return types.UpdateDeleteChannelMessages(
                channel_id=channel.id,
                messages=list(event.message_ids),
                pts=event.pts,
                pts_count=event.pts_count,
            )
        post = channel.posts.get(event.message_ids[0])
        if post is None:  # deleted since: the update still names it, as an empty message
            message: Any = types.MessageEmpty(
                id=event.message_ids[0], peer_id=types.PeerChannel(channel.id)
            )
        else:
            message = channel.post_tl(post)
        cls = (
            types.UpdateNewChannelMessage
            if event.kind == "new"
            else types.UpdateEditChannelMessage
        )
        return cls(message=message, pts=event.pts, pts_count=event.pts_count)

    async def _push(self, channel: WorldChannel, event: ChannelEvent) -> None:
        """Deliver an event to connected participants; the server implements it."""

    # ------------------------------------------------------------------ faults and records

    def inject(
        self,
        method: str,
        message: str,
        *,
        code: int = 400,
        on_call: int = 1,
        times: int = 1,
        account: Account | None = None,
    ) -> InjectedError:
        """Answer the `on_call`-th call of `method` (counted from now) and the `times - 1`
        after it with rpc_error(code, message), e.g. inject("channels.joinChannel",
        "CHANNELS_TOO_MUCH")."""
        error = InjectedError(
            method, code, message, on_call, times, account.user_id if account else None
        )
        self.errors.append(error)
        return error

    def flood_wait(
        self,
        method: str,
        seconds: int,
        *,
        on_call: int = 1,
        times: int = 1,
        account: Account | None = None,
    ) -> InjectedError:
        return self.inject(
            method,
            f"FLOOD_WAIT_{seconds}",
            code=420,
            on_call=on_call,
            times=times,
            account=account,
        )

    def methods(self, account: Account | None = None) -> list[str]:
        """Names of the RPCs called (wrappers such as invokeWithLayer left out), in order."""
        return [c.method for c in self.calls if account is None or c.user_id == account.user_id]

    def count(self, method: str, account: Account | None = None) -> int:
        return self.methods(account).count(method)

    def _injected(self, method: str, user_id: int | None) -> InjectedError | None:
        for error in self.errors:
            if error.take(method, user_id):
                return error
        return None
