"""Every string a person reads from the bot, in one place.

Templates are Telegram HTML. Constants contain no user data; functions that take user data
escape it (`html.escape`) where the string is built, never at the call site.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.triage.surge import SurgeAlert

# --- alerts --------------------------------------------------------------------------------
PRIORITY_MARKERS = {"urgent": "🔴", "high": "🟠", "normal": "🟢", "low": "⚪"}
PRIORITY_NAMES = {"urgent": "URGENT", "high": "High", "normal": "Normal", "low": "Low"}
KIND_LABELS = {"new": "", "edit": "✏️ edited", "delete": "🗑 deleted"}
SUGGESTED_LABEL = "🧭 suggested"
BTN_RELEVANT = "👍 Relevant"
BTN_NOISE = "👎 Noise"
BTN_MUTE = "🔕 Mute channel"
BTN_UNMUTE = "🔔 Undo mute"
BTN_OPEN = "Open"
CHOSEN = "✅ "
ELLIPSIS = "…"
OPEN_POST = "Open post"
NO_TEXT = "<i>(no text)</i>"
NO_LONGER_MATCHES = "no longer matches any of your watches"
NOTICE_PREFIX = "ℹ️ "
EDIT_ONLY_LAYOUT = "Only whitespace or formatting changed; the words are the same."
EDIT_DIFF_LEGEND = "What changed: removed words struck through, added words in bold."

# --- access ------------------------------------------------------------------------------
REQUEST_SENT = (
    "👋 This is a private bot. Your request for access has been sent to the administrators; "
    "you will get a message here when it is decided."
)
ACCESS_APPROVED = "✅ Your access has been approved. Send /help to see what I can do."
ACCESS_DENIED = "Your request for access was declined."
ACCESS_REVOKED = "Your access to this bot has been revoked."
NOT_ALLOWED = "Not allowed."
BUTTON_EXPIRED = "This button is no longer valid."


def access_request(user_id: int, name: str, username: str | None) -> str:
    who = escape(name) or "(no name)"
    handle = f" @{escape(username)}" if username else ""
    return f"🙋 <b>Access request</b>\n{who}{handle}\nid <code>{user_id}</code>\nApprove or deny:"


def access_decided(user_id: int, name: str, decision: str, admin_name: str) -> str:
    return (
        f"Access request of {escape(name) or user_id} (<code>{user_id}</code>): "
        f"<b>{escape(decision)}</b> by {escape(admin_name)}."
    )


def analyst_blocked(user_id: int, name: str) -> str:
    return (
        f"⚠️ Analyst {name or user_id} ({user_id}) has blocked the bot. They are marked "
        "inactive; their alerts are kept and will be delivered when they send /start again."
    )


# --- analyst commands --------------------------------------------------------------------
START_ANALYST = (
    "👋 <b>Vigil</b> watches Telegram channels and alerts you when a post matches one of your "
    "watches.\nStart with <code>/watch QUERY</code>, e.g. <code>/watch мигрант*</code>. "
    "/help lists every command."
)
START_REACTIVATED = "Welcome back! Alerts kept while you were away are on their way."

HELP = """<b>Watches</b>
/watch QUERY — add a watch
/watches — list your watches (pause, delete, priority)
/unwatch ID — delete a watch
/test QUERY — what a query would have matched in the archive
/search QUERY — archived posts that match, newest first
/shared — team-wide watches kept by the admins: subscribe, unsubscribe
/route ID CHAT — send a watch's alerts to a team group you and I are in (/routes lists them)

<b>Query language</b>
<code>word</code> any inflection · <code>"a phrase"</code> · <code>=exact</code> · \
<code>prefix*</code> · <code>/regex/</code>
<code>a b</code> both · <code>a OR b</code> · <code>-a</code> / <code>NOT a</code> · \
<code>( … )</code> · <code>a NEAR/5 b</code>
<code>channel:@name</code> · <code>lang:ru</code>

<b>Alerts</b>
/channels — monitored channels
/mute TARGET [DURATION] — TARGET is @channel or w12 (watch 12); DURATION like 30m, 2h, 1d
/unmute TARGET
/quiet 22:00-07:00 — hold alerts at night (/quiet off)
/digest off|hourly|daily
/settings — time zone, instant-alert threshold, urgent in quiet hours, suggestions, learning
/stats — a chart of your alerts (last 14 days)
/export [7d] — your alerts as a CSV file (default: 30 days)

