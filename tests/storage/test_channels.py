from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from bot.storage import keys
from bot.storage.channels import ChannelRefError, ChannelRepository, parse_channel_ref


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("@durov", "@durov"),
        ("durov", "@durov"),
        ("  @Durov\u200b ", "@durov"),
        ("t.me/durov", "@durov"),
        ("https://t.me/durov", "@durov"),
        ("http://telegram.me/durov/", "@durov"),
        ("https://t.me/durov/1234", "@durov"),
        ("https://t.me/s/durov", "@durov"),
        ("https://t.me/durov?single", "@durov"),
        ("tg://resolve?domain=durov", "@durov"),
        ("t.me/+AbCdEf_123-xyz", "t.me/+AbCdEf_123-xyz"),
        ("https://t.me/+AbCdEf_123-xyz", "t.me/+AbCdEf_123-xyz"),
        ("t.me/joinchat/AbCdEf123456", "t.me/joinchat/AbCdEf123456"),
        ("https://t.me/joinchat/AbCdEf123456", "t.me/joinchat/AbCdEf123456"),
        ("t.me/c/1234567890/55", "id:1234567890"),
        ("https://t.me/c/1234567890", "id:1234567890"),
        ("-1001234567890", "id:1234567890"),
        ("id:42", "id:42"),
    ],
)
def test_parse_ref_accepts_every_form(text: str, ref: str) -> None:
    assert parse_channel_ref(text) == ref
    assert ChannelRepository.parse_ref(text) == ref


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "hello world",
        "<script>alert(1)</script>",
        "a&b",
        "abc",  # too short
        "1channel",  # starts with a digit
        "name_",
        "канал_новостей",
        "\u202eltr_override",
        "https://example.com/durov",
        "t.me/",
        "t.me/joinchat/",
        "t.me/+short",
        "t.me/c/notanumber/1",
        "t.me/addstickers/pack",
        "tg://msg?text=hi",
        "😀😀😀😀😀",
        "x" * 10_000,
    ],
)
def test_parse_ref_refuses_garbage_with_a_clear_safe_message(text: str) -> None:
    with pytest.raises(ChannelRefError) as caught:
        parse_channel_ref(text)
    message = str(caught.value)
    assert "is not a channel" in message
    assert "<" not in message and ">" not in message  # HTML-escaped: safe to send as HTML
    assert len(message) < 400


async def test_add_is_idempotent_and_lists(redis: aioredis.Redis) -> None:
    repo = ChannelRepository(redis, clock=lambda: 1000.0)
    first = await repo.add("https://t.me/Durov", added_by=7)
    again = await repo.add("@durov", added_by=8)
    assert first == again
    assert first.state == "pending" and first.weight == "normal" and first.added_by == 7
    assert first.key == "@durov" and first.username == "durov"
    invite = await repo.add("t.me/joinchat/AbCdEf123456", added_by=7)
    assert (await repo.add("t.me/+AbCdEf123456", added_by=7)).key == invite.key
    assert invite.invite_hash == "AbCdEf123456" and invite.is_invite
    listed = await repo.list()
    assert [c.key for c in listed] == ["@durov", "t.me/joinchat/AbCdEf123456"]


async def test_resolution_moves_entry_to_id_and_keeps_every_ref(redis: aioredis.Redis) -> None:
    repo = ChannelRepository(redis)
    await repo.add("@durov", added_by=1)
    await repo.set_weight("@durov", "high")
    moved = await repo.mark_resolved(
        "@durov", channel_id=1005, access_hash=-77, username="Durov", title="Durov's <Channel>"
    )
    assert moved is not None and moved.key == "id:1005" and moved.weight == "high"
    assert await redis.exists(keys.channel("@durov")) == 0
    for ref in ("@durov", "t.me/durov", "id:1005", "t.me/c/1005/9"):
        found = await repo.get(ref)
        assert found is not None and found.key == "id:1005", ref
    assert (await repo.by_id(1005)) == moved
    assert await repo.weight_of(1005) == "high"
    assert await repo.weight_of(999) == "normal"
    assert await repo.weights() == {1005: "high"}
    # adding the same channel again under its new username finds the entry
    renamed = await repo.mark_resolved(
        "id:1005", channel_id=1005, access_hash=None, username="pavel", title=""
    )
    assert renamed is not None and renamed.access_hash == -77 and renamed.title.endswith(">")
    assert (await repo.add("@pavel", added_by=2)).key == "id:1005"
    assert len(await repo.list()) == 1


