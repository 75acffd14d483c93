"""Every Redis key Vigil uses, in one place.

Each key carries one hash tag (`{...}`) naming the entity it belongs to, so that a Redis
Cluster keeps an entity's keys in one slot. Keys that a Lua script touches together share a
tag: the posts stream and its idempotency hashes are all `{posts}`, the alerts stream and the
per-post alert ledger are all `{alerts}`.
"""

from __future__ import annotations

PREFIX = "vigil"

# --- streams -------------------------------------------------------------------------------
POSTS_STREAM = f"{PREFIX}:{{posts}}:stream"
POSTS_DEAD = f"{PREFIX}:{{posts}}:dead"
TRIAGE_GROUP = "triage"

ALERTS_STREAM = f"{PREFIX}:{{alerts}}:stream"
ALERTS_DEAD = f"{PREFIX}:{{alerts}}:dead"
DELIVERY_GROUP = "delivery"

# Analysts' verdicts, mutes, resets and learning on/off, for the learner (bot/learner.py).
FEEDBACK_STREAM = f"{PREFIX}:{{learn}}:stream"
FEEDBACK_DEAD = f"{PREFIX}:{{learn}}:dead"
LEARN_GROUP = "learners"

# /test and /search asked of the triage role (bot/storage/requests.py, bot/search.py).
SEARCH_STREAM = f"{PREFIX}:{{search}}:stream"
SEARCH_DEAD = f"{PREFIX}:{{search}}:dead"
SEARCH_GROUP = "searchers"
SEARCH_WORKERS = f"{PREFIX}:{{search}}:workers"  # sorted set: search consumer -> last beat


def search_reply(request_id: str) -> str:
    """List: the one reply to a search request (expires)."""
    return f"{PREFIX}:{{search}}:reply:{request_id}"


def search_busy(owner_id: int) -> str:
    """An analyst's search in flight (a token, expiring with the wait)."""
    return f"{PREFIX}:{{search:{owner_id}}}:busy"


def search_rate(owner_id: int) -> str:
    """An analyst's searches in the current window (a counter, expiring with it)."""
    return f"{PREFIX}:{{search:{owner_id}}}:rate"


# (stream, group, dead-letter stream) for `vigil status` and the admin System view.
STREAMS: tuple[tuple[str, str, str], ...] = (
    (POSTS_STREAM, TRIAGE_GROUP, POSTS_DEAD),
    (ALERTS_STREAM, DELIVERY_GROUP, ALERTS_DEAD),
    (FEEDBACK_STREAM, LEARN_GROUP, FEEDBACK_DEAD),
    (SEARCH_STREAM, SEARCH_GROUP, SEARCH_DEAD),
)


LEGACY_SEEN_DROPPED = f"{PREFIX}:{{posts}}:legacy_seen_dropped"  # drop_legacy_seen ran


def post_seen(channel_id: int) -> str:
    """Hash message id -> highest version enqueued (ingest/watcher idempotency)."""
    return f"{PREFIX}:{{posts}}:seen:{channel_id}"


def alerts_made(channel_id: int, message_id: int) -> str:
    """Hash analyst id -> version alerted, so a re-triaged post yields no second alert."""
    return f"{PREFIX}:{{alerts}}:made:{channel_id}:{message_id}"


def alert_sent(analyst_id: int, channel_id: int, message_id: int) -> str:
    """Delivery ledger: set before sending, so a restart never sends one alert twice."""
    return f"{PREFIX}:{{alerts}}:sent:{analyst_id}:{channel_id}:{message_id}"


# --- archive (posts kept for /test, digests, deleted-post reports) --------------------------
def archive_post(channel_id: int, message_id: int) -> str:
    return f"{PREFIX}:{{archive:{channel_id}}}:post:{message_id}"


def archive_index(channel_id: int) -> str:
    """Sorted set message id -> post date (unix), for time-ranged scans of one channel."""
    return f"{PREFIX}:{{archive:{channel_id}}}:index"