<b>Learning</b>
👍 / 👎 under an alert teach your model: alerts like those you marked move up or down \
(the reason says so), and confident noise waits for your digest. Nothing is dropped.
/learning — what it learned, alerts it moved, reset
/settings learning on|off
/suggest on|off — posts no watch caught, like those your team marked relevant"""

HELP_ADMIN = (
    "\n\n<b>Admin</b>\n/admin — channels, analysts, shared watches, system, audit log\n"
    "/addchannel REF — monitor a channel (@name, t.me link or invite link)"
)

UNKNOWN_COMMAND = "I don't know that command. /help lists what I can do."

USAGE_WATCH = (
    "Usage: <code>/watch QUERY</code>\nExample: <code>/watch мигрант* NEAR/5 депорт*</code>"
)
USAGE_TEST = "Usage: <code>/test QUERY</code>"
USAGE_SEARCH = "Usage: <code>/search QUERY</code> — archived posts that match, newest first"
USAGE_UNWATCH = "Usage: <code>/unwatch ID</code> (the number shown by /watches)"
USAGE_MUTE = (
    "Usage: <code>/mute TARGET [DURATION]</code>\nTARGET: <code>@channel</code> or "
    "<code>w12</code> (watch 12); DURATION: <code>30m</code>, <code>2h</code>, <code>1d</code> "
    "(none: until /unmute)"
)
USAGE_UNMUTE = "Usage: <code>/unmute TARGET</code> (<code>@channel</code> or <code>w12</code>)"
USAGE_QUIET = (
    "Usage: <code>/quiet HH:MM-HH:MM</code> (in your time zone) or <code>/quiet off</code>"
)
USAGE_DIGEST = "Usage: <code>/digest off|hourly|daily</code>"
USAGE_SETTINGS = (
    "Usage:\n<code>/settings tz Europe/Kyiv</code> — your time zone\n"
    "<code>/settings threshold urgent|high|normal|low</code> — alerts below it wait for the "
    "digest\n<code>/settings learning on|off</code> — let your 👍 / 👎 move alerts\n"
    "<code>/settings urgent on|off</code> — urgent alerts arrive during quiet hours\n"
    "<code>/settings suggest on|off</code> — posts no watch caught that your team's model "
    "finds relevant"
)
USAGE_ADDCHANNEL = (
    "Usage: <code>/addchannel REF</code> — <code>@username</code>, "
    "<code>https://t.me/name</code> or an invite link <code>https://t.me/+HASH</code>"
)


def error_line(message: str) -> str:
    return f"⚠️ {escape(message)}"


def query_error(query: str, message: str, position: int | None) -> str:
    text = f"⚠️ {escape(message)}"
    if position is not None and 0 <= position <= len(query):
        shown_from = max(0, position - 30)
        snippet = query[shown_from : position + 30]
        pointer = " " * (position - shown_from) + "^"
        text += f"\n<pre>{escape(snippet)}\n{pointer}</pre>"
    return text


def watch_added(watch_id: int, canonical: str, priority: str) -> str:
    return (
        f"✅ Watch <b>#{watch_id}</b> added: <code>{escape(canonical)}</code> "
        f"(priority {escape(priority)}).\nTry it first with /test; list with /watches."
    )


def watch_removed(watch_id: int) -> str:
    return f"🗑 Watch #{watch_id} deleted."


def watch_not_found(watch_id: int | str) -> str:
    return f"⚠️ You have no watch #{escape(str(watch_id))}."


NO_WATCHES = "You have no watches yet. Add one with <code>/watch QUERY</code>."


def watches_header(total: int, page: int, pages: int) -> str:
    return f"<b>Your watches</b> ({total}) — page {page + 1}/{pages}"


def watch_line(
    watch_id: int, canonical: str, priority: str, paused: bool, shared: str | None = None
) -> str:
    """`shared`: the label of the shared watch this one follows (e.g. 'S3 Corridor')."""
    state = " ⏸ paused" if paused else ""
    marker = PRIORITY_MARKERS.get(priority, "")
    link = f" 🔗 shared {escape(shared)}" if shared else ""
    return f"{marker} <b>#{watch_id}</b> <code>{escape(canonical)}</code>{link}{state}"


def choose_priority(watch_id: int) -> str:
    return f"Priority of watch #{watch_id}:"


def _paging(page: int, pages: int) -> str:
    return f" — page {page + 1}/{pages}" if pages > 1 else ""


def _scan_note(scanned: int, capped: bool) -> str:
    return f"\n(searched the newest {scanned} posts only)" if capped else ""


def test_result(
    canonical: str,
    days: int,
    scanned: int,
    matched: int,
    examples: list[str],
    *,
    page: int = 0,
    pages: int = 1,
    capped: bool = False,
) -> str:
    """The first line names the query in <code>: paging reads it back from there."""
    text = (
        f"🔎 <code>{escape(canonical)}</code>\nIn the archive (posts kept {days} days): "
        f"<b>{matched}</b> of {scanned} "
        f"archived posts match.{_scan_note(scanned, capped)}"
    )
    if examples:
        text += f"\n\n<b>Examples</b>{_paging(page, pages)}\n" + "\n\n".join(examples)
    return text


def search_result(
    canonical: str,
    days: int,
    scanned: int,
    matched: int,
    items: list[str],
    *,
    page: int = 0,
    pages: int = 1,
    capped: bool = False,
) -> str:
    """The first line names the query in <code>: paging reads it back from there."""
    head = f"🔎 <code>{escape(canonical)}</code>\n"
    if not matched:
        return (
            head + f"No archived post matches ({scanned} searched; posts are kept {days} days)."
            f"{_scan_note(scanned, capped)}"
        )
    return (
        head + f"<b>{matched}</b> archived posts match, newest first"
        f"{_paging(page, pages)}.{_scan_note(scanned, capped)}\n\n" + "\n\n".join(items)
    )


def test_example(
    label: str, link: str, snippet_html: str, when: str = "", deleted: bool = False
) -> str:
    """`snippet_html` is built and escaped by the caller."""
    extra = f" · {escape(when)}" if when else ""
    gone = " · 🗑 deleted" if deleted else ""
    return f'• <a href="{escape(link)}">{escape(label)}</a>{extra}{gone}\n{snippet_html}'


ARCHIVE_EXPIRED = "This result is too old to page; run the command again."
ARCHIVE_BUSY = "Your previous search is still running; try again once it has answered."
ARCHIVE_SEARCHING = "Searching the archive…"
SEARCH_NO_TRIAGE = (
    "⚠️ The archive cannot be searched right now: no triage worker is running. "
    "Ask an admin to start one (<code>vigil run</code> or <code>vigil run --role triage</code>)."
)
SEARCH_TIMEOUT = (
    "⚠️ The search did not answer in time (the triage workers are busy or stopped). "
    "Try again in a minute, or narrow the query."
)


def search_rate_limited(seconds: float) -> str:
    wait = max(1, round(seconds))
    return f"Too many searches in a row; try again in {wait} s."


NO_CHANNELS = "No channels are monitored yet."


def channels_list(lines: list[str], *, total: int = 0, page: int = 0, pages: int = 1) -> str:
    count = f" ({total})" if total else ""
    return f"<b>Monitored channels</b>{count}{page_of(page, pages)}\n" + "\n".join(lines)


def channel_line(label: str, username: str | None, state: str) -> str:
    handle = f" @{escape(username)}" if username else ""
    shown_state = "" if state == "joined" else f" — {escape(state)}"
    return f"• {escape(label)}{handle}{shown_state}"


def muted(target: str, until: str | None) -> str:
    when = f" until {escape(until)}" if until else " until you /unmute it"
    return f"🔕 {escape(target)} muted{when}."


def unmuted(target: str) -> str:
    return f"🔔 {escape(target)} unmuted."


def not_muted(target: str) -> str:
    return f"{escape(target)} was not muted."


QUIET_OFF = "Quiet hours off: alerts arrive at any time."


def quiet_set(start: str, end: str, tz: str) -> str:
    return (
        f"🌙 Quiet hours {escape(start)}–{escape(end)} ({escape(tz)}): alerts are held and "
        "arrive when they end."
    )


def digest_set(mode: str) -> str:
    if mode == "off":
        return "Digest off."
    when = "every hour, on the hour" if mode == "hourly" else "every day at 08:00 your time"
    return (
        f"Digest: <b>{escape(mode)}</b>, {when}. Alerts below your instant threshold are "
        "collected into it."
    )


def _on(flag: bool) -> str:
    return "on" if flag else "off"


def settings_view(
    tz: str,
    threshold: str,
    quiet: str | None,
    digest: str,
    *,
    urgent_quiet: bool = True,
    suggest: bool = False,
    learning: bool = True,
) -> str:
    urgent = "arrive at once" if urgent_quiet else "wait like the others"
    return (
        "<b>Your settings</b>\n"
        f"Time zone: <code>{escape(tz)}</code>\n"
        f"Instant alerts from priority: <b>{escape(threshold)}</b>\n"
        f"Quiet hours: {escape(quiet) if quiet else 'off'}\n"
        f"Urgent alerts in quiet hours: {urgent} (urgent {_on(urgent_quiet)})\n"
        f"Digest: {escape(digest)}\n"
        f"Learning from your 👍 / 👎: {_on(learning)} (/learning)\n"
        f"Suggestions: {_on(suggest)}\n\n" + USAGE_SETTINGS
    )


def urgent_set(on: bool) -> str:
    if on:
        return "🔴 Urgent alerts arrive at once, also during your quiet hours."
    return "Urgent alerts wait for the end of your quiet hours, like the others."


def tz_set(tz: str) -> str:
    return f"Time zone set to <code>{escape(tz)}</code>."


def threshold_set(threshold: str) -> str:
    return f"Instant alerts from priority <b>{escape(threshold)}</b> up."


FEEDBACK_THANKS = "Thanks, noted."
MUTE_DONE = "Channel muted. Undo with the button."
UNMUTE_DONE = "Channel unmuted."

# --- admin -------------------------------------------------------------------------------
ADMIN_MENU = "<b>Admin</b> — choose a section:"
ADMIN_CHANNELS = "<b>Channels</b>"
ADMIN_ANALYSTS = "<b>Analysts</b>"
ADMIN_PENDING = "<b>Pending requests</b>"
NO_PENDING = "No pending requests."
ADD_CHANNEL_PROMPT = (
    "Reply to this message with the channel: <code>@username</code>, a t.me link or an invite "
    "link."
)
BTN_BACK = "« Back"
BTN_CHANNELS = "📡 Channels"
BTN_ANALYSTS = "👥 Analysts"
BTN_SYSTEM = "⚙️ System"
BTN_AUDIT = "📜 Audit log"
BTN_ADD = "➕ Add channel"
BTN_PENDING = "🙋 Pending requests"
BTN_PAUSE = "⏸ Pause"
BTN_RESUME = "▶️ Resume"
BTN_REMOVE = "🗑 Remove"
BTN_APPROVE = "✅ Approve"
BTN_DENY = "❌ Deny"
BTN_PROMOTE = "⬆️ Make admin"
BTN_DEMOTE = "⬇️ Make analyst"
BTN_REVOKE = "🚫 Revoke"
BTN_DEAD = "☠️ Dead letters"
BTN_RETRY = "🔁 Retry"
BTN_PREV = "◀ Prev"
BTN_NEXT = "Next ▶"
BTN_PRIORITY = "Priority"
ADMIN_STALE = "That item no longer exists."


def channel_added(label: str, state: str) -> str:
    return f"📡 Channel {escape(label)} added (state: {escape(state)})."


def channel_card(
    label: str,
    ref: str,
    state: str,
    reason: str | None,
    weight: str,
    last_post: str | None,
) -> str:
    lines = [
        f"<b>{escape(label[:200])}</b>",  # a 10,000-character title leaves room for the rest
        f"ref: <code>{escape(ref)}</code>",
        f"state: {escape(state)}" + (f" ({escape(reason)})" if reason else ""),
        f"weight: {escape(weight)}",
        f"last post: {escape(last_post) if last_post else 'never'}",
    ]
    return "\n".join(lines)


def analyst_card(user_id: int, name: str, username: str | None, role: str, active: bool) -> str:
    handle = f" @{escape(username)}" if username else ""
    state = "" if active else " (inactive: blocked the bot)"
    return (
        f"<b>{escape(name) or user_id}</b>{handle}\nid <code>{user_id}</code>\nrole: {role}{state}"
    )


def system_view(stream_lines: list[str], health_lines: list[str], channel_lines: list[str]) -> str:
    """health_lines: plain text (roles, accounts, flood waits, silent channels), escaped here."""
    text = "<b>System</b>\n" + "\n".join(stream_lines)
    if health_lines:
        text += "\n\n" + "\n".join(escape(line) for line in health_lines)
    if channel_lines:
        text += "\n\n<b>Last post per channel</b>\n" + "\n".join(channel_lines)
    return text


def stream_line(
    name: str, length: int, pending: int, lag: int | None, consumers: int, dead: int
) -> str:
    lag_text = "?" if lag is None else str(lag)
    return (
        f"<code>{escape(name)}</code>: {length} entries, lag {lag_text}, pending {pending}, "
        f"{consumers} consumers, {dead} dead letters"
    )


def dead_line(entry_id: str, reason: str, at: str) -> str:
    return f"<code>{escape(entry_id)}</code> {escape(at)}: {escape(reason)}"


NO_DEAD = "No dead letters."


def audit_line(at: str, actor: int, action: str, target: str, detail: str) -> str:
    extra = f" — {escape(detail)}" if detail else ""
    return f"<code>{escape(at)}</code> {actor} <b>{escape(action)}</b> {escape(target)}{extra}"


NO_AUDIT = "The audit log is empty."
AUDIT_FIRST = "(down to the first entry)"


def page_of(page: int, pages: int) -> str:
    """' — page 2/5' for a list of several pages, '' for one."""
    return f" — page {page + 1}/{pages}" if pages > 1 else ""


def count_suffix(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# --- reports: /stats and /export (helper R) ------------------------------------------------
USAGE_EXPORT = (
    "Usage: <code>/export</code> (your alerts of the last 30 days as a CSV file) or "
    "<code>/export 7d</code> (any number of days up to 365)"
)
STATS_NONE = "📊 No alerts in the last 14 days, so there is nothing to chart yet."


def export_none(days: int) -> str:
    return f"📄 No alerts in the last {count_suffix(days, 'day')}, so there is nothing to export."


def export_caption(rows: int, days: int, total: int) -> str:
    text = f"📄 {count_suffix(rows, 'alert')} of the last {count_suffix(days, 'day')}."
    if rows < total:
        text += f" The newest {rows} of {total}: the rest would not fit in one file."
    return text


def stats_caption(
    days: int,
    total: int,
    by_priority: list[tuple[str, int]],
    top_watches: list[tuple[int, str, int]],
    relevant: int,
    noise: int,
) -> str:
    lines = [f"📊 <b>Last {days} days</b>: {count_suffix(total, 'alert')}"]
    lines.append(
        " · ".join(f"{PRIORITY_MARKERS.get(p, '')} {escape(p)} {n}" for p, n in by_priority)
    )
    if top_watches:
        lines.append("<b>Top watches</b>")
        for watch_id, query, n in top_watches:
            shown = query if len(query) <= 60 else query[:59] + ELLIPSIS
            code = f" <code>{escape(shown)}</code>" if shown else ""
            lines.append(f"#{watch_id}{code} — {n}")
    lines.append(f"👍 {relevant} · 👎 {noise}")
    return "\n".join(lines)


# --- shared watches ------------------------------------------------------------------------
BTN_SHARED = "🔗 Shared watches"
BTN_ADD_SHARED = "➕ Add shared watch"
BTN_CONFIRM_REMOVE = "🗑 Yes, remove"
BTN_SUBSCRIBE = "➕ Subscribe"
BTN_UNSUBSCRIBE = "✖️ Unsubscribe"
NO_SHARED_ADMIN = (
    "No shared watches yet. A shared watch is a team-wide query that analysts subscribe to "
    "with /shared."
)
NO_SHARED = (
    "There are no shared watches yet; the admins add them. Your own watches: "
    "<code>/watch QUERY</code>."
)
ADD_SHARED_PROMPT = (
    "Send the query of the shared watch, in the same language as /watch.\n"
    "To give it a name, write the name on the first line and the query on the second:\n"
    '<code>Corridor names\n/zangez[uy]r/ OR "Syunik corridor"</code>'
)
USAGE_SHARED_ADD = "Send the query again, or /cancel."
SHARED_ADD_CANCELLED = "No shared watch added."
SHARED_GONE = "That shared watch no longer exists."  # callback answers: plain text
SHARED_PRIORITY_FIXED = "The priority of a shared watch is set by the admins."
SHARED_SUBSCRIBED = "Subscribed"
SHARED_UNSUBSCRIBED = "Unsubscribed"
SHARED_ALREADY = "You are already subscribed."
SHARED_NOT_SUBSCRIBED = "You are not subscribed to it."
SHARED_BROKEN = "This shared watch's query no longer works; please tell the admins."


def _named(name: str) -> str:
    """A shared watch's name after its SN in HTML (escaped), or nothing."""
    return f" {escape(name)}" if name else ""