async def test_two_refs_of_one_channel_merge(redis: aioredis.Redis) -> None:
    repo = ChannelRepository(redis)
    await repo.add("@durov", added_by=1)
    await repo.add("t.me/+AbCdEf123456", added_by=1)
    await repo.mark_resolved("@durov", channel_id=5, access_hash=1, username="durov", title="D")
    await repo.mark_resolved(
        "t.me/+AbCdEf123456", channel_id=5, access_hash=1, username="durov", title="D"
    )
    assert [c.key for c in await repo.list()] == ["id:5"]
    assert (await repo.get("t.me/joinchat/AbCdEf123456")) is not None


async def test_states_pause_weight_remove(redis: aioredis.Redis) -> None:
    repo = ChannelRepository(redis)
    await repo.add("@channel_one", added_by=1)
    await repo.mark_resolved(
        "@channel_one", channel_id=11, access_hash=2, username="channel_one", title=""
    )
    joined = await repo.mark_joined("id:11", "acc1")
    assert joined is not None and joined.state == "joined" and joined.account == "acc1"
    paused = await repo.set_paused("id:11", True)
    assert paused is not None and paused.state == "paused"
    resumed = await repo.set_paused("id:11", False)
    assert resumed is not None and resumed.state == "joined"
    with pytest.raises(ValueError, match="weight"):
        await repo.set_weight("id:11", "extreme")
    assert await repo.set_weight("missing", "low") is None
    failed = await repo.mark_failed("id:11", "banned")
    assert failed is not None and failed.reason == "banned"
    assert [c.key for c in await repo.failed()] == ["id:11"]
    retried = await repo.add("@channel_one", added_by=1)
    assert retried.state == "pending" and retried.reason is None
    assert await repo.remove("@channel_one") is True
    assert await repo.remove("@channel_one") is False
    assert await repo.list() == []
    assert await redis.hlen(keys.CHANNEL_BY_REF) == 0


async def test_touch_last_post_tracks_rhythm(redis: aioredis.Redis) -> None:
    repo = ChannelRepository(redis)
    await repo.add("id:77", added_by=1)
    await repo.touch_last_post(77, 1000.0)
    await repo.touch_last_post(77, 1100.0)
    await repo.touch_last_post(77, 1050.0)  # older: ignored
    await repo.touch_last_post(78, 1000.0)  # unknown channel: nothing created
    channel = await repo.by_id(77)
    assert channel is not None and channel.last_post_at == 1100.0 and channel.rhythm_s == 100.0
    assert await repo.by_id(78) is None


async def test_retry_later_and_set_account(redis: aioredis.Redis) -> None:
    repo = ChannelRepository(redis)
    await repo.add("id:9", added_by=1)
    later = await repo.retry_later("id:9", 5000.0, "flood wait")
    assert later is not None and later.attempts == 1 and later.next_try_at == 5000.0
    await repo.mark_joined("id:9", "a")
    moved = await repo.set_account("id:9", "b")
    assert moved is not None and moved.state == "pending" and moved.account == "b"


async def test_cli_add_list_remove(redis: aioredis.Redis) -> None:
    from watchers.cli import channel_add, channel_list, channel_remove

    repo = ChannelRepository(redis)
    lines: list[str] = []
    assert await channel_add(repo, ["t.me/some_channel", "<b>bad</b>"], out=lines.append) == 1
    assert lines[0].startswith("added @some_channel: pending")
    assert "“<b>bad</b>” is not a channel" in lines[1]  # plain text in a terminal
    lines.clear()
    assert await channel_list(repo, out=lines.append) == 0
    assert len(lines) == 1 and "@some_channel" in lines[0] and "pending" in lines[0]
    assert await channel_remove(repo, ["https://t.me/some_channel"], out=lines.append) == 0
    assert await channel_remove(repo, ["@nothing_here"], out=lines.append) == 1
    lines.clear()
    await channel_list(repo, out=lines.append)
    assert lines == ["No channels yet: add one with `vigil channel add @username`."]
