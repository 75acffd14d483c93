"""The RPC methods the loopback answers, each as Telegram answers it (types, errors, vectors).

A handler receives the `Call` (who is asking, on which key) and the Telethon request object and
returns the result object, or raises `RpcFailError(code, message)` for an rpc_error. Methods not
listed here are answered 400 METHOD_NOT_IMPLEMENTED_BY_LOOPBACK and recorded in
`World.unimplemented`, so nothing is silently faked.
"""

from __future__ import annotations

import os
import re
import secrets
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from telethon.tl import TLObject, functions, types

from tests.support.mtproto import crypto
from tests.support.mtproto.world import (
    USERNAME_RE,
    Account,
    AuthKeyInfo,
    SentCode,
    WorldChannel,
    normalise_phone,
)

if TYPE_CHECKING:
    from tests.support.mtproto.server import MTProtoServer, Session

HISTORY_LIMIT = 100  # messages.getHistory returns at most this many
APP_CONFIG_HASH = 0x5EED


class RpcFailError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message


def bad(message: str) -> RpcFailError:
    return RpcFailError(400, message)


def unauthorised() -> RpcFailError:
    return RpcFailError(401, "AUTH_KEY_UNREGISTERED")


def method_name(request: TLObject) -> str:
    """Telegram's name of a Telethon request class: GetHistoryRequest -> messages.getHistory."""
    namespace = type(request).__module__.rsplit(".", 1)[-1]
    name = type(request).__name__.removesuffix("Request")
    name = name[:1].lower() + name[1:]
    return name if namespace == "functions" else f"{namespace}.{name}"


def serialize_result(value: Any) -> bytes:
    """A result as Telegram serialises it: TL objects, Bool, Vector<T>."""
    if isinstance(value, bool):
        return struct.pack("<I", 0x997275B5 if value else 0xBC799737)
    if isinstance(value, list):
        return struct.pack("<Ii", 0x1CB5C415, len(value)) + b"".join(
            serialize_result(v) for v in value
        )
    return bytes(value)


def _now() -> datetime:
    return datetime.fromtimestamp(int(time.time()), UTC)


@dataclass(slots=True)
class Call:
    server: MTProtoServer
    key: AuthKeyInfo
    session: Session

    @property
    def account(self) -> Account | None:
        if self.key.user_id is None:
            return None
        return self.server.accounts.get(self.key.user_id)

    def me(self) -> Account:
        account = self.account
        if account is None:
            raise unauthorised()
        return account

    def viewer(self) -> int | None:
        return self.key.user_id


Handler = Callable[[Call, Any], Any]
HANDLERS: dict[str, Handler] = {}
NO_LOGIN_NEEDED = frozenset(
    {
        "help.getConfig",
        "help.getNearestDc",
        "help.getAppConfig",
        "auth.sendCode",
        "auth.signIn",
        "auth.checkPassword",
        "auth.logOut",
        "account.getPassword",
    }
)