def shared_label(shared_id: int, name: str) -> str:
    """Plain text (escaped where it is put into HTML)."""
    return f"S{shared_id} {name}" if name else f"S{shared_id}"


def admin_shared_header(total: int, page: int, pages: int) -> str:
    paging = f" — page {page + 1}/{pages}" if pages > 1 else ""
    return f"<b>Shared watches</b> ({total}){paging}"


def admin_shared_line(
    shared_id: int, name: str, canonical: str, priority: str, subscribers: int
) -> str:
    marker = PRIORITY_MARKERS.get(priority, "")
    title = _named(name)
    return (
        f"{marker} <b>S{shared_id}</b>{title} <code>{escape(canonical)}</code> — "
        f"{count_suffix(subscribers, 'subscriber')}"
    )


def shared_card(
    shared_id: int, name: str, canonical: str, priority: str, subscribers: int, created: str
) -> str:
    lines = [f"🔗 <b>Shared watch S{shared_id}</b>"]
    if name:
        lines.append(f"name: {escape(name)}")
    lines += [
        f"query: <code>{escape(canonical)}</code>",
        f"priority: {PRIORITY_MARKERS.get(priority, '')} {escape(priority)}",
        f"subscribers: {subscribers}",
        f"added: {escape(created)}",
    ]
    return "\n".join(lines)