def archive_arrivals(channel_id: int) -> str:
    """Sorted set message id -> when it was archived (unix): the window counts from this."""
    return f"{PREFIX}:{{archive:{channel_id}}}:arrived"


ARCHIVE_CHANNELS = f"{PREFIX}:{{archive}}:channels"

# --- watches -------------------------------------------------------------------------------
WATCH_SEQ = f"{PREFIX}:{{watches}}:seq"
WATCHES_ALL = f"{PREFIX}:{{watches}}:all"
WATCH_CHANGES = f"{PREFIX}:{{watches}}:changes"  # stream: index followers re-read one watch


def watch(watch_id: int) -> str:
    return f"{PREFIX}:{{watch:{watch_id}}}"


def watches_of(owner_id: int) -> str:
    return f"{PREFIX}:{{user:{owner_id}}}:watches"


# --- shared watches (team-wide; an analyst subscribes by getting a linked watch) -----------
SHARED_SEQ = f"{PREFIX}:{{shared}}:seq"
SHARED_ALL = f"{PREFIX}:{{shared}}:all"


def shared_watch(shared_id: int) -> str:
    """Hash: id, name, query, canonical, priority, created_by, created_at."""
    return f"{PREFIX}:{{shared:{shared_id}}}"


def shared_subscribers(shared_id: int) -> str:
    """Hash analyst id -> their linked watch id ('0' while the watch is being made). Same tag
    as the record, so a Lua script can check the record and subscribe in one step."""
    return f"{PREFIX}:{{shared:{shared_id}}}:subscribers"


# --- desks (groups and channels the bot is in, and the watches routed to them) ----------
DESKS_ALL = f"{PREFIX}:{{desks}}:all"  # set of desk chat ids


def desk(chat_id: int) -> str:
    """Hash: title, kind (group | supergroup | channel), state (active | removed), added_by,
    updated_at."""
    return f"{PREFIX}:{{desk:{chat_id}}}"


def desk_routes(chat_id: int) -> str:
    """Hash the desk's watch id -> JSON {source ('S3' | '#12'), owner, at}."""
    return f"{PREFIX}:{{desk:{chat_id}}}:routes"


def desk_owned(owner_id: int) -> str:
    """Set '<chat>:<desk watch id>' of the routes a person made."""
    return f"{PREFIX}:{{user:{owner_id}}}:desk_routes"


# --- people --------------------------------------------------------------------------------
USERS_ALL = f"{PREFIX}:{{users}}:all"
ACCESS_REQUESTS = f"{PREFIX}:{{users}}:requests"


def user(user_id: int) -> str:
    return f"{PREFIX}:{{user:{user_id}}}"


def user_mutes(user_id: int) -> str:
    """Hash 'channel:<id>' / 'watch:<id>' -> unix time the mute ends (0 = until unmuted)."""
    return f"{PREFIX}:{{user:{user_id}}}:mutes"


def user_held(user_id: int) -> str:
    """List of alert payloads parked during quiet hours, for a digest or after a block."""
    return f"{PREFIX}:{{user:{user_id}}}:held"


def feedback(user_id: int) -> str:
    """Hash '<channel>:<msg>:<watch>' -> 'relevant' | 'noise'."""
    return f"{PREFIX}:{{user:{user_id}}}:feedback"


def learn_examples(user_id: int) -> str:
    """Hash '<channel>:<msg>' -> JSON example (verdict, watch, language, the post) the
    analyst's model is trained from; capped by the learner."""
    return f"{PREFIX}:{{user:{user_id}}}:examples"


# --- learned relevance: the models every triage worker scores with ------------------------
MODELS = f"{PREFIX}:{{learn}}:models"  # hash analyst id -> base64 RelevanceClassifier
MODELS_META = f"{PREFIX}:{{learn}}:meta"  # hash analyst id -> JSON summary for /learning
MODELS_VERSION = f"{PREFIX}:{{learn}}:version"  # counter: bumped on every model change
DESK_MODEL = f"{PREFIX}:{{learn}}:desk"  # hash 'model' (base64 DeskModel), 'meta' (JSON)
DESK_LOCK = f"{PREFIX}:{{learn}}:desk_lock"  # one learner retrains the desk model at a time


