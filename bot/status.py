"""`vigil status` and the admin System view: one health snapshot from Redis."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from bot.config import Settings
from bot.storage.connection import describe
from bot.storage.streams import LAG_COUNT_CAP

if TYPE_CHECKING:
    from bot.storage.channels import Channel
    from bot.storage.health import HealthRepository
    from bot.storage.repos import Repositories

HEARTBEAT_S = 15
ALIVE_WITHIN_S = 3 * HEARTBEAT_S
ACCOUNT_STALE_S = 180.0  # a watcher account republishes its state every minute


async def collect_status(repos: Repositories, settings: Settings) -> dict[str, Any]:
    """Everything `vigil status` prints (`--json` prints this dict as it is)."""
    repo = repos.health
    info = await repo.redis_info()
    streams = []
    for s in await repo.streams():
        streams.append(
            {
                "stream": s.stream,
                "group": s.group,
                "length": s.length,
                "pending": s.pending,
                "lag": s.lag,
                "consumers": s.consumers,
                "dead_letters": s.dead_letters,
            }
        )
    health = await watcher_health(repo, await repos.channels.list())
    return {
        "redis": {
            "where": describe(settings),
            "version": info.version,
            "memory": info.used_memory_human,
        },
        "streams": streams,
        **await repo.totals(),
        **health,
    }


async def watcher_health(repo: HealthRepository, channels: list[Channel]) -> dict[str, Any]:
    """Roles alive, channel states, flood waits, watcher accounts, silent channels: the part
    of the snapshot the admin System view shows too (it needs no Settings). `channels`: every
    channel, as the caller read them (the System view lists them too)."""
    now = time.time()
    beats = await repo.beats(now=now)
    roles = [
        {
            "role": name,
            "last_seen_s": round(now - at, 1),
            "alive": now - at < ALIVE_WITHIN_S,
        }
        for name, at in sorted(beats.items())
    ]
    floods = await repo.flood_waits(now=now)
    flood_waits = {k: round(v - now) for k, v in floods.items()}
    from watchers.health import accounts, is_silent  # no Telegram client imported

    channel_states: dict[str, int] = {}
    silent = []
    for channel in channels:
        channel_states[channel.state] = channel_states.get(channel.state, 0) + 1
        if is_silent(channel, now):
            silent.append(channel.label)
    watcher_accounts = [
        {
            "session": a.session,
            "alive": a.alive and now - a.at < ACCOUNT_STALE_S,
            "connected": a.connected,
            "channels": a.channels,
            "cap": a.cap,
            "last_seen_s": round(now - a.at, 1),
            "reason": a.reason,
        }
        for a in await accounts(repo)
    ]
    return {
        "roles": roles,
        "channels": channel_states,
        "flood_waits_s": flood_waits,
        "accounts": watcher_accounts,
        "silent_channels": silent,
    }


def health_lines(health: dict[str, Any]) -> list[str]:
    """`watcher_health` as plain-text lines (escape them for HTML)."""
    lines: list[str] = []
    if health["roles"]:
        for role in health["roles"]:
            mark = "alive" if role["alive"] else "SILENT"
            lines.append(f"role {role['role']}: {mark} (last beat {role['last_seen_s']}s ago)")
    else:
        lines.append("roles: none running (start them with `vigil run`)")
    chans = health["channels"]
    chan_text = ", ".join(f"{n} {state}" for state, n in sorted(chans.items())) or "none"
    lines.append(f"channels: {chan_text}")
    lines.extend(account_line(a) for a in health["accounts"])
    for session, left in health["flood_waits_s"].items():
        lines.append(f"flood wait: session {session} waits {left}s more")
    if health["silent_channels"]:
        lines.append("silent for too long: " + ", ".join(health["silent_channels"]))
    return lines


def account_line(account: dict[str, Any]) -> str:
    """One watcher account, for `vigil status` and the admin System view (plain text)."""
    if not account["alive"]:
        state = f"STOPPED ({account['reason'] or 'not heard of'})"
    else:
        state = "connected" if account["connected"] else "DISCONNECTED"
    return (
        f"account {account['session']}: {state}, {account['channels']}/{account['cap']} "
        f"channels (last report {account['last_seen_s']:.0f}s ago)"
    )


def format_status(status: dict[str, Any]) -> str:
    r = status["redis"]
    lines = [f"Redis: {r['where']} — redis {r['version']}, {r['memory']} used", ""]
    lines.append(f"{'stream':<28}{'group':<10}{'length':>8}{'pending':>9}{'lag':>8}{'dead':>6}")
    for s in status["streams"]:
        lag = s["lag"]
        lag_text = (
            "?" if lag is None else (f">{LAG_COUNT_CAP - 1}" if lag >= LAG_COUNT_CAP else str(lag))
        )
        lines.append(
            f"{s['stream']:<28}{s['group']:<10}{s['length']:>8}{s['pending']:>9}"
            f"{lag_text:>8}{s['dead_letters']:>6}"
        )
    lines.append("")
    lines.append(f"watches: {status['watches']}   analysts: {status['analysts']}")
    lines.extend(health_lines(status))
    return "\n".join(lines)