def shared_added(shared_id: int, name: str, canonical: str, priority: str) -> str:
    title = _named(name)
    return (
        f"🔗 Shared watch <b>S{shared_id}</b>{title} added: <code>{escape(canonical)}</code> "
        f"(priority {escape(priority)}). Analysts subscribe with /shared."
    )


def shared_remove_confirm(shared_id: int, name: str, canonical: str, subscribers: int) -> str:
    title = _named(name)
    return (
        f"Remove shared watch <b>S{shared_id}</b>{title} <code>{escape(canonical)}</code>? "
        f"Its {count_suffix(subscribers, 'subscriber')} will be told and their linked watches "
        "deleted."
    )


def shared_removed(shared_id: int, subscribers: int) -> str:
    """Callback answer (plain text)."""
    return f"S{shared_id} removed; {count_suffix(subscribers, 'subscriber')} told."


def shared_removed_notice(shared_id: int, name: str, canonical: str, watch_id: int) -> str:
    """To each subscriber of a removed shared watch."""
    title = _named(name)
    return (
        f"🗑 The admins removed the shared watch <b>S{shared_id}</b>{title} "
        f"<code>{escape(canonical)}</code>. Your watch #{watch_id} that followed it is deleted; "
        "/shared lists the others."
    )


def shared_header(total: int, page: int, pages: int) -> str:
    paging = f" — page {page + 1}/{pages}" if pages > 1 else ""
    return (
        f"<b>Shared watches</b> ({total}){paging}\nTeam-wide watches kept by the admins; a "
        "subscription becomes one of your watches (/watches), with the shared query and "
        "priority."
    )


