"""Resolve and join channels slowly: one action per spacing, a daily cap, resumable.

Telegram publishes no limits, but public reports agree on the shape: bursts of
contacts.resolveUsername earn FloodWaits of many hours, and joining some tens of channels in
a row earns waits of minutes to a day. So each account takes one pending channel at a time,
at least `spacing_s` apart and at most `daily_cap` per UTC day; the pace lives in Redis
(`keys.joiner_state`) so a restart does not reset it. A channel is resolved once: its id and
access hash are kept and everything afterwards is keyed by id.

A channel known only by id (`id:<n>`: a t.me/c link, or an admin's ➕ on a channel that
monitored ones forward) has no access hash. The account's session may know it (a channel it
is in); if not, Telegram finds it through a message that mentions it: a monitored channel's
post forwarded from it (`InputChannelFromMessage`, the posts from
`CampaignRepository.forwarded_via`), found by the account that watches that channel (the
channel is handed to it). A channel found neither way fails: "private" when no such post is
kept, else `NOT_FOUND_BY_ID` (the admin is told to add it by @username).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from telethon import errors
from telethon.tl import functions, types

from bot.storage.channels import Channel, ChannelRepository
from bot.storage.repos import Repositories
from watchers.health import record_flood_wait

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class JoinPolicy:
    spacing_s: float = 300.0  # between two resolve/join actions of one account
    daily_cap: int = 40  # actions per account per UTC day
    retry_s: float = 3600.0  # first retry after a transient failure (doubles each time)
    max_attempts: int = 6  # transient failures before the channel is marked failed
    approval_retry_s: float = 6 * 3600.0  # a join request waits for the channel's admins


@dataclass(frozen=True, slots=True)
class JoinOutcome:
    key: str
    state: str  # joined | failed | pending (retry later)
    reason: str | None = None


# Telegram's answer -> the reason an admin reads.
_FAILURES: tuple[tuple[type[Exception], str], ...] = (
    (errors.ChannelPrivateError, "private"),
    (errors.ChannelInvalidError, "private"),
    (errors.ChannelBannedError, "banned"),
    (errors.UserBannedInChannelError, "banned"),
    (errors.InviteHashExpiredError, "invite expired"),
    (errors.InviteHashInvalidError, "invite invalid"),
    (errors.ChannelsTooMuchError, "too many channels"),
    (errors.UsernameNotOccupiedError, "no such username"),
    (errors.UsernameInvalidError, "no such username"),
)


class NotAChannelError(Exception):
    """The ref names a user, a bot or a basic group: nothing Vigil can watch."""


class NotFoundByIdError(Exception):
    """A channel known only by id that no kept forwarded post shows to this account."""


class SeenElsewhereError(Exception):
    """The posts that show a channel known only by id are in channels another account
    watches (an account finds a message only in a channel its own session knows)."""

    def __init__(self, account: str) -> None:
        super().__init__(account)
        self.account = account


NOT_FOUND_BY_ID = "not found by id: add it by @username or a link"


class Joiner:
    def __init__(
        self,
        repos: Repositories,
        client: Any,
        channels: ChannelRepository,
        *,
        session: str,
        policy: JoinPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._pace = repos.join_pace
        self._campaigns = repos.campaigns
        self._health = repos.health
        self._client = client
        self._channels = channels
        self._session = session
        self.policy = policy or JoinPolicy()
        self._clock = clock

    # --- pace --------------------------------------------------------------------------------
    def _today(self, now: float) -> str:
        return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")

    async def next_allowed_at(self, now: float | None = None) -> float:
        """When this account may take its next action (`now` or later)."""
        now = self._clock() if now is None else now
        state = await self._pace.get(self._session)
        last = float(state.get("last_at") or 0.0)
        blocked = float(state.get("blocked_until") or 0.0)
        at = max(now, last + self.policy.spacing_s, blocked)
        if state.get("day") == self._today(now) and int(state.get("count") or 0) >= (
            self.policy.daily_cap
        ):
            midnight = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0)
            at = max(at, midnight.timestamp() + 86400)
        return at

    async def _spend(self, now: float) -> None:
        """Count an action before it is made: a crash mid-call still counts against the cap."""
        today = self._today(now)
        state = await self._pace.get(self._session)
        used = int(state.get("count") or 0) if state.get("day") == today else 0
        await self._pace.update(self._session, last_at=repr(now), day=today, count=str(used + 1))

    async def _block_until(self, until: float) -> None:
        await self._pace.update(self._session, blocked_until=repr(until))

    # --- work --------------------------------------------------------------------------------
    async def next_candidate(self) -> Channel | None:
        now = self._clock()
        for channel in await self._channels.with_state("pending"):
            if channel.account != self._session:
                continue
            if channel.next_try_at is not None and channel.next_try_at > now:
                continue
            return channel
        return None

    async def step(self) -> JoinOutcome | None:
        """Resolve and join one pending channel if the pace allows; None when nothing to do."""
        now = self._clock()
        if await self.next_allowed_at(now) > now:
            return None
        channel = await self.next_candidate()
        if channel is None:
            return None
        await self._spend(now)
        try:
            return await self._join(channel)
        except errors.FloodWaitError as exc:
            until = await record_flood_wait(self._health, self._session, exc.seconds, now=now)
            await self._block_until(until)
            await self._health.count("flood_waits")
            return await self._later(channel, until, "flood wait")
        except (errors.UnauthorizedError, errors.AuthKeyError):
            raise  # the account is gone: the service handles it
        except NotAChannelError:
            return await self._failed(channel, "not a channel")
        except NotFoundByIdError:
            return await self._failed(channel, NOT_FOUND_BY_ID)
        except SeenElsewhereError as exc:
            # The account that watches the forwarding channel resolves and joins it instead;
            # the assignment keeps a channel on a live account.
            moved = await self._channels.set_account(channel.key, exc.account)
            log.info("channel %s: handed to %s, which sees it forwarded", channel.key, exc.account)
            return JoinOutcome(moved.key if moved else channel.key, "pending", "handed over")
        except errors.InviteRequestSentError:
            return await self._later(
                channel, now + self.policy.approval_retry_s, "awaiting approval"
            )
        except errors.RPCError as exc:
            for cls, reason in _FAILURES:
                if isinstance(exc, cls):
                    return await self._failed(channel, reason)
            return await self._transient(channel, type(exc).__name__, now)
        except (ConnectionError, OSError, TimeoutError) as exc:
            return await self._transient(channel, type(exc).__name__, now)

    async def _failed(self, channel: Channel, reason: str) -> JoinOutcome:
        # The entry may have moved to 'id:<n>' if resolving worked and joining did not.
        updated = await self._channels.mark_failed(channel.key, reason)
        log.info("channel %s: %s", channel.key, reason)
        return JoinOutcome(updated.key if updated else channel.key, "failed", reason)

    async def _later(self, channel: Channel, at: float, reason: str) -> JoinOutcome:
        updated = await self._channels.retry_later(channel.key, at, reason)
        return JoinOutcome(updated.key if updated else channel.key, "pending", reason)

    async def _transient(self, channel: Channel, reason: str, now: float) -> JoinOutcome:
        if channel.attempts + 1 >= self.policy.max_attempts:
            return await self._failed(channel, reason)
        delay = self.policy.retry_s * 2**channel.attempts
        log.warning("channel %s: %s, retry in %.0f s", channel.key, reason, delay)
        return await self._later(channel, now + delay, reason)

    async def _join(self, channel: Channel) -> JoinOutcome:
        key = channel.key
        # Before the join call: a post published between the join and the reconciler's first
        # look is newer than this, so the first catch-up keeps it (see Reconciler._start_point).
        joining_at = self._clock()
        if self._usable_hash(channel):
            assert channel.channel_id is not None and channel.access_hash is not None
            peer = types.InputChannel(channel.channel_id, channel.access_hash)
            await self._client(functions.channels.JoinChannelRequest(peer))
        else:
            invite = channel.invite_hash
            chat = await (self._join_by_invite(invite) if invite else self._resolve(channel))
            if chat is None:
                raise NotAChannelError(channel.key)
            # Kept before joining: a FloodWait on the join must not cost another resolve.
            resolved = await self._channels.mark_resolved(
                channel.key,
                channel_id=int(chat.id),
                access_hash=getattr(chat, "access_hash", None),
                username=getattr(chat, "username", None),
                title=getattr(chat, "title", "") or "",
                resolved_by=self._session,
            )
            key = resolved.key if resolved else channel.key
            if invite is None and getattr(chat, "left", True):
                peer = types.InputChannel(chat.id, chat.access_hash)
                await self._client(functions.channels.JoinChannelRequest(peer))
        await self._channels.mark_joined(key, self._session, joining_at)
        log.info("joined channel %s on %s", key, self._session)
        return JoinOutcome(key, "joined")

    def _usable_hash(self, channel: Channel) -> bool:
        # An access hash is per account: one got by another account cannot be used here.
        return (
            channel.channel_id is not None
            and channel.access_hash is not None
            and channel.resolved_by == self._session
        )

    async def _join_by_invite(self, invite: str) -> Any:
        checked = await self._client(functions.messages.CheckChatInviteRequest(invite))
        if isinstance(checked, types.ChatInviteAlready):
            return _as_channel(checked.chat)
        updates = await self._client(functions.messages.ImportChatInviteRequest(invite))
        for chat in getattr(updates, "chats", None) or ():
            if _as_channel(chat) is not None:
                return chat
        return None

    async def _resolve(self, channel: Channel) -> Any:
        if channel.username:
            result = await self._client(
                functions.contacts.ResolveUsernameRequest(channel.username)
            )
            peer = result.peer
            if not isinstance(peer, types.PeerChannel):
                return None
            for chat in result.chats:
                if getattr(chat, "id", None) == peer.channel_id:
                    return _as_channel(chat)
            return None
        if channel.channel_id is not None:
            # An id carries no access hash: a channel this account already knows (is a member
            # of) is found by id, any other only through a post forwarded from it.
            try:
                entity = await self._client.get_input_entity(types.PeerChannel(channel.channel_id))
            except ValueError:
                return await self._seen_in_forward(channel.channel_id)
            return types.Channel(
                id=channel.channel_id,
                title=channel.title,
                photo=types.ChatPhotoEmpty(),
                date=None,
                access_hash=getattr(entity, "access_hash", None),
                left=False,
            )
        return None

    async def _seen_in_forward(self, channel_id: int) -> Any:
        """The channel as a post forwarded from it shows it to this account (Telegram's
        "min" channel seen in a message). Each try is one channels.getChannels; a post
        deleted since, or in a channel this account is not in, is skipped. No such post kept:
        private (a t.me/c link's channel this account is not in); posts only in channels of
        another account: `SeenElsewhereError`; none that works: not found.
        """
        seen_in = await self._campaigns.forwarded_via(channel_id)
        if not seen_in:
            raise errors.ChannelPrivateError(request=None)
        elsewhere: list[str] = []
        for via_channel, via_message in seen_in:
            try:
                peer = await self._client.get_input_entity(types.PeerChannel(via_channel))
            except ValueError:  # not a channel of this account's
                via = await self._channels.by_id(via_channel)
                account = via.account if via is not None and via.state == "joined" else None
                if account is not None and account != self._session:
                    elsewhere.append(account)
                continue
            wanted = types.InputChannelFromMessage(peer, via_message, channel_id)
            try:
                found = await self._client(functions.channels.GetChannelsRequest([wanted]))
            except (errors.ChannelInvalidError, errors.MessageIdInvalidError):
                continue
            for chat in getattr(found, "chats", None) or ():
                if getattr(chat, "id", None) == channel_id:
                    log.info(
                        "channel id:%s found through post %s:%s",
                        channel_id,
                        via_channel,
                        via_message,
                    )
                    return _as_channel(chat)
        if elsewhere:
            raise SeenElsewhereError(elsewhere[0])
        raise NotFoundByIdError(channel_id)


def _as_channel(chat: Any) -> Any:
    if isinstance(chat, types.ChannelForbidden):
        raise errors.ChannelPrivateError(request=None)
    if isinstance(chat, types.Channel):
        return chat
    return None


async def channels_cap(client: Any, default: int = 500) -> int:
    """How many channels this account may join (help.getAppConfig), or `default`."""
    try:
        config = await client(functions.help.GetAppConfigRequest(hash=0))
    except errors.RPCError:
        return default
    values = getattr(getattr(config, "config", None), "value", None)
    if not isinstance(values, list):
        return default
    wanted = "channels_limit_default"
    for entry in values:
        if getattr(entry, "key", None) == wanted:
            number = getattr(entry.value, "value", None)
            if isinstance(number, int | float) and number > 0:
                return int(number)
    return default
