"""The loopback MTProto server, driven by the real Telethon client over TCP."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from telethon import TelegramClient, errors, events
from telethon.tl import functions, types

from bot.config import Settings
from tests.support.mtproto import MTProtoServer
from tests.support.mtproto.fixtures import (
    TEST_API_HASH,
    TEST_API_ID,
    eventually,
    make_client,
    sign_in,
)
from tests.support.mtproto.world import Account, Forward

PHONE = "+44 7700 900123"
PASSWORD = "correct horse battery staple"


@pytest.fixture
async def clients() -> AsyncIterator[list[TelegramClient]]:
    """Clients made by a test are put here and disconnected at the end."""
    made: list[TelegramClient] = []
    try:
        yield made
    finally:
        # Newest first: a later client on the same session file holds SQLite's write lock
        # until it disconnects.
        for client in reversed(made):
            await client.disconnect()


@pytest.fixture
def new_client(
    telegram: MTProtoServer, tmp_path: Path, clients: list[TelegramClient]
) -> Callable[..., TelegramClient]:
    def factory(name: str = "watcher", **kwargs: Any) -> TelegramClient:
        kwargs.setdefault("flood_sleep_threshold", 0)
        client = make_client(telegram, tmp_path / f"{name}.session", **kwargs)
        clients.append(client)
        return client

    return factory


# ---------------------------------------------------------------------------- login


async def test_login_with_code(
    telegram: MTProtoServer, new_client: Callable[..., TelegramClient]
) -> None:
    account = telegram.add_account(PHONE, first_name="Ana", username="ana_watch")
    client = new_client()
    await client.connect()
    assert not await client.is_user_authorized()

    await client.send_code_request(PHONE)
    with pytest.raises(errors.PhoneCodeInvalidError):
        await client.sign_in(
            phone=PHONE, code="00000" if telegram.login_code(PHONE) != "00000" else "11111"
        )
    me = await client.sign_in(phone=PHONE, code=telegram.login_code(PHONE))

    assert (me.id, me.first_name, me.username, me.is_self) == (
        account.user_id,
        "Ana",
        "ana_watch",
        True,
    )
    assert await client.is_user_authorized()
    assert (await client.get_me()).phone == "447700900123"
    assert telegram.keys_of(account)
    assert telegram.handshakes == 1
    assert "auth.signIn" in telegram.methods(account)


async def test_unknown_phone_is_unoccupied(
    telegram: MTProtoServer, new_client: Callable[..., TelegramClient]
) -> None:
    client = new_client()
    await client.connect()
    await client.send_code_request("+15550001111")
    with pytest.raises(errors.PhoneNumberUnoccupiedError):
        await client.sign_in(phone="+15550001111", code=telegram.login_code("+15550001111"))


async def test_login_with_two_step_password(
    telegram: MTProtoServer, new_client: Callable[..., TelegramClient]
) -> None:
    account = telegram.add_account(PHONE, password=PASSWORD, hint="horse")
    client = new_client()
    await client.connect()
    await client.send_code_request(PHONE)
    with pytest.raises(errors.SessionPasswordNeededError):
        await client.sign_in(phone=PHONE, code=telegram.login_code(PHONE))
    assert not await client.is_user_authorized()  # the code alone does not log in

    with pytest.raises(errors.PasswordHashInvalidError):
        await client.sign_in(password="wrong password")
    me = await client.sign_in(password=PASSWORD)

    assert me.id == account.user_id
    assert await client.is_user_authorized()
    checks = [c for c in telegram.calls if c.method == "auth.checkPassword"]
    assert [c.error for c in checks] == ["400 PASSWORD_HASH_INVALID", None]


async def test_session_file_authorises_the_next_process(
    telegram: MTProtoServer, new_client: Callable[..., TelegramClient]
) -> None:
    account = telegram.add_account(PHONE)
    first = new_client("shared")
    await sign_in(telegram, first, PHONE)
    await first.disconnect()

    second = new_client("shared")  # a new process on the same session file
    await second.connect()
    assert await second.is_user_authorized()
    assert (await second.get_me()).id == account.user_id
    assert telegram.handshakes == 1  # the auth key was reused, not made again


async def test_production_hook_points_the_client_at_the_server(
    telegram: MTProtoServer, tmp_path: Path, clients: list[TelegramClient]
) -> None:
    """watchers.client.make_client with TG_SERVER / TG_SERVER_KEY, as `vigil login` uses it."""
    from watchers.client import connect_authorised
    from watchers.client import make_client as vigil_client

    telegram.add_account(PHONE)
    assert telegram.key_path is not None
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        TG_API_ID=TEST_API_ID,
        TG_API_HASH=TEST_API_HASH,
        VIGIL_DATA_DIR=str(tmp_path / "data"),
        TG_SERVER=telegram.address,
        TG_SERVER_KEY=str(telegram.key_path),
    )
    client = vigil_client(settings, "vigil", create=True)
    clients.append(client)
    await sign_in(telegram, client, PHONE)
    await client.disconnect()

    again = vigil_client(settings, "vigil")
    clients.append(again)
    await connect_authorised(again, "vigil")
    init = next(iter(telegram.auth_keys.values())).init
    assert (init["api_id"], init["device_model"], init["app_version"]) == (
        TEST_API_ID,
        "Vigil",
        "vigil 0.1",
    )


# ---------------------------------------------------------------------------- channels


async def logged_in(
    telegram: MTProtoServer, new_client: Callable[..., TelegramClient], **kwargs: Any
) -> tuple[Account, TelegramClient]:
    account = telegram.add_account(PHONE)
    client = new_client(**kwargs)
    await sign_in(telegram, client, PHONE)
    return account, client


async def test_resolve_and_join_a_channel(
    telegram: MTProtoServer, new_client: Callable[..., TelegramClient]
) -> None:
    account, client = await logged_in(telegram, new_client)
    channel = telegram.add_channel("osint_feed", title="OSINT feed")

    resolved = await client(functions.contacts.ResolveUsernameRequest("OSINT_feed"))
    assert resolved.peer == types.PeerChannel(channel.id)
    chat = resolved.chats[0]
    assert (chat.title, chat.access_hash, chat.left, chat.broadcast) == (
        "OSINT feed",
        channel.access_hash,
        True,
        True,
    )
    updates = await client(functions.channels.JoinChannelRequest(chat))
    assert updates.chats[0].left is False
    assert account.user_id in channel.participants

    with pytest.raises(errors.UsernameNotOccupiedError):
        await client(functions.contacts.ResolveUsernameRequest("nobody_here"))
    forged = types.InputChannel(channel.id, channel.access_hash + 1)
    with pytest.raises(errors.ChannelInvalidError):
        await client(functions.channels.JoinChannelRequest(forged))


async def test_invites_caps_and_private_channels(
    telegram: MTProtoServer, new_client: Callable[..., TelegramClient]
) -> None:
    account, client = await logged_in(telegram, new_client)
    private = telegram.add_channel(title="Closed", private=True, invite_hash="AbCdEf123")
    public = telegram.add_channel("open_one")

    invite = await client(functions.messages.CheckChatInviteRequest("AbCdEf123"))
    assert isinstance(invite, types.ChatInvite) and invite.title == "Closed"
    joined = await client(functions.messages.ImportChatInviteRequest("AbCdEf123"))
    assert joined.chats[0].id == private.id
    again = await client(functions.messages.CheckChatInviteRequest("AbCdEf123"))
    assert isinstance(again, types.ChatInviteAlready)

    telegram.expire_invite(private)
    with pytest.raises(errors.InviteHashExpiredError):
        await client(functions.messages.CheckChatInviteRequest("AbCdEf123"))
    with pytest.raises(errors.InviteHashInvalidError):
        await client(functions.messages.CheckChatInviteRequest("nope"))

    account.channels_cap = 1
    config = await client(functions.help.GetAppConfigRequest(hash=0))
    assert {e.key: e.value.value for e in config.config.value}["channels_limit_default"] == 1
    peer = types.InputChannel(public.id, public.access_hash)
    with pytest.raises(errors.ChannelsTooMuchError):
        await client(functions.channels.JoinChannelRequest(peer))

    outsider = telegram.add_channel(title="Other closed", private=True)
    with pytest.raises(errors.ChannelPrivateError):
        await client.get_messages(types.InputPeerChannel(outsider.id, outsider.access_hash), 1)


async def test_iter_messages_after_min_id_oldest_first(
    telegram: MTProtoServer, new_client: Callable[..., TelegramClient]
) -> None:
    _account, client = await logged_in(telegram, new_client)
    channel = telegram.add_channel("history_chan")
    posts = await telegram.post_many(channel, [f"post {i}" for i in range(1, 251)])
    peer = types.InputPeerChannel(channel.id, channel.access_hash)

    got = [m async for m in client.iter_messages(peer, min_id=17, reverse=True, wait_time=0)]

    assert [m.id for m in got] == [p.id for p in posts if p.id > 17]
    assert got[0].text == "post 18" and got[-1].text == "post 250"
    assert telegram.count("messages.getHistory") >= 3  # pages of at most 100

    newest = [m.id async for m in client.iter_messages(peer, limit=5)]
    assert newest == [250, 249, 248, 247, 246]
    window = await client(
        functions.messages.GetHistoryRequest(
            peer,
            offset_id=100,
            offset_date=None,
            add_offset=-3,
            limit=5,
            max_id=0,
            min_id=0,
            hash=0,
        )
    )
    assert [m.id for m in window.messages] == [102, 101, 100, 99, 98]
    assert window.count == 250
    bounded = await client(
        functions.messages.GetHistoryRequest(
            peer,
            offset_id=0,
            offset_date=None,
            add_offset=0,
            limit=100,
            max_id=0,
            min_id=240,
            hash=0,
        )
    )
    assert [m.id for m in bounded.messages] == list(range(250, 240, -1))


async def test_media_forwards_and_albums_look_like_telegram(
    telegram: MTProtoServer, new_client: Callable[..., TelegramClient]
) -> None:
    _account, client = await logged_in(telegram, new_client)
    source = telegram.add_channel("source_chan")
    channel = telegram.add_channel("media_chan")
    await telegram.post(channel, "a caption", photo=True)
    await telegram.post(channel, "copied", forward=Forward(channel_id=source.id, message_id=7))
    album = await telegram.post_album(channel, 3, "album caption")
    peer = types.InputPeerChannel(channel.id, channel.access_hash)

    photo, forwarded, *parts = [m async for m in client.iter_messages(peer, reverse=True)]

    assert isinstance(photo.media, types.MessageMediaPhoto) and photo.message == "a caption"
    assert forwarded.fwd_from.from_id == types.PeerChannel(source.id)
    assert forwarded.fwd_from.channel_post == 7
    assert {m.grouped_id for m in parts} == {album[0].grouped_id}
    assert [m.message for m in parts] == ["album caption", "", ""]


async def test_flood_wait_surfaces_with_its_seconds(
    telegram: MTProtoServer, new_client: Callable[..., TelegramClient]
) -> None:
    _account, client = await logged_in(telegram, new_client)
    telegram.add_channel("busy_chan")
    telegram.flood_wait("contacts.resolveUsername", 7, on_call=2)

    await client(functions.contacts.ResolveUsernameRequest("busy_chan"))
    with pytest.raises(errors.FloodWaitError) as caught:
        await client(functions.contacts.ResolveUsernameRequest("busy_chan"))

    assert caught.value.seconds == 7
    assert [c.error for c in telegram.calls if c.method == "contacts.resolveUsername"] == [
        None,
        "420 FLOOD_WAIT_7",
    ]


# ---------------------------------------------------------------------------- updates


async def test_pushed_post_edit_and_delete_reach_event_handlers(
    telegram: MTProtoServer, new_client: Callable[..., TelegramClient]
) -> None:
    account, client = await logged_in(telegram, new_client)
    channel = telegram.add_channel("live_chan")
    telegram.join(channel, account)
    seen: list[Any] = []
    texts: list[str] = []

    async def on_raw(update: Any) -> None:
        seen.append(update)

    async def on_new(event: events.NewMessage.Event) -> None:
        texts.append(event.raw_text)

    client.add_event_handler(on_raw, events.Raw(types.UpdateDeleteChannelMessages))
    client.add_event_handler(on_raw, events.Raw(types.UpdateEditChannelMessage))
    client.add_event_handler(on_new, events.NewMessage(chats=[channel.id]))

    post = await telegram.post(channel, "breaking: first")
    await eventually(lambda: texts == ["breaking: first"], 3.0)
    await telegram.edit(channel, post.id, "breaking: first (updated)")
    await eventually(lambda: any(isinstance(u, types.UpdateEditChannelMessage) for u in seen), 3.0)
    await telegram.delete(channel, post.id)
    await eventually(
        lambda: any(isinstance(u, types.UpdateDeleteChannelMessages) for u in seen), 3.0
    )

    edit = next(u for u in seen if isinstance(u, types.UpdateEditChannelMessage))
    delete = next(u for u in seen if isinstance(u, types.UpdateDeleteChannelMessages))
    assert edit.message.message == "breaking: first (updated)"
    assert (delete.channel_id, delete.messages, delete.pts) == (channel.id, [post.id], channel.pts)


async def test_dropped_update_is_recovered_through_channel_difference(
    telegram: MTProtoServer, new_client: Callable[..., TelegramClient]
) -> None:
    account, client = await logged_in(telegram, new_client)
    channel = telegram.add_channel("gappy_chan")
    telegram.join(channel, account)
    texts: list[str] = []

    async def on_new(event: events.NewMessage.Event) -> None:
        texts.append(event.raw_text)

    client.add_event_handler(on_new, events.NewMessage(chats=[channel.id]))
    await telegram.post(channel, "one")
    await eventually(lambda: texts == ["one"], 3.0)

    await telegram.post(channel, "two (dropped)", push=False)
    await telegram.post(channel, "three")
    await eventually(lambda: len(texts) == 3, 3.0)

    assert sorted(texts) == ["one", "three", "two (dropped)"]
    assert telegram.count("updates.getChannelDifference") == 1


async def test_catch_up_after_a_restart_finds_posts_made_while_offline(
    telegram: MTProtoServer, new_client: Callable[..., TelegramClient]
) -> None:
    account, client = await logged_in(telegram, new_client, catch_up=True)
    channel = telegram.add_channel("offline_chan")
    telegram.join(channel, account)
    texts: list[str] = []
    await telegram.post(channel, "before")
    await eventually(lambda: channel.id in client._message_box.map, 3.0)
    await client.disconnect()

    await telegram.post(channel, "while away")
    restarted = new_client(catch_up=True)

    async def on_new(event: events.NewMessage.Event) -> None:
        texts.append(event.raw_text)

    restarted.add_event_handler(on_new, events.NewMessage(chats=[channel.id]))
    await restarted.connect()
    await eventually(lambda: texts == ["while away"], 3.0)
    assert "updates.getDifference" in telegram.methods(account)


async def test_revoked_session_is_no_longer_authorised(
    telegram: MTProtoServer, new_client: Callable[..., TelegramClient]
) -> None:
    account, client = await logged_in(telegram, new_client)
    assert telegram.revoke(account) == 1

    with pytest.raises(errors.AuthKeyUnregisteredError):
        await client(functions.updates.GetStateRequest())
    await client.disconnect()
    again = new_client()
    await again.connect()
    assert not await again.is_user_authorized()


async def test_unknown_methods_are_refused_and_recorded(
    telegram: MTProtoServer, new_client: Callable[..., TelegramClient]
) -> None:
    _account, client = await logged_in(telegram, new_client)
    assert telegram.unimplemented == []

    with pytest.raises(errors.RPCError) as caught:
        await client(functions.account.GetAuthorizationsRequest())

    assert caught.value.code == 400
    assert caught.value.message == "METHOD_NOT_IMPLEMENTED_BY_LOOPBACK"
    assert telegram.unimplemented == ["account.getAuthorizations"]
    telegram.unimplemented.clear()


async def test_service_messages(
    telegram: MTProtoServer, new_client: Callable[..., TelegramClient]
) -> None:
    _account, client = await logged_in(telegram, new_client)
    pong = await client(functions.PingRequest(ping_id=42))
    assert pong.ping_id == 42
    salts = await client(functions.GetFutureSaltsRequest(num=3))
    assert len(salts.salts) == 3
    # A large request goes gzip_packed, several at once go in one container.
    many = await asyncio.gather(
        *(client(functions.help.GetNearestDcRequest()) for _ in range(5)),
        client(functions.contacts.ResolveUsernameRequest("x" * 32)),
        return_exceptions=True,
    )
    assert all(isinstance(m, types.NearestDc) for m in many[:5])
    assert isinstance(many[5], errors.UsernameNotOccupiedError | errors.UsernameInvalidError)