def shared_line(
    shared_id: int, name: str, canonical: str, priority: str, watch_id: int | None
) -> str:
    marker = PRIORITY_MARKERS.get(priority, "")
    title = _named(name)
    mine = f" ✅ subscribed (your watch #{watch_id})" if watch_id is not None else ""
    return f"{marker} <b>S{shared_id}</b>{title} <code>{escape(canonical)}</code>{mine}"


def shared_subscribed(shared_id: int, name: str, watch_id: int) -> str:
    return (
        f"✅ Subscribed to {escape(shared_label(shared_id, name))}: its alerts come as your "
        f"watch #{watch_id} (/watches; /unwatch {watch_id} or the button to unsubscribe)."
    )


def shared_already(shared_id: int, watch_id: int) -> str:
    return f"You are already subscribed to S{shared_id} (your watch #{watch_id})."


def shared_unsubscribed(shared_id: int, watch_id: int) -> str:
    return f"✖️ Unsubscribed from S{shared_id}; your watch #{watch_id} is deleted."


def shared_watch_removed(watch_id: int, shared_id: int) -> str:
    return f"🗑 Watch #{watch_id} deleted: you are unsubscribed from shared watch S{shared_id}."


# --- learned relevance (/learning, /suggest, /settings learning) ---------------------------
FEEDBACK_NOT_YOURS = "This alert was not sent to you; your verdict was not recorded."
USAGE_LEARNING = (
    "Usage: <code>/learning</code> — what your model learned; "
    "<code>/settings learning on|off</code> — use it or not"
)
USAGE_SUGGEST = "Usage: <code>/suggest on|off</code>"
LEARNING_RESET_ASK = (
    "Forget every 👍 / 👎 you gave? Your model starts again from nothing. This cannot be undone."
)
LEARNING_RESET_DONE = "🧹 Your verdicts are forgotten; your model is reset."
LEARNING_RESET_CANCELLED = "Nothing was reset."
BTN_LEARNING_RESET = "🧹 Reset"
BTN_LEARNING_CONFIRM = "Yes, forget them"
BTN_CANCEL = "Cancel"