def learn_moved(day: str) -> str:
    """Hash analyst id -> alerts the learned model moved on a UTC day (YYYYMMDD)."""
    return f"{PREFIX}:{{learn}}:moved:{day}"


def suggestions_of(day: str) -> str:
    """Hash analyst id -> suggestions emitted on a UTC day (the triage worker's cap)."""
    return f"{PREFIX}:{{learn}}:suggested:{day}"


def user_alerts(user_id: int) -> str:
    """Stream of alerts delivered to this analyst (for /export and /stats)."""
    return f"{PREFIX}:{{user:{user_id}}}:alerts"


# --- channels ------------------------------------------------------------------------------
CHANNELS_ALL = f"{PREFIX}:{{channels}}:all"
CHANNEL_BY_REF = f"{PREFIX}:{{channels}}:by_ref"  # hash '@username' / invite -> channel key


def channel(channel_ref: str | int) -> str:
    return f"{PREFIX}:{{channel:{channel_ref}}}"


def channel_checkpoint(channel_id: int) -> str:
    """Highest message id known to be on the posts stream (reconciler)."""
    return f"{PREFIX}:{{channel:{channel_id}}}:checkpoint"


# --- rate limits, locks, health, audit ------------------------------------------------------
RATE_GLOBAL = f"{PREFIX}:{{rate}}:global"


def rate_chat(chat_id: int) -> str:
    # Same tag as RATE_GLOBAL: the limiter's Lua script takes both in one call.
    return f"{PREFIX}:{{rate}}:chat:{chat_id}"


def session_lock(session_name: str) -> str:
    return f"{PREFIX}:{{session:{session_name}}}:lock"


HEALTH_ROLES = f"{PREFIX}:{{health}}:roles"  # hash '<role>:<instance>' -> last beat (unix)
FLOOD_WAITS = f"{PREFIX}:{{health}}:flood"  # hash session -> until (unix)
AUDIT_LOG = f"{PREFIX}:{{audit}}:log"  # stream of admin actions and watch changes


# --- watcher (helper W) ----------------------------------------------------------------------
def joiner_state(session_name: str) -> str:
    """Hash: last_at (unix), day (YYYY-MM-DD UTC), count: the join pace of one account."""
    return f"{PREFIX}:{{session:{session_name}}}:joiner"


WATCHER_ACCOUNTS = f"{PREFIX}:{{health}}:accounts"  # hash session -> JSON state for status
HANDLER_ERRORS = f"{PREFIX}:{{health}}:handler_errors"  # hash handler -> errors it raised
WATCHER_STATS = f"{PREFIX}:{{health}}:watcher"  # hash counter -> int (errors, posts, ...)


def notice_sent(subject: str) -> str:
    """SET NX EX: one admin notice per subject per period (silent channel, disconnect)."""
    return f"{PREFIX}:{{health}}:notice:{subject}"


# --- stories (lead): near-duplicate posts across channels join the first alert -------------
def story(fingerprint: str) -> str:
    """String 'channel_id:message_id' of the first post seen with this fingerprint."""
    return f"{PREFIX}:{{alerts}}:story:{fingerprint}"


def story_also(channel_id: int, message_id: int) -> str:
    """Set of links of later copies of this (first) post in other channels."""
    return f"{PREFIX}:{{alerts}}:also:{channel_id}:{message_id}"


# --- delivery: alerts held for quiet hours / a blocked analyst (appended by the bot) --------
HELD_DUE = f"{PREFIX}:{{users}}:held_due"  # zset analyst id -> unix time their held alerts go out


# --- campaigns (helper C): surge counts, a story's spread, forward edges -------------------
# Every surge key shares the tag {surge}: the triage worker writes a whole batch's counts in
# one script call, which Redis Cluster allows only within one slot (as {alerts} holds stories).
SURGE_EPOCH = f"{PREFIX}:{{surge}}:epoch"  # unix time surge counting began (SET NX, kept)