def method(name: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        HANDLERS[name] = handler
        return handler

    return register


# ---------------------------------------------------------------------------- help


@method("help.getConfig")
def get_config(call: Call, request: Any) -> types.Config:
    server = call.server
    now = _now()
    options = [
        types.DcOption(id=dc, ip_address=server.host, port=server.port) for dc in range(1, 6)
    ]
    options += [
        types.DcOption(id=dc, ip_address=server.host, port=server.port, media_only=True)
        for dc in range(1, 6)
    ]
    return types.Config(
        date=now,
        expires=now + timedelta(hours=1),
        test_mode=False,
        this_dc=server.dc_id,
        dc_options=options,
        dc_txt_domain_name="apv3.stel.com",
        chat_size_max=200,
        megagroup_size_max=200000,
        forwarded_count_max=100,
        online_update_period_ms=210000,
        offline_blur_timeout_ms=5000,
        offline_idle_timeout_ms=30000,
        online_cloud_timeout_ms=300000,
        notify_cloud_delay_ms=30000,
        notify_default_delay_ms=1500,
        push_chat_period_ms=60000,
        push_chat_limit=2,
        edit_time_limit=172800,
        revoke_time_limit=2147483647,
        revoke_pm_time_limit=2147483647,
        rating_e_decay=2419200,
        stickers_recent_limit=200,
        channels_read_media_period=604800,
        call_receive_timeout_ms=20000,
        call_ring_timeout_ms=90000,
        call_connect_timeout_ms=30000,
        call_packet_timeout_ms=10000,
        me_url_prefix="https://t.me/",
        caption_length_max=1024,
        message_length_max=4096,
        webfile_dc_id=4,
    )


@method("help.getNearestDc")
def get_nearest_dc(call: Call, request: Any) -> types.NearestDc:
    return types.NearestDc(country="GB", this_dc=call.server.dc_id, nearest_dc=call.server.dc_id)


@method("help.getAppConfig")
def get_app_config(call: Call, request: functions.help.GetAppConfigRequest) -> Any:
    account = call.account
    cap = call.server.channels_cap
    if account is not None and account.channels_cap is not None:
        cap = account.channels_cap
    config_hash = APP_CONFIG_HASH ^ cap
    if request.hash == config_hash:
        return types.help.AppConfigNotModified()
    values = {
        "channels_limit_default": float(cap),
        "channels_limit_premium": float(cap * 2),
        "dialog_filters_limit_default": 10.0,
    }
    return types.help.AppConfig(
        hash=config_hash,
        config=types.JsonObject(
            [types.JsonObjectValue(k, types.JsonNumber(v)) for k, v in values.items()]
        ),
    )


# ---------------------------------------------------------------------------- auth


@method("auth.sendCode")
def send_code(call: Call, request: functions.auth.SendCodeRequest) -> types.auth.SentCode:
    if request.api_id <= 0 or not request.api_hash:
        raise bad("API_ID_INVALID")
    phone = normalise_phone(request.phone_number)
    if not 5 <= len(phone) <= 15:
        raise bad("PHONE_NUMBER_INVALID")
    code = f"{secrets.randbelow(100000):05d}"
    sent = SentCode(phone, code, secrets.token_hex(9), time.time())
    call.server.codes.append(sent)
    return types.auth.SentCode(
        type=types.auth.SentCodeTypeApp(length=5), phone_code_hash=sent.phone_code_hash
    )


@method("auth.signIn")
def sign_in(call: Call, request: functions.auth.SignInRequest) -> types.auth.Authorization:
    server = call.server
    phone = normalise_phone(request.phone_number)
    if not request.phone_code_hash:
        raise bad("PHONE_CODE_HASH_EMPTY")
    if not request.phone_code:
        raise bad("PHONE_CODE_EMPTY")
    sent = next(
        (
            s
            for s in reversed(server.codes)
            if s.phone == phone and s.phone_code_hash == request.phone_code_hash
        ),
        None,
    )
    if sent is None or time.time() - sent.at > 300:
        raise bad("PHONE_CODE_EXPIRED")
    if request.phone_code != sent.code:
        raise bad("PHONE_CODE_INVALID")
    account = server.account_by_phone(phone)
    if account is None:
        raise bad("PHONE_NUMBER_UNOCCUPIED")
    server.codes.remove(sent)  # a code signs in once
    if account.password is not None:
        call.key.pending_user = account.user_id
        raise RpcFailError(401, "SESSION_PASSWORD_NEEDED")
    return _authorised(call, account)


def _authorised(call: Call, account: Account) -> types.auth.Authorization:
    call.key.user_id = account.user_id
    call.key.pending_user = None
    call.key.revoked = False
    return types.auth.Authorization(user=account.to_tl(viewer=account.user_id))


def _password_account(call: Call) -> Account:
    user_id = call.key.user_id or call.key.pending_user
    account = call.server.accounts.get(user_id) if user_id is not None else None
    if account is None:
        raise unauthorised()
    return account


def _new_algo(
    account: Account,
) -> types.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow:
    return types.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow(
        salt1=account.salt1[:8], salt2=account.salt2, g=crypto.DH_G, p=crypto.DH_PRIME_BYTES
    )


@method("account.getPassword")
def get_password(call: Call, request: Any) -> types.account.Password:
    account = _password_account(call)
    common: dict[str, Any] = {
        "new_algo": _new_algo(account),
        "new_secure_algo": types.SecurePasswordKdfAlgoSHA512(salt=os.urandom(8)),
        "secure_random": os.urandom(32),
    }
    if account.verifier is None:
        return types.account.Password(has_password=False, **common)
    b, big_b = crypto.srp_server_b(account.verifier)
    srp_id = int.from_bytes(os.urandom(8), "little", signed=True)
    call.key.srp[srp_id] = (b, big_b)
    return types.account.Password(
        has_password=True,
        current_algo=types.PasswordKdfAlgoSHA256SHA256PBKDF2HMACSHA512iter100000SHA256ModPow(
            salt1=account.salt1, salt2=account.salt2, g=crypto.DH_G, p=crypto.DH_PRIME_BYTES
        ),
        srp_B=big_b.to_bytes(256, "big"),
        srp_id=srp_id,
        hint=account.hint,
        **common,
    )


@method("auth.checkPassword")
def check_password(
    call: Call, request: functions.auth.CheckPasswordRequest
) -> types.auth.Authorization:
    account = _password_account(call)
    check = request.password
    if account.verifier is None:
        raise bad("PASSWORD_EMPTY")
    if not isinstance(check, types.InputCheckPasswordSRP):
        raise bad("PASSWORD_HASH_INVALID")
    secret = call.key.srp.pop(check.srp_id, None)
    if secret is None:
        raise bad("SRP_ID_INVALID")
    b, big_b = secret
    expected = crypto.srp_expected_m1(
        salt1=account.salt1,
        salt2=account.salt2,
        verifier=account.verifier,
        b=b,
        big_b=big_b,
        a_bytes=check.A,
    )
    if expected is None or expected != check.M1:
        raise bad("PASSWORD_HASH_INVALID")
    return _authorised(call, account)


@method("auth.logOut")
def log_out(call: Call, request: Any) -> types.auth.LoggedOut:
    call.key.user_id = call.key.pending_user = None
    return types.auth.LoggedOut()


# ---------------------------------------------------------------------------- users


@method("users.getUsers")
def get_users(call: Call, request: functions.users.GetUsersRequest) -> list[Any]:
    me = call.me()
    found: list[Any] = []
    for wanted in request.id:
        account = _input_user(call, wanted, me)
        if account is not None:
            found.append(account.to_tl(viewer=me.user_id))
    return found


def _input_user(call: Call, wanted: Any, me: Account) -> Account | None:
    if isinstance(wanted, types.InputUserSelf):
        return me
    if isinstance(wanted, types.InputUser):
        account = call.server.accounts.get(wanted.user_id)
        if account is not None and (
            account.user_id == me.user_id or account.access_hash == wanted.access_hash
        ):
            return account
    return None


@method("users.getFullUser")
def get_full_user(call: Call, request: functions.users.GetFullUserRequest) -> Any:
    me = call.me()
    account = _input_user(call, request.id, me)
    if account is None:
        raise bad("USER_ID_INVALID")
    return types.users.UserFull(
        full_user=types.UserFull(
            id=account.user_id,
            settings=types.PeerSettings(),
            notify_settings=types.PeerNotifySettings(),
            common_chats_count=0,
        ),
        chats=[],
        users=[account.to_tl(viewer=me.user_id)],
    )


# ---------------------------------------------------------------------------- updates


def _state(account: Account) -> types.updates.State:
    return types.updates.State(pts=account.pts, qts=0, date=_now(), seq=0, unread_count=0)


@method("updates.getState")
def get_state(call: Call, request: Any) -> types.updates.State:
    return _state(call.me())


@method("updates.getDifference")
def get_difference(call: Call, request: functions.updates.GetDifferenceRequest) -> Any:
    me = call.me()
    if request.pts > me.pts:
        raise bad("PERSISTENT_TIMESTAMP_INVALID")
    since = request.date.timestamp() if request.date else 0.0
    # Channel news is not in the common box: Telegram names each channel that moved since
    # `date` with updateChannelTooLong, and the client asks getChannelDifference for it.
    moved = [
        channel
        for channel_id in sorted(me.channels)
        if (channel := call.server.channels.get(channel_id)) is not None
        and channel.events
        and channel.events[-1].at >= since
    ]
    if not moved:
        return types.updates.DifferenceEmpty(date=_now(), seq=0)
    return types.updates.Difference(
        new_messages=[],
        new_encrypted_messages=[],
        other_updates=[types.UpdateChannelTooLong(channel_id=c.id, pts=c.pts) for c in moved],
        chats=[c.to_tl(viewer=me.user_id) for c in moved],
        users=[me.to_tl(viewer=me.user_id)],
        state=_state(me),
    )


@method("updates.getChannelDifference")
def get_channel_difference(
    call: Call, request: functions.updates.GetChannelDifferenceRequest
) -> Any:
    me = call.me()
    channel = _readable_channel(call, request.channel, me)
    if request.pts <= 0:
        raise bad("PERSISTENT_TIMESTAMP_EMPTY")
    if request.pts > channel.pts:
        raise bad("PERSISTENT_TIMESTAMP_INVALID")
    events = [e for e in channel.events if e.pts > request.pts]
    chats = [channel.to_tl(viewer=me.user_id)]
    if not events:
        return types.updates.ChannelDifferenceEmpty(pts=channel.pts, final=True, timeout=30)
    limit = max(1, min(request.limit or HISTORY_LIMIT, 100_000))
    if len(events) > limit:
        latest = channel.sorted_posts()[-limit:]
        top = latest[-1].id if latest else 0
        return types.updates.ChannelDifferenceTooLong(
            dialog=_dialog(channel, top),
            messages=[channel.post_tl(p) for p in reversed(latest)],
            chats=chats,
            users=[],
            final=True,
            timeout=30,
        )
    created = {i for e in events if e.kind == "new" for i in e.message_ids}
    new_messages = [
        channel.post_tl(channel.posts[i]) for i in sorted(created) if i in channel.posts
    ]
    other: list[Any] = []
    last_edit: dict[int, Any] = {}
    for event in events:
        if event.kind == "edit" and event.message_ids[0] not in created:
            last_edit[event.message_ids[0]] = event
        elif event.kind == "delete":
            old = tuple(i for i in event.message_ids if i not in created)
            if old:
                other.append(
                    types.UpdateDeleteChannelMessages(
                        channel_id=channel.id,
                        messages=list(old),
                        pts=event.pts,
                        pts_count=len(old),
                    )
                )
    for message_id, event in last_edit.items():
        if message_id in channel.posts:
            other.append(
                types.UpdateEditChannelMessage(
                    message=channel.post_tl(channel.posts[message_id]), pts=event.pts, pts_count=1
                )
            )
    return types.updates.ChannelDifference(
        pts=channel.pts,
        new_messages=new_messages,
        other_updates=other,
        chats=chats,
        users=[],
        final=True,
    )


# ---------------------------------------------------------------------------- channels


def _channel_of(call: Call, peer: Any) -> WorldChannel:
    """The channel an InputChannel / InputPeerChannel names; CHANNEL_INVALID if the access
    hash is not the one this server gave out. An Input(Peer)ChannelFromMessage (a "min"
    channel seen in a message) names it by a post of a channel the caller may read whose
    forward header shows it."""
    if isinstance(peer, types.InputChannelFromMessage | types.InputPeerChannelFromMessage):
        me = call.me()
        via = _readable_channel(call, peer.peer, me)
        post = via.posts.get(peer.msg_id)
        shown = post.forward.channel_id if post is not None and post.forward else None
        seen = call.server.channels.get(peer.channel_id)
        if seen is None or shown != peer.channel_id:
            raise bad("CHANNEL_INVALID")
        return seen
    channel_id = getattr(peer, "channel_id", None)
    if isinstance(peer, types.InputChannelEmpty | types.InputPeerEmpty) or channel_id is None:
        raise bad("CHANNEL_INVALID")
    channel = call.server.channels.get(channel_id)
    if channel is None or getattr(peer, "access_hash", None) != channel.access_hash:
        raise bad("CHANNEL_INVALID")
    return channel


def _readable_channel(call: Call, peer: Any, me: Account) -> WorldChannel:
    channel = _channel_of(call, peer)
    if me.user_id in channel.banned:
        raise bad("CHANNEL_PRIVATE")
    if channel.private and me.user_id not in channel.participants:
        raise bad("CHANNEL_PRIVATE")
    return channel


def _join(call: Call, channel: WorldChannel, me: Account) -> types.Updates:
    if me.user_id in channel.banned:
        raise bad("CHANNEL_PRIVATE")
    cap = me.channels_cap if me.channels_cap is not None else call.server.channels_cap
    if len(me.channels) >= cap:
        raise bad("CHANNELS_TOO_MUCH")
    call.server.join(channel, me)
    return _membership_changed(channel, me)


def _membership_changed(channel: WorldChannel, me: Account) -> types.Updates:
    """What joinChannel and leaveChannel answer: the channel as `me` now sees it."""
    return types.Updates(
        updates=[types.UpdateChannel(channel_id=channel.id)],
        users=[],
        chats=[channel.to_tl(viewer=me.user_id)],
        date=_now(),
        seq=0,
    )


@method("contacts.resolveUsername")
def resolve_username(
    call: Call, request: functions.contacts.ResolveUsernameRequest
) -> types.contacts.ResolvedPeer:
    me = call.me()
    name = request.username.lstrip("@")
    if not USERNAME_RE.fullmatch(name):
        raise bad("USERNAME_INVALID")
    channel = call.server.channel_by_username(name)
    if channel is not None:
        return types.contacts.ResolvedPeer(
            peer=types.PeerChannel(channel.id),
            chats=[channel.to_tl(viewer=me.user_id)],
            users=[],
        )
    wanted = name.lower()
    for account in call.server.accounts.values():
        if account.username and account.username.lower() == wanted:
            return types.contacts.ResolvedPeer(
                peer=types.PeerUser(account.user_id),
                chats=[],
                users=[account.to_tl(viewer=me.user_id)],
            )
    raise bad("USERNAME_NOT_OCCUPIED")


@method("channels.joinChannel")
def join_channel(call: Call, request: functions.channels.JoinChannelRequest) -> types.Updates:
    me = call.me()
    channel = _channel_of(call, request.channel)
    if me.user_id in channel.participants:
        return types.Updates(
            updates=[], users=[], chats=[channel.to_tl(viewer=me.user_id)], date=_now(), seq=0
        )
    if channel.private:
        raise bad("CHANNEL_PRIVATE")
    return _join(call, channel, me)


@method("channels.leaveChannel")
def leave_channel(call: Call, request: functions.channels.LeaveChannelRequest) -> types.Updates:
    me = call.me()
    channel = _channel_of(call, request.channel)
    if me.user_id not in channel.participants:
        raise bad("USER_NOT_PARTICIPANT")
    channel.participants.discard(me.user_id)
    me.channels.discard(channel.id)
    return _membership_changed(channel, me)


@method("channels.getChannels")
def get_channels(call: Call, request: functions.channels.GetChannelsRequest) -> Any:
    me = call.me()
    chats: list[Any] = []
    for peer in request.id:
        channel = _channel_of(call, peer)
        if me.user_id in channel.banned:
            chats.append(channel.forbidden_tl())
        else:
            chats.append(channel.to_tl(viewer=me.user_id))
    return types.messages.Chats(chats=chats)


@method("channels.getFullChannel")
def get_full_channel(call: Call, request: functions.channels.GetFullChannelRequest) -> Any:
    me = call.me()
    channel = _readable_channel(call, request.channel, me)
    posts = channel.sorted_posts()
    top = posts[-1].id if posts else 0
    return types.messages.ChatFull(
        full_chat=types.ChannelFull(
            id=channel.id,
            about=channel.about,
            read_inbox_max_id=top,
            read_outbox_max_id=0,
            unread_count=0,
            chat_photo=types.PhotoEmpty(id=0),
            notify_settings=types.PeerNotifySettings(),
            bot_info=[],
            pts=channel.pts,
            participants_count=len(channel.participants),
        ),
        chats=[channel.to_tl(viewer=me.user_id)],
        users=[],
    )


@method("channels.getMessages")
def get_messages(call: Call, request: functions.channels.GetMessagesRequest) -> Any:
    me = call.me()
    channel = _readable_channel(call, request.channel, me)
    found: list[Any] = []
    for wanted in request.id:
        message_id = getattr(wanted, "id", None)
        post = channel.posts.get(message_id) if isinstance(message_id, int) else None
        if post is not None:
            found.append(channel.post_tl(post))
        elif isinstance(message_id, int):
            found.append(types.MessageEmpty(id=message_id, peer_id=types.PeerChannel(channel.id)))
    return types.messages.ChannelMessages(
        pts=channel.pts,
        count=len(found),
        messages=found,
        topics=[],
        chats=[channel.to_tl(viewer=me.user_id)],
        users=[],
    )


# ---------------------------------------------------------------------------- messages


@method("messages.getHistory")
def get_history(call: Call, request: functions.messages.GetHistoryRequest) -> Any:
    """Telegram's paging: newest first; start just below offset_id (or before offset_date),
    shift by add_offset (negative goes newer), take `limit` (at most 100), then drop what
    falls outside (min_id, max_id)."""
    me = call.me()
    peer = request.peer
    if isinstance(peer, types.InputPeerSelf | types.InputPeerUser):
        return types.messages.Messages(messages=[], topics=[], chats=[], users=[])
    if not isinstance(peer, types.InputPeerChannel):
        raise bad("PEER_ID_INVALID")
    channel = _readable_channel(call, peer, me)
    newest_first = channel.sorted_posts()[::-1]
    # An unset offset_date travels as 0 and arrives as the epoch, which is truthy.
    offset_date = request.offset_date
    if offset_date is not None and offset_date.timestamp() <= 0:
        offset_date = None
    if request.offset_id:
        start = next(
            (i for i, p in enumerate(newest_first) if p.id < request.offset_id), len(newest_first)
        )
    elif offset_date is not None:
        start = next(
            (i for i, p in enumerate(newest_first) if p.date < offset_date),
            len(newest_first),
        )
    else:
        start = 0
    limit = min(max(request.limit, 0), HISTORY_LIMIT)
    begin = start + request.add_offset
    end = begin + limit
    page = newest_first[max(begin, 0) : max(end, 0)]
    if request.max_id:
        page = [p for p in page if p.id < request.max_id]
    if request.min_id:
        page = [p for p in page if p.id > request.min_id]
    return types.messages.ChannelMessages(
        pts=channel.pts,
        count=len(newest_first),
        messages=[channel.post_tl(p) for p in page],
        topics=[],
        chats=[channel.to_tl(viewer=me.user_id)],
        users=[],
        offset_id_offset=start if (request.offset_id or offset_date) else None,
    )


def _invite(call: Call, invite_hash: str) -> WorldChannel:
    cleaned = re.sub(r"^(https?://)?(t\.me|telegram\.me)/(\+|joinchat/)", "", invite_hash)
    channel = next(
        (c for c in call.server.channels.values() if c.invite_hash == cleaned.lstrip("+")), None
    )
    if channel is None:
        raise bad("INVITE_HASH_INVALID")
    if channel.invite_expired:
        raise bad("INVITE_HASH_EXPIRED")
    return channel


@method("messages.checkChatInvite")
def check_chat_invite(call: Call, request: functions.messages.CheckChatInviteRequest) -> Any:
    me = call.me()
    channel = _invite(call, request.hash)
    if me.user_id in channel.participants:
        return types.ChatInviteAlready(chat=channel.to_tl(viewer=me.user_id))
    return types.ChatInvite(
        title=channel.title,
        photo=types.PhotoEmpty(id=0),
        participants_count=len(channel.participants),
        color=0,
        channel=True,
        broadcast=True,
        public=not channel.private,
        about=channel.about or None,
    )


@method("messages.importChatInvite")
def import_chat_invite(
    call: Call, request: functions.messages.ImportChatInviteRequest
) -> types.Updates:
    me = call.me()
    channel = _invite(call, request.hash)
    if me.user_id in channel.participants:
        raise bad("USER_ALREADY_PARTICIPANT")
    return _join(call, channel, me)


@method("messages.getDialogs")
def get_dialogs(call: Call, request: functions.messages.GetDialogsRequest) -> Any:
    me = call.me()
    channels = [] if request.folder_id else [call.server.channels[i] for i in sorted(me.channels)]
    dialogs: list[Any] = []
    messages: list[Any] = []
    for channel in channels[: max(request.limit, 0) or 100]:
        posts = channel.sorted_posts()
        top = posts[-1] if posts else None
        dialogs.append(_dialog(channel, top.id if top else 0))
        if top is not None:
            messages.append(channel.post_tl(top))
    return types.messages.Dialogs(
        dialogs=dialogs,
        messages=messages,
        chats=[c.to_tl(viewer=me.user_id) for c in channels],
        users=[me.to_tl(viewer=me.user_id)],
    )


def _dialog(channel: WorldChannel, top: int) -> types.Dialog:
    """A channel's dialog as the account sees it: everything read up to `top`."""
    return types.Dialog(
        peer=types.PeerChannel(channel.id),
        top_message=top,
        read_inbox_max_id=top,
        read_outbox_max_id=0,
        unread_count=0,
        unread_mentions_count=0,
        unread_reactions_count=0,
        unread_poll_votes_count=0,
        notify_settings=types.PeerNotifySettings(),
        pts=channel.pts,
    )