def _words(words: tuple[str, ...]) -> str:
    return ", ".join(f"<i>{escape(w)}</i>" for w in words) if words else "—"


def learning_view(
    *,
    relevant: int,
    noise: int,
    cold_start: int,
    up_words: tuple[str, ...],
    down_words: tuple[str, ...],
    moved_7d: int,
    learning: bool,
    trained: bool,
) -> str:
    """/learning: verdicts, the strongest words each way, alerts moved in 7 days."""
    state = "on" if learning else "off (<code>/settings learning on</code>)"
    lines = [
        "<b>What I learned from your 👍 / 👎</b>",
        f"Learning: {state}",
        f"Verdicts: {relevant} relevant, {noise} noise",
    ]
    if not trained:
        lines.append(
            "No model yet: press 👍 Relevant / 👎 Noise under your alerts. Once you have given "
            "a few of each kind, alerts like the ones you marked move up or down."
        )
        return "\n".join(lines)
    short = max(cold_start - relevant, 0), max(cold_start - noise, 0)
    if any(short):
        need = []
        if short[0]:
            need.append(f"{short[0]} more 👍")
        if short[1]:
            need.append(f"{short[1]} more 👎")
        lines.append(f"No effect yet: it needs {cold_start} of each kind ({' and '.join(need)}).")
    else:
        lines.append(f"Words that raise an alert: {_words(up_words)}")
        lines.append(f"Words that lower it: {_words(down_words)}")
    lines.append(f"Alerts it moved in the last 7 days: {moved_7d}")
    return "\n".join(lines)


def suggest_set(on: bool, per_day: int) -> str:
    if on:
        return (
            f"🧭 Suggestions on: up to {per_day} a day of posts no watch caught that look like "
            "what your team marked relevant. 👍 / 👎 on them train it."
        )
    return "Suggestions off."


def learning_set(on: bool) -> str:
    if on:
        return "🧠 Learning on: your 👍 / 👎 move your alerts' priority (see /learning)."
    return "Learning off: your verdicts are kept, but no alert is moved by them."


def learning_system_lines(
    models: int, moved_today: int, suggested_today: int, desk: dict[str, object], at: str
) -> list[str]:
    """The System view's learning lines (plain text: the view escapes them)."""
    lines = [f"Learning: {models} analysts' models in use; {moved_today} alerts moved today"]
    if desk:
        threshold = desk.get("threshold")
        lines.append(
            f"Desk model: trained {at} on {desk.get('relevant', 0)} relevant, "
            f"{desk.get('noise', 0)} noise and {desk.get('unmatched', 0)} unmatched posts; "
            f"threshold {threshold if threshold is not None else 'none (no suggestions)'}; "
            f"{suggested_today} suggestions today"
        )
    else:
        lines.append("Desk model: not trained yet (needs 👍 from some analyst)")
    return lines


SOMETHING_WENT_WRONG = "Sorry, something went wrong on my side; it is logged. Please try again."


def surge_notice(
    alert: SurgeAlert, label: str, query: str, channel_name: Callable[[int], str]
) -> str:
    """📈 Surge · <watch>: N posts in M channels in the last H h, R× usual; top channels, the
    words new against the usual (HTML, escaped here; short enough for one message)."""
    ratio = f"{alert.ratio:.0f}" if alert.ratio >= 10 else f"{alert.ratio:.1f}"
    lines = [
        f"📈 <b>Surge</b> · watch {escape(label)} <code>{escape(query[:200])}</code>",
        f"{alert.posts} posts in {alert.channels} channels in the last {alert.window_hours} h, "
        f"{ratio}× usual",
    ]
    if alert.top_channels:
        top = ", ".join(f"{escape(channel_name(c)[:60])} ({n})" for c, n in alert.top_channels[:5])
        lines.append(f"Top channels: {top}")
    if alert.new_words:
        lines.append(
            "New words: " + ", ".join(f"<i>{escape(w[:40])}</i>" for w in alert.new_words[:8])
        )
    return "\n".join(lines)