def surge_hours(watch_id: int, day: int) -> str:
    """Hash hour of day (0-23, UTC) -> matching posts, one per watch per day (days since the
    epoch); expires after the baseline's eight weeks."""
    return f"{PREFIX}:{{surge}}:hours:{watch_id}:{day}"


def surge_channels(watch_id: int, hour: int) -> str:
    """Hash channel id -> matching posts in one hour bucket (hours since the epoch); kept only
    while the window needs it."""
    return f"{PREFIX}:{{surge}}:channels:{watch_id}:{hour}"


def surge_recent(watch_id: int, hour: int) -> str:
    """List of 'channel:message' refs of one hour's matching posts (capped): the window's
    posts, whose archived words are compared with the baseline's at alert time."""
    return f"{PREFIX}:{{surge}}:recent:{watch_id}:{hour}"


def surge_sample(watch_id: int, day: int) -> str:
    """List of 'channel:message' refs sampled from one day's matching posts (capped): the
    baseline's side of new words."""
    return f"{PREFIX}:{{surge}}:sample:{watch_id}:{day}"


def surge_cooldown(watch_id: int) -> str:
    """The unix time the watch's surge cooldown ends (set by a script, expiring then): one
    surge alert per watch per cooldown."""
    return f"{PREFIX}:{{surge}}:cooldown:{watch_id}"


def surge_event(watch_id: int, end_hour: int) -> str:
    """JSON of one surge alert and the refs of its window's posts (the Examples button),
    expiring a week after it."""
    return f"{PREFIX}:{{surge}}:event:{watch_id}:{end_hour}"


def surge_png(watch_id: int, end_hour: int) -> str:
    """The surge alert's chart (PNG, base64), drawn once for all its recipients; expires in
    two days (the notice is sent without it after that)."""
    return f"{PREFIX}:{{surge}}:png:{watch_id}:{end_hour}"


# Sorted set of the surges decided but not yet told, 'watch:end hour' scored by the unix time
# of the decision: added with the surge's record, removed by the script that appends its
# notices (so each is told once, by one worker, even after a crash between the two).
SURGE_UNSENT = f"{PREFIX}:{{surge}}:unsent"

# Set of watch ids whose analyst turned surge alerts off (/watches); a watch leaves it when
# they turn them on again; deleted watches are pruned whenever anyone switches one.
SURGE_OFF = f"{PREFIX}:{{surge}}:off"


def story_spread(channel_id: int, message_id: int) -> str:
    """Sorted set of a story's posts (compact JSON) by time, keyed by its first post."""
    return f"{PREFIX}:{{spread:{channel_id}:{message_id}}}:posts"


def forward_edges(day: int) -> str:
    """Sorted set 'source:target' -> forwards that day (source channel forwarded by target)."""
    return f"{PREFIX}:{{forwards}}:edges:{day}"


def forward_names(day: int) -> str:
    """Hash source channel id -> the name its forward headers gave that day."""
    return f"{PREFIX}:{{forwards}}:names:{day}"


def forward_via(day: int) -> str:
    """Hash source channel id -> 'channel:message' of the day's last post forwarding it (how
    the watcher finds a channel it knows only by id: Telegram's InputChannelFromMessage)."""
    return f"{PREFIX}:{{forwards}}:via:{day}"


# --- delivery (helper D): digests, the delivered-alert log ----------------------------------
def digest_claim(user_id: int, period_start: int) -> str:
    """SET NX EX: one digest per analyst and period, whichever delivery worker sends it."""
    return f"{PREFIX}:{{user:{user_id}}}:digest:{period_start}"


def post_seen_day(channel_id: int, day: int) -> str:
    """Hash message id -> highest version enqueued that UTC day (day = unix time // 86400),
    expiring after the idempotency window: `posts:seen` bounded by age (see PostQueue)."""
    return f"{PREFIX}:{{posts}}:seen:{channel_id}:{day}"
