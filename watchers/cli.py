"""What `vigil channel add|list|remove` do; bot/cli.py calls these.

Each prints its result for a person at a terminal and returns the process exit code.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from bot.config import Settings
from bot.storage.channels import Channel, ChannelRefError, ChannelRepository

Out = Callable[[str], None]


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def format_channel(channel: Channel) -> str:
    status = channel.state + (f" ({channel.reason})" if channel.reason else "")
    ident = f"id {channel.channel_id}" if channel.channel_id else "not resolved yet"
    return (
        f"{channel.key:<32} {status:<28} weight {channel.weight:<6} "
        f"account {channel.account or '-':<10} last post {_when(channel.last_post_at)}  "
        f"{channel.label} [{ident}]"
    )


async def channel_add(
    repo: ChannelRepository, refs: Sequence[str], added_by: int = 0, *, out: Out = print
) -> int:
    """Add channels; the watcher resolves and joins them at its own pace."""
    failed = 0
    for ref in refs:
        try:
            channel = await repo.add(ref, added_by)
        except ChannelRefError as exc:
            out(html.unescape(str(exc)))
            failed += 1
            continue
        out(f"added {channel.ref}: {channel.state} (the watcher resolves and joins it slowly)")
    return 1 if failed else 0


async def channel_list(repo: ChannelRepository, *, out: Out = print) -> int:
    channels = await repo.list()
    if not channels:
        out("No channels yet: add one with `vigil channel add @username`.")
        return 0
    for channel in channels:
        out(format_channel(channel))
    return 0


async def channel_remove(repo: ChannelRepository, refs: Sequence[str], *, out: Out = print) -> int:
    missing = 0
    for ref in refs:
        if await repo.remove(ref):
            out(f"removed {ref}")
        else:
            out(f"{ref}: no such channel in the list")
            missing += 1
    return 1 if missing else 0


async def channel_command(settings: Settings, action: str, ref: str | None) -> int:
    """`vigil channel add|list|remove [REF]`, on the Redis the settings name."""
    from bot.storage.connection import open_redis

    if action in ("add", "remove") and not ref:
        print(f"vigil channel {action}: give a channel (@name, t.me link or invite link)")
        return 2
    async with open_redis(settings) as redis:
        repo = ChannelRepository(redis)
        if action == "add":
            assert ref is not None
            return await channel_add(repo, [ref])
        if action == "remove":
            assert ref is not None
            return await channel_remove(repo, [ref])
        return await channel_list(repo)