# --- campaigns: surge examples and settings, a story's spread, who amplifies whom ----------
BTN_SURGE_EXAMPLES = "🔎 Examples"
BTN_SPREAD = "🕸 Spread"
BTN_SURGES_ON = "📈 Surge alerts: turn on"
BTN_SURGES_OFF = "📈 Surge alerts: turn off"
BTN_AMPLIFICATION = "🔁 Who amplifies whom"
BTN_ADD_CANDIDATE = "➕ "  # + the channel's name (a plain button label, cut to 40)
SURGE_GONE = "This surge is too old to show; its record has expired."
SURGE_NO_POSTS = "The posts of this surge have left the archive."
SPREAD_NONE = "No copies of this story are recorded (or they have expired)."
CANDIDATE_UNREACHABLE = (
    "This channel is known only by its id, and no post forwarded from it is kept to find it "
    "by: add it by its @username or a link (/addchannel)."
)


def candidate_added(label: str, state: str) -> str:
    """An amplification candidate added by id: how the watcher will find it."""
    return (
        f"📡 Channel {escape(label)} added (state: {escape(state)}). The watcher finds it "
        "through a post a monitored channel forwarded from it; /admin → 📡 Channels shows how "
        "it went."
    )


CHART_MISSING = "(the chart could not be drawn)"


def surge_button(watch_id: int) -> str:
    return f"📈 #{watch_id}"


def surge_setting(watch_id: int, query: str, off: bool) -> str:
    state = "<b>off</b>" if off else "<b>on</b>"
    return (
        f"📈 Surge alerts for watch #{watch_id} <code>{escape(query[:200])}</code>: {state}.\n"
        "A surge alert tells you when this watch's posts run well above their usual level "
        "across several channels (at most one every few hours)."
    )


def surges_turned(watch_id: int, on: bool) -> str:
    return f"Surge alerts for #{watch_id}: {'on' if on else 'off'}."


def surge_examples(label: str, alert: SurgeAlert, lines: list[str], page: int, pages: int) -> str:
    """The posts of one surge, one page (the lines are built by `surge_example_line`)."""
    head = (
        f"🔎 <b>Surge</b> · watch {escape(label)}: {alert.posts} posts in "
        f"{alert.channels} channels (page {page + 1}/{max(pages, 1)})"
    )
    return "\n\n".join([head, *lines])


def surge_example_line(when: str, channel: str, link: str, text: str) -> str:
    snippet = " ".join(text.split())
    snippet = snippet if len(snippet) <= 300 else snippet[:299] + ELLIPSIS
    return (
        f'{escape(when)} · <a href="{escape(link)}">{escape(channel[:60])}</a>\n'
        f"{escape(snippet) or NO_TEXT}"
    )


def _minutes(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def spread_view(
    first: str,
    first_when: str,
    channels: int,
    span_s: float,
    steps: list[tuple[str, float, str]],
    reached: list[tuple[int, float]],
    unmonitored: list[tuple[str, int]],
) -> str:
    """A story's spread: who was first, who amplified and how fast. `steps` are (channel,
    seconds after the first, how: 'forward of X' / 'copy'); `unmonitored` (name, forwards)."""
    lines = [
        f"🕸 <b>Spread</b>: {count_suffix(channels, 'channel')} in {_minutes(span_s)}",
        f"First: {escape(first[:80])} at {escape(first_when)}",
    ]
    if reached:
        lines.append(
            "Reached " + ", ".join(f"{n} channels after {_minutes(t)}" for n, t in reached)
        )
    if steps:
        lines.append("<b>Amplified by</b>")
        for i, (channel, delay, how) in enumerate(steps, 1):
            lines.append(f"{i}. {escape(channel[:80])} +{_minutes(delay)} · {escape(how[:100])}")
    if unmonitored:
        lines.append("<b>Forwarded from unmonitored channels</b>")
        lines += [f"• {escape(name[:80])} ({n})" for name, n in unmonitored]
    return "\n".join(lines)


def amplification_view(
    days: int,
    pairs: list[tuple[str, str, int]],
    influential: list[tuple[str, float]],
    candidates: list[tuple[str, int, int]],
) -> str:
    """Who amplifies whom: (source, forwarded by, forwards) pairs, the most influential
    channels, and unmonitored candidates (name, forwards, forwarded by)."""
    lines = [f"🔁 <b>Who amplifies whom</b> · forwards over the last {days} days"]
    if not pairs:
        lines.append("No forwards between channels are recorded yet.")
        return "\n".join(lines)
    lines.append("<b>Pairs</b> (source → forwarded by)")
    lines += [
        f"{i}. {escape(s[:60])} → {escape(t[:60])}: {n}" for i, (s, t, n) in enumerate(pairs, 1)
    ]
    if influential:
        lines.append("<b>Most amplified</b>: " + ", ".join(escape(c[:60]) for c, _ in influential))
    if candidates:
        lines.append("<b>Not monitored, forwarded often</b> (add with the buttons)")
        lines += [
            f"• {escape(name[:60])}: {n} forwards by {count_suffix(by, 'channel')}"
            for name, n, by in candidates
        ]
    return "\n".join(lines)


def trends_lines(trends: list[tuple[str, list[int]]]) -> str:
    """/stats: each watch's matching posts over the days, the last 7 against the 7 before."""
    if not trends:
        return ""
    lines = ["<b>Watch trends</b> (matching posts, last 7 days vs the 7 before)"]
    for label, daily in trends:
        recent, before = sum(daily[-7:]), sum(daily[-14:-7])
        arrow = "↗" if recent > before else "↘" if recent < before else "→"
        lines.append(f"{escape(label[:70])}: {recent} {arrow} (was {before})")
    return "\n".join(lines)


# An alert whose post left the archive before it was delivered (bot/storage/outbox.py): it is
# still sent, with the post's link, date and channel, and this in place of the text.
ALERT_POST_GONE = (
    "⌛ The post's text is no longer in the archive (it was kept past its window before this "
    "alert could be delivered): open the link to read it."
)


# --- desks (groups and channels) -------------------------------------------------------------
DESK_WATCH = "Desk watch"
BTN_ROUTE_SHARED = "📤 Route to a desk"
NO_DESKS = (
    "I am in no group or channel yet. Add me to one (in a channel, as an administrator), "
    "then come back here."
)


def desk_choice(shared_id: int) -> str:
    return f"Route S{shared_id} to which group or channel? (Only chats I am in are listed.)"


DESK_NOT_MEMBER = (
    "I am not in that chat. Add me to the group or channel first (in a channel, as an "
    "administrator who can post), then route the watch."
)
ROUTE_USAGE = (
    "Route a watch's alerts to a team group or channel:\n"
    "<code>/route S3 CHAT</code> (admins: a shared watch, to a group or channel)\n"
    "<code>/route 12 CHAT</code> (your own watch #12, to a group you are in)\n"
    "CHAT is the chat's id (like -1001234567890) or @username; sent in the group itself, "
    "leave it out. /routes lists routes; <code>/unroute CHAT WATCH</code> removes one."
)
ROUTE_ADMIN_ONLY = "Only admins route shared watches."
ROUTE_NOT_YOURS = "You have no watch #{watch_id}. /watches lists yours."
ROUTE_CHANNEL_ADMIN_ONLY = "Only admins route watches to channels; route yours to a group."
ROUTE_NOT_A_MEMBER = "You are not a member of that group: route your watches to your own groups."
ROUTE_PRIVATE = "That is a private chat; desks are groups and channels."
NO_ROUTES = "No routes yet. /route sends a watch's alerts to a team group or channel."
UNROUTE_NONE = "There is no such route. /routes lists them."


def desk_label(title: str, chat_id: int) -> str:
    return escape(title or str(chat_id))


def routed(source: str, title: str, chat_id: int) -> str:
    return (
        f"✅ {escape(source)} now goes to <b>{desk_label(title, chat_id)}</b> "
        f"(<code>{chat_id}</code>). Alerts are posted there for the team; feedback buttons "
        "count for whoever presses them."
    )


def route_refused(reason: str) -> str:
    return f"Not routed: {escape(reason)}"


def unrouted(source: str, title: str, chat_id: int) -> str:
    return f"🗑 {escape(source)} no longer goes to <b>{desk_label(title, chat_id)}</b>."


def route_line(
    chat_id: int, title: str, watch_id: int, source: str, active: bool, owner: str
) -> str:
    state = "" if active else " · ⏸ paused (I was removed from the chat)"
    return (
        f"• {escape(source)} → <b>{desk_label(title, chat_id)}</b> <code>{chat_id}</code>"
        f" · by {escape(owner)} · <code>/unroute {chat_id} {watch_id}</code>{state}"
    )


def routes_list(lines: list[str]) -> str:
    return f"Routes ({len(lines)}):\n" + "\n".join(lines)


def desk_paused(title: str, sources: list[str]) -> str:
    names = ", ".join(escape(s) for s in sources)
    return (
        f"⏸ I was removed from <b>{escape(title)}</b>, so its routes are paused: {names}. "
        "Add me back to resume them, or /routes to remove them."
    )


# --- desks: routes held for their owners, a routed shared watch removed --------------------
ROUTE_HELD_STATE = {
    "left": " · ⏸ paused (its owner left the group)",
    "revoked": " · ⏸ paused (its owner's access was revoked)",
}


def held_state(held: str) -> str:
    """The /routes line's ending for a route held for its owner ("" if it is not)."""
    return ROUTE_HELD_STATE.get(held, " · ⏸ paused") if held else ""


def route_held(title: str, sources: list[str], why: str) -> str:
    """To the owner of routes paused because of them (they left the group, or lost access)."""
    names = ", ".join(escape(s) for s in sources)
    if why == "left":
        return (
            f"⏸ You are no longer a member of <b>{escape(title)}</b>, so your watches' routes "
            f"there are paused: {names}. They resume if you join again; /routes lists them."
        )
    return (
        f"⏸ Your access was revoked, so your routes to <b>{escape(title)}</b> are paused: {names}."
    )


def desk_shared_removed(shared_id: int, name: str, title: str, chat_id: int) -> str:
    """To whoever routed a shared watch to a desk, when the shared watch is removed."""
    label = _named(name)
    return (
        f"🗑 The admins removed the shared watch <b>S{shared_id}</b>{label}, so it no longer "
        f"goes to <b>{desk_label(title, chat_id)}</b> (<code>{chat_id}</code>)."
    )
