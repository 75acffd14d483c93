"""Relevance learned from analyst feedback: per-analyst models, the desk model, and the seam.

An analyst's 👍 relevant / 👎 noise verdicts train a small logistic regression over hashed
features of the alerted posts; its probability moves an alert's priority one step up, or —
when it judges the alert noise with confidence — holds it (one step down and
`Relevance.hold`: into the analyst's digest), with a reason in words (`LearnedRelevance`, the
`RelevanceModel` of bot.triage.priority). A team-wide `DeskModel` scores the posts no watch
matched, for suggestions.

Features: the post's normalised words, their inflection keys (so выслать and вышлют meet),
character 3–5 grams inside words (they carry across spelling tricks, inflections the stemmers
miss, and transliteration), the channel, the language, forward / copy flags, and — added per
match when scoring — the watch that matched. Every feature is a 24-bit hash (CRC-32 of a kind
letter and the text, FNV-1a for n-grams: stable across processes and machines, unlike
Python's salted `hash`), so a model needs no vocabulary to score. The word part and the n-gram
part of a post are each scaled to unit length, so a long post does not outvote a short one.
Every feature belongs to one word, so the features of a word are computed once and cached
(`_word_entries`: a post costs a cache look-up per distinct word; new words are hashed
together in numpy), and a post's vector is only assembled when training or explaining needs
it (`PostFeatures`).

Scoring in triage (`LearnedRelevance.assess_all`, once per post with all its matches): nothing
is computed unless some matched analyst has a model past the cold start. A model's log-odds
is a sum over the post's words of the model's weights of each word's features, so `_Bank`
keeps, per cached word and model, those two sums (form + keys, n-grams) once computed: a post
is scored for all its matched analysts at once by adding up rows, and the words new to a model
are summed for all the post's models in one gather. bench/relevance.py measures the cost.

The model (`RelevanceClassifier`) is trained from the analyst's whole verdict list each time
(`VerdictSet` keeps the latest verdict per post, so a change of mind replaces the earlier one
and a 🔕 mute is a noise verdict on the channel): with at most a few hundred verdicts a full
retrain takes milliseconds and needs no unlearning. Class weights balance relevant against
noise; L2 regularisation keeps a model of 20 verdicts from trusting one word too much. Its hold
threshold is calibrated per analyst and language: a HOLD_FOLDS-fold cross-validation over the
latest verdicts finds the lowest score a relevant verdict post of each language gets from a
model that did not see it, and only alerts scoring a margin below that of their language (and
at P ≤ P_DOWN) are held; in a language with fewer than HOLD_MIN_RELEVANT relevant verdicts,
none. It is kept sparse
(the features its verdicts contained, capped to the strongest `MAX_FEATURES`, in a
direct-addressed slot table), with a small vocabulary of its strongest words — display form,
weight, and which verdict posts contained them — for the reasons on alerts and the `/learning`
view. `to_bytes()` is a versioned, zlib-compressed record of ~16 kB (format 3; format 2, with one
hold threshold for every language, and format 1, without one, which never holds, are still
read).

Library: a hand-written numpy logistic regression. scikit-learn (HashingVectorizer +
SGDClassifier) and river were measured: each adds ~95 MB of resident memory at import (scipy
and their own modules) against numpy's 16 MB, which the service already loads for language
identification, and the service must fit in 300 MB; on these few-hundred-example problems a
full-batch solver in numpy trains in milliseconds and scores a post in microseconds.
"""

from __future__ import annotations

import math
import operator
import struct
import weakref
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt

from bot.triage.inflection import post_word_keys
from bot.triage.normalise import NormalisedText, normalise
from bot.triage.priority import Relevance

if TYPE_CHECKING:
    from bot.models import Post
    from bot.triage.index import WatchMatch
    from bot.triage.language import LanguageGuess

__all__ = [
    "COLD_START",
    "FORMAT_VERSION",
    "Background",
    "DeskModel",
    "Example",
    "LearnedRelevance",
    "ModelFormatError",
    "PostFeatures",
    "RelevanceClassifier",
    "VerdictSet",
    "calibrate_threshold",
    "extract_features",
    "features_of_post",
]

FEATURE_BITS = 24
_MASK = (1 << FEATURE_BITS) - 1
# 2 adds the calibrated hold threshold, 3 makes it one per language; versions 1 and 2 are
# still read (1 never holds, 2 holds on its one threshold in every language).
FORMAT_VERSION = 3
_HEADERS = {1: "<IIfIII", 2: "<IIfIIIf", 3: "<IIfIIIf"}
_MAGIC = b"VRM"
# No effect until the analyst has given this many verdicts of EACH kind. bench/relevance.py's
# `held_by_min_kind`: with 1 or 2 verdicts of the rarer kind a model holds 3-4 % of the
# relevant alerts (over the 3 % bar), from 3 on at most 1 %.
COLD_START = 3
# Probabilities (class-balanced, so 0.5 is "as likely either way") beyond which the model is
# confident enough to move an alert. Up is one step at P_UP. Down is a hold (one step down and
# `Relevance.hold`: the digest) and needs two things: P ≤ P_DOWN, and a log-odds below the
# model's own threshold for the post's language (`hold_threshold`) — a margin under the lowest
# score any of its (latest) relevant verdict posts IN THAT LANGUAGE got from a model trained
# without it (HOLD_FOLDS-fold cross-validation), i.e. less like a relevant post than anything
# the analyst marked relevant in that language. In a language with fewer than
# HOLD_MIN_RELEVANT relevant verdicts nothing is held: an analyst who marked eleven Ukrainian
# alerts noise and found their relevant ones in English has taught the model that Ukrainian
# words mean noise (its Ukrainian relevant alerts scored lower than most of the noise; one
# threshold for all languages held them). The margin is HOLD_MARGIN + HOLD_MARGIN_FEW /
# (relevant verdicts in the language): the fewer there are, the less their lowest score says.
# A held relevant alert costs far more than noise that gets through; with the per-language
# threshold the cap could go from 0.15 to 0.25 (bench/relevance.py's
# `held_relevant_noise_by_p_down` sweeps it, on two seeds: at 0.3 the held relevant share
# after 50 verdicts passed 3 %).
P_UP = 0.70
P_DOWN = 0.25
HOLD_MARGIN = 0.25
HOLD_MARGIN_FEW = 1.0
HOLD_MIN_RELEVANT = 2  # relevant verdicts in a language before anything in it is held
HOLD_FOLDS = 5
HOLD_CALIBRATION_MAX = 100  # the latest verdicts calibrated on (bounds the cost)
MAX_FEATURES = (
    4_096  # per model; the strongest by |weight| are kept (a small model stays in cache)
)
VOCAB_EACH_WAY = 64  # strongest words kept each way, for reasons and /learning
L2 = 0.003
ITERATIONS = 150
MAX_WORDS = 600  # distinct words read from one post (a 10,000-character post has ~1,500)
NGRAM_MIN, NGRAM_MAX = 3, 5
NGRAM_WORD_CHARS = 24  # n-grams from the first characters of a very long "word" only
WORD_NORM = 1.0  # length of the words + inflection keys part of a post's vector
GRAM_NORM = 1.0  # length of the character n-gram part
META_VALUE = 0.1  # channel, language, forward, copy, watch


class ModelFormatError(ValueError):
    """Bytes that are not a relevance model of a version this code reads."""


def _h(kind: str, text: str) -> int:
    return zlib.crc32((kind + text).encode("utf-8", "surrogatepass")) & _MASK


_SEEDS = {kind: zlib.crc32(kind.encode()) for kind in ("w", "k")}  # crc32(kind + text), faster


def _is_word(text: str) -> bool:
    return len(text) >= 2 and not text.isdigit()


_FNV_PRIME = np.uint64(0x100000001B3)
_MIX = np.uint64(0xFF51AFD7ED558CCD)
_GRAM_SALT = np.uint64(0xCBF29CE484222325)
_WORD_START, _WORD_END = 2, 3  # control characters no normalised word contains


def _gram_hashes(words: Sequence[str]) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.intp]]:
    """Hashes of the character n-grams inside each word (with its boundaries), and the word
    each belongs to: many words at once, in numpy (FNV-1a over code points, then a murmur
    finaliser)."""
    text = "".join(chr(_WORD_START) + w[:NGRAM_WORD_CHARS] + chr(_WORD_END) for w in words).encode(
        "utf-32-le", "surrogatepass"
    )
    cp = np.frombuffer(text, dtype=np.uint32).astype(np.uint64)
    word_of = np.cumsum(cp == _WORD_START) - 1
    hashes: list[npt.NDArray[np.uint64]] = []
    owners: list[npt.NDArray[np.intp]] = []
    # FNV is sequential, so the hash of an n-gram extends that of its first n-1 characters.
    h = np.full(len(cp), _GRAM_SALT, dtype=np.uint64)
    for n in range(1, NGRAM_MAX + 1):
        count = len(cp) - n + 1
        if count <= 0:
            break
        h = h[:count]
        h ^= cp[n - 1 : n - 1 + count]
        h *= _FNV_PRIME
        if n >= NGRAM_MIN:
            inside = word_of[:count] == word_of[n - 1 :]
            hashes.append(h[inside])
            owners.append(word_of[:count][inside])
    if not hashes:
        return np.zeros(0, np.uint32), np.zeros(0, np.intp)
    h = np.concatenate(hashes)
    h ^= h >> np.uint64(33)
    h *= _MIX
    h ^= h >> np.uint64(33)
    return (h & np.uint64(_MASK)).astype(np.uint32), np.concatenate(owners).astype(np.intp)


# One normalised word in one language: (its form + inflection-key hashes, its n-gram hashes,
# both as little-endian uint32 bytes — joining bytes is the cheapest way to concatenate many
# small arrays —, its vocabulary unit, its slot: a small integer naming the entry while it is
# cached, under which a scoring bank keeps each model's sums over the word's features, and the
# word).
_WordEntry = tuple[bytes, bytes, int, int, str]
_NOT_A_WORD: _WordEntry = (b"", b"", 0, -1, "")  # cached for tokens that are not words
# ~350 B an entry (the key, the two byte strings, the dict slot): 32,768 words ≈ 11 MB, about
# the distinct words of 1,000 posts; fewer and a steady stream misses (2x the time).
WORD_CACHE_SIZE = 32_768
_SLOTS = WORD_CACHE_SIZE + 2 * MAX_WORDS  # the cache overflows by at most one post's tokens
_SUMS_COPY_ROWS = 4096  # slots copied at a time when a bank grows (see `_Bank`)
_word_caches: dict[str, dict[str, _WordEntry]] = {}  # by language, then word
_cached = [0]  # entries in all of them
_free_slots: list[int] = list(range(_SLOTS - 1, -1, -1))
# Per slot: how many form + key features and n-grams its word has (a post's scales).
_slot_counts = np.zeros((_SLOTS, 2), dtype=np.float64)
_evictions = [0]  # bumped each time slots are freed: older PostFeatures' slots may be stale
# Per slot: when its word was last scored by a model (or cached), in fills — what eviction
# keeps: the words of the posts that matched an analyst with a model, not those only seen
# once (a training sample, a post no model scored).
_slot_used = np.zeros(_SLOTS, dtype=np.int64)
_slot_key: list[tuple[str, str] | None] = [None] * _SLOTS
_slot_taken = np.zeros(_SLOTS, dtype=np.bool_)
_fills = [0]


def _fill(
    distinct: Sequence[str],
    entries: list[_WordEntry | None],
    language: str,
    cache: dict[str, _WordEntry],
) -> list[_WordEntry]:
    """Compute and cache the entries of the words not yet cached (their n-grams together, in
    one numpy pass). A full cache drops its oldest quarter; every scoring bank forgets the
    sums it kept under the slots given to new words."""
    missing = [i for i, e in enumerate(entries) if e is None and _is_word(distinct[i])]
    for i, e in enumerate(entries):
        if e is None and not _is_word(distinct[i]):
            cache[distinct[i]] = entries[i] = _NOT_A_WORD
    grams, owner = _gram_hashes([distinct[i] for i in missing])
    order = np.argsort(owner, kind="stable")
    gram_bytes = grams[order].tobytes()
    bounds = (np.searchsorted(owner[order], np.arange(len(missing) + 1)) * 4).tolist()
    slots, counts = [], []
    crc32, w_seed, k_seed = zlib.crc32, _SEEDS["w"], _SEEDS["k"]
    for k, i in enumerate(missing):
        word = distinct[i]
        # Sorted: the unit (the word as the vocabulary of reasons knows it, one per lexeme
        # rather than per form) is the hash of its first key.
        keys = [
            crc32(key.encode("utf-8", "surrogatepass"), k_seed) & _MASK
            for key in sorted(post_word_keys(word, language))
        ]
        hashes = [crc32(word.encode("utf-8", "surrogatepass"), w_seed) & _MASK, *keys]
        slot = _free_slots.pop()
        slots.append(slot)
        counts.append((len(hashes), (bounds[k + 1] - bounds[k]) // 4))
        entry = (
            struct.pack(f"<{len(hashes)}I", *hashes),
            gram_bytes[bounds[k] : bounds[k + 1]],
            keys[0] if keys else hashes[0],
            slot,
            word,
        )
        cache[word] = entries[i] = entry
    if slots:
        _slot_counts[slots] = counts
        _fills[0] += 1
        _slot_used[slots] = _fills[0]
        _slot_taken[slots] = True
        for slot, i in zip(slots, missing, strict=True):
            _slot_key[slot] = (language, distinct[i])
    _cached[0] += len(missing)
    if slots:
        for bank in list(_banks):
            bank.forget(slots)
    if _cached[0] > WORD_CACHE_SIZE:
        _evict(_cached[0] - WORD_CACHE_SIZE + WORD_CACHE_SIZE // 64)
    return entries  # type: ignore[return-value]


def _evict(count: int) -> None:
    """Drop the `count` cached words least recently scored (see `_slot_used`)."""
    _evictions[0] += 1
    occupied = np.flatnonzero(_slot_taken)
    count = min(count, len(occupied))
    oldest = occupied[np.argpartition(_slot_used[occupied], count - 1)[:count]]
    for slot in oldest.tolist():
        key = _slot_key[slot]
        if key is not None:
            del _word_caches[key[0]][key[1]]
            _slot_key[slot] = None
            _slot_taken[slot] = False
            _free_slots.append(slot)
            _cached[0] -= 1


def _word_entries(tokens: Iterable[str], language: str) -> list[_WordEntry]:
    """The cached entries of the first `MAX_WORDS` distinct words among these tokens."""
    # Distinct first (in C); a very long post is read to its first 2 x MAX_WORDS tokens.
    distinct = list(dict.fromkeys(tokens))
    if len(distinct) > 2 * MAX_WORDS:
        del distinct[2 * MAX_WORDS :]
    cache = _word_caches.get(language)
    if cache is None:
        cache = _word_caches.setdefault(language, {})
    entries = list(map(cache.get, distinct))
    if None in entries:  # a miss: the words are looked at one by one
        entries = _fill(distinct, entries, language, cache)  # type: ignore[assignment]
    if _NOT_A_WORD in entries:
        entries = [e for e in entries if e is not _NOT_A_WORD]
    if len(entries) > MAX_WORDS:
        del entries[MAX_WORDS:]
    return entries  # type: ignore[return-value]


_META_CACHE = 8_192


@lru_cache(maxsize=_META_CACHE)
def _meta_bytes(channel_id: int, language: str, forwarded: bool, copied: bool) -> bytes:
    meta = [_h("c", str(channel_id)), _h("l", language)]
    if forwarded:
        meta.append(_h("f", "forward"))
    if copied:
        meta.append(_h("f", "copy"))
    return struct.pack(f"<{len(meta)}I", *meta)


def watch_feature(watch_id: int) -> int:
    """The feature of the watch that matched (added per match, not per post)."""
    return _h("m", str(watch_id))


_NO_WORDS = np.zeros(0, dtype=np.intp)
_SLOT, _WORD = operator.itemgetter(3), operator.itemgetter(4)
_TEXT = operator.attrgetter("text")


class PostFeatures:
    """A post as the models see it: sparse hashed features, and its words for reasons.

    `indices` / `values` are the post's vector (watch excluded): each word's form and
    inflection keys, then each word's n-grams, then the channel, language and flags; the words
    and their n-grams count 1/√(their number) each, so a long post does not outvote a short
    one. `words` are its distinct normalised words (in order of appearance), `units` their
    vocabulary units; `word_index` / `word_of` list every word's own features with the
    position of the word they belong to, so a model can say which words pushed its score (see
    `RelevanceClassifier.contributions`). Triage scores a post word by word (see `_Bank`), so
    all of these arrays are built only when asked for (training, a reason).
    """

    __slots__ = (
        "_entries",
        "_indices",
        "_meta",
        "_values",
        "channel_id",
        "language",
    )

    def __init__(
        self,
        channel_id: int,
        entries: Sequence[_WordEntry],
        meta: bytes,
        meta_value: float = META_VALUE,
        language: str | None = None,
    ) -> None:
        self.channel_id = channel_id
        self.language = language  # the post's language code (None: a channel-only example)
        self._entries = entries
        self._meta = meta
        self._indices: npt.NDArray[np.uint32] | None = None
        self._values: npt.NDArray[np.float32] | None = None
        if not entries:  # a channel or meta-only post: nothing to defer
            self._build(meta_value)

    def _build(self, meta_value: float = META_VALUE) -> None:
        word_bytes = b"".join([e[0] for e in self._entries])
        gram_bytes = b"".join([e[1] for e in self._entries])
        indices = np.frombuffer(word_bytes + gram_bytes + self._meta, dtype=np.uint32)
        # Not made unique: a key two forms share, or an n-gram of several words, counts for
        # each (term frequency).
        n_words, n_grams = len(word_bytes) // 4, len(gram_bytes) // 4
        values = np.empty(len(indices), dtype=np.float32)
        values[:n_words] = WORD_NORM / math.sqrt(max(n_words, 1))
        values[n_words : n_words + n_grams] = GRAM_NORM / math.sqrt(max(n_grams, 1))
        values[n_words + n_grams :] = meta_value
        self._indices, self._values = indices, values

    @property
    def indices(self) -> npt.NDArray[np.uint32]:
        if self._indices is None:
            self._build()
        return self._indices  # type: ignore[return-value]

    @property
    def values(self) -> npt.NDArray[np.float32]:
        if self._values is None:
            self._build()
        return self._values  # type: ignore[return-value]

    @property
    def meta(self) -> bytes:
        """The channel, language and flag features, as uint32 bytes."""
        return self._meta

    @property
    def slots(self) -> list[int]:
        """The word cache slot of each word (see `_Bank`)."""
        return [e[3] for e in self._entries]

    @property
    def entries(self) -> Sequence[_WordEntry]:
        return self._entries

    @property
    def words(self) -> tuple[str, ...]:
        return tuple(map(_WORD, self._entries))

    @property
    def units(self) -> npt.NDArray[np.uint32]:
        return np.array([e[2] for e in self._entries], dtype=np.uint32)

    @property
    def word_index(self) -> npt.NDArray[np.uint32]:
        return self.indices[: len(self.indices) - len(self._meta) // 4]

    @property
    def word_of(self) -> npt.NDArray[np.intp]:
        if not self._entries:
            return _NO_WORDS
        positions = np.arange(len(self._entries), dtype=np.intp)
        return np.concatenate(
            (
                np.repeat(positions, [len(e[0]) // 4 for e in self._entries]),
                np.repeat(positions, [len(e[1]) // 4 for e in self._entries]),
            )
        )


def extract_features(
    normalised: NormalisedText,
    *,
    channel_id: int,
    language: str,
    forwarded: bool = False,
    copied: bool = False,
) -> PostFeatures:
    """The features of one post from its normalised text (what the engine already computed)."""
    entries = _word_entries(map(_TEXT, normalised.tokens), language)
    meta = _meta_bytes(channel_id, language, forwarded, copied)
    return PostFeatures(channel_id, entries, meta, language=language)


def features_of_post(
    post: Post,
    language: str,
    normalised: NormalisedText | None = None,
    *,
    copied: bool = False,
) -> PostFeatures:
    """`extract_features` of a `Post` (normalising its text unless given the result)."""
    nt = normalised if normalised is not None else normalise(post.text)
    return extract_features(
        nt,
        channel_id=post.channel_id,
        language=language,
        forwarded=post.forward is not None,
        copied=copied,
    )


def channel_features(channel_id: int) -> PostFeatures:
    """A post of which nothing is known but its channel: what a 🔕 mute teaches."""
    return PostFeatures(
        channel_id, (), struct.pack("<I", _h("c", str(channel_id))), META_VALUE * 2
    )


class Background:
    """Document frequencies of features over a sample of recent posts, for IDF weighting.

    A word in every second post says little about what an analyst cares for; with tens of
    verdicts a model cannot learn that by itself. Training multiplies each feature by its
    inverse document frequency here and folds it into the weights, so scoring needs no
    background (the same sample can serve every analyst and the desk model).
    """

    __slots__ = ("_counts", "_indices", "posts")

    def __init__(
        self, indices: npt.NDArray[np.uint32], counts: npt.NDArray[np.uint32], posts: int
    ) -> None:
        self._indices = indices
        self._counts = counts
        self.posts = posts

    @classmethod
    def from_features(cls, sample: Iterable[PostFeatures]) -> Background:
        parts = [np.unique(f.indices) for f in sample]
        if not parts:
            return cls(np.zeros(0, np.uint32), np.zeros(0, np.uint32), 0)
        indices, counts = np.unique(np.concatenate(parts), return_counts=True)
        return cls(indices.astype(np.uint32), counts.astype(np.uint32), len(parts))

    def idf(self, indices: npt.NDArray[np.uint32]) -> npt.NDArray[np.float64]:
        """Smoothed IDF: log((posts + 1) / (df + 1)) + 1, so never below 1."""
        if self.posts == 0 or len(self._indices) == 0:
            return np.ones(len(indices))
        pos = np.searchsorted(self._indices, indices)
        pos[pos == len(self._indices)] = 0
        df = np.where(self._indices[pos] == indices, self._counts[pos], 0)
        return np.log((self.posts + 1) / (df + 1.0)) + 1.0


@dataclass(frozen=True, slots=True)
class Example:
    """One training example: a post's features, the verdict, the watch that had matched."""

    features: PostFeatures
    relevant: bool
    watch_id: int | None = None
    weight: float = 1.0  # the desk model gives unmatched posts (presumed noise) less


K = TypeVar("K")


@dataclass(slots=True)
class VerdictSet(Generic[K]):
    """An analyst's verdicts by post key: the latest one counts (a change of mind replaces).

    Keys are whatever identifies an alerted post for the caller (e.g. (channel, message));
    a mute is recorded with `mute(channel_id)` and counts as one noise verdict.
    """

    _by_key: dict[K, Example] = field(default_factory=dict)
    _muted: dict[int, Example] = field(default_factory=dict)

    def record(self, key: K, example: Example) -> None:
        self._by_key.pop(key, None)  # re-insert: the order stays the order of the last verdicts
        self._by_key[key] = example

    def forget(self, key: K) -> None:
        self._by_key.pop(key, None)

    def mute(self, channel_id: int) -> None:
        self._muted[channel_id] = Example(channel_features(channel_id), relevant=False)

    def unmute(self, channel_id: int) -> None:
        self._muted.pop(channel_id, None)

    def examples(self) -> list[Example]:
        return [*self._by_key.values(), *self._muted.values()]

    def __len__(self) -> int:
        return len(self._by_key) + len(self._muted)

    def train(self, background: Background | None = None) -> RelevanceClassifier:
        return RelevanceClassifier.train(self.examples(), background=background)


def _fit(
    rows: npt.NDArray[np.intp],
    cols: npt.NDArray[np.intp],
    vals: npt.NDArray[np.float64],
    y: npt.NDArray[np.float64],
    sample_weight: npt.NDArray[np.float64],
    n_cols: int,
    l2: float,
    iterations: int,
) -> tuple[npt.NDArray[np.float64], float]:
    """Weighted L2 logistic regression by Nesterov-accelerated gradient descent.

    The step is 1/L for L the smoothness bound of the loss: 1/4 of the largest squared row
    norm (bias included) plus the L2 term, so no line search is needed.
    """
    n = len(y)
    c = sample_weight / sample_weight.sum()
    row_norm2 = np.bincount(rows, weights=vals * vals, minlength=n) + 1.0
    step = 1.0 / (0.25 * float(row_norm2.max()) + l2)
    w = np.zeros(n_cols)
    b = 0.0
    w_prev, b_prev = w, b
    sign = 2.0 * y - 1.0
    for t in range(1, iterations + 1):
        momentum = (t - 1) / (t + 2)
        v = w + momentum * (w - w_prev)
        vb = b + momentum * (b - b_prev)
        z = np.bincount(rows, weights=vals * v[cols], minlength=n) + vb
        # d/dz of log(1 + exp(-s z)) = -s * sigmoid(-s z)
        r = -sign * c / (1.0 + np.exp(np.clip(sign * z, -35.0, 35.0)))
        grad = np.bincount(cols, weights=vals * r[rows], minlength=n_cols) + l2 * v
        w_prev, b_prev = w, b
        w = v - step * grad
        b = vb - step * float(r.sum())
    return w, b


# A bank's per-word sums (`_Bank.sums`). The weights they add up are float16 already (the
# saved model's form: `to_bytes`), so half precision costs little: measured with
# bench/relevance.py, see the README. It halves the largest per-analyst item.
SUMS_DTYPE: type[np.floating[Any]] = np.float16

_GOLDEN_INT = 2_654_435_761  # Knuth's multiplicative hash: spreads hashes over the slots
_GOLDEN = np.uint32(_GOLDEN_INT)
_EMPTY = np.uint32(0xFFFFFFFF)  # no feature hash (24 bits) is this


def _slot_table(
    indices: npt.NDArray[np.uint32], weights: npt.NDArray[np.float32]
) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.float32], np.uint32]:
    """A direct-addressed table of a model's features, 4+ slots per feature.

    Where two features fall in one slot the stronger keeps it and the weaker is dropped (the
    model is pruned to what the table holds, so every path scores alike): a few percent of the
    weakest weights, for one gather per post feature instead of a binary search.
    """
    bits = max(10, int(np.ceil(np.log2(max(len(indices), 1) * 4))))
    keys = np.full(1 << bits, _EMPTY, dtype=np.uint32)
    table = np.zeros(1 << bits, dtype=np.float32)
    if len(indices):
        order = np.argsort(np.abs(weights), kind="stable")  # the strongest written last
        idx = indices[order].astype(np.uint32)
        slots = (idx * _GOLDEN) >> np.uint32(32 - bits)
        keys[slots] = idx
        table[slots] = weights[order]
    return keys, table, np.uint32(32 - bits)


# The arena block of one model: the slot table of a model of MAX_FEATURES features (a bigger
# one, read from an older format, widens the blocks).
_TABLE_BLOCK = 1 << max(10, math.ceil(math.log2(MAX_FEATURES * 4)))


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-min(max(z, -35.0), 35.0)))


@dataclass(frozen=True, slots=True)
class VocabWord:
    """A strong word of a model: how it reads, its weight, the verdict posts that had it."""

    unit: int
    word: str
    score: float
    posts: tuple[int, ...]  # positions in the training examples


class RelevanceClassifier:
    """A trained relevance model: sparse weights over hashed features, and its strong words.

    Immutable once trained; a new verdict means a new model (`train` again), swapped in whole.
    """

    __slots__ = (
        "_labels",
        "_shift",
        "_slot_keys",
        "_slot_weights",
        "_vocab",
        "_vocab_units",
        "bias",
        "counts",
        "hold_below",
        "hold_by_language",
        "hold_ceiling",
    )

    def __init__(
        self,
        indices: npt.NDArray[np.uint32],
        weights: npt.NDArray[np.float32],
        bias: float,
        counts: tuple[int, int],
        vocab: Sequence[VocabWord],
        labels: npt.NDArray[np.bool_],
        hold_below: float = -math.inf,
        hold_by_language: Mapping[str, float] | None = None,
    ) -> None:
        # The slot table is the model's only copy of its weights (the sorted sparse form is
        # derived when training or saving needs it: `_sparse`); a scoring bank moves it into
        # its arena (`_Bank`), so the installed models' tables are held once.
        self._slot_keys, self._slot_weights, self._shift = _slot_table(indices, weights)
        self.bias = float(bias)
        self.counts = counts  # (relevant, noise) verdicts it was trained on
        self._vocab = {v.unit: v for v in vocab}
        self._vocab_units = frozenset(self._vocab)
        self._labels = labels  # per training example: True = relevant (for reason counts)
        # Log-odds below which an alert is confident noise, held for the digest (see train):
        # per language, and `hold_below` for a language not listed (-inf: never held there;
        # a format 2 model's one threshold for every language).
        self.hold_below = float(hold_below)
        self.hold_by_language = dict(hold_by_language or {})
        # The highest of them: an alert at or above it is held in no language (the fast path).
        self.hold_ceiling = max([self.hold_below, *self.hold_by_language.values()])

    def hold_threshold(self, language: str | None) -> float:
        """The log-odds below which an alert in this language may be held."""
        if language is None:
            return self.hold_below
        return self.hold_by_language.get(language, self.hold_below)

    # -- training ---------------------------------------------------------------------------

    @classmethod
    def train(
        cls,
        examples: Sequence[Example],
        *,
        l2: float = L2,
        iterations: int = ITERATIONS,
        max_features: int = MAX_FEATURES,
        balance: bool = True,
        background: Background | None = None,
        calibrate: bool = True,
    ) -> RelevanceClassifier:
        """A model of these examples (all of an analyst's current verdicts, in order).

        With examples of one kind only it still trains (the bias says which), but
        `LearnedRelevance` ignores it until the cold-start count of both kinds is reached.
        `calibrate` sets the per-language hold thresholds from cross-validation (see
        HOLD_MARGIN): HOLD_FOLDS more fits, so the desk model, which never holds, skips it.
        """
        by_language: dict[str, float] = {}
        recent = examples[-HOLD_CALIBRATION_MAX:]
        n_relevant = sum(1 for e in recent if e.relevant)
        if calibrate and n_relevant >= HOLD_MIN_RELEVANT and len(recent) - n_relevant >= 1:
            folds = min(HOLD_FOLDS, len(recent))
            held_out: dict[str, list[float]] = {}
            for fold in range(folds):
                rest = [e for j, e in enumerate(recent) if j % folds != fold]
                part = cls.train(
                    rest,
                    l2=l2,
                    iterations=iterations,
                    max_features=max_features,
                    balance=balance,
                    background=background,
                    calibrate=False,
                )
                for j, e in enumerate(recent):
                    if j % folds == fold and e.relevant and e.features.language is not None:
                        held_out.setdefault(e.features.language, []).append(
                            part.decision(e.features, e.watch_id)
                        )
            by_language = {
                language: min(scores) - HOLD_MARGIN - HOLD_MARGIN_FEW / len(scores)
                for language, scores in sorted(held_out.items())
                if len(scores) >= HOLD_MIN_RELEVANT
            }
        labels = np.array([e.relevant for e in examples], dtype=np.bool_)
        n_rel = int(labels.sum())
        counts = (n_rel, len(examples) - n_rel)
        if not examples:
            return cls(np.zeros(0, np.uint32), np.zeros(0, np.float32), 0.0, counts, (), labels)
        parts_idx: list[npt.NDArray[np.uint32]] = []
        parts_val: list[npt.NDArray[np.float32]] = []
        for e in examples:
            if e.watch_id is None:
                parts_idx.append(e.features.indices)
                parts_val.append(e.features.values)
            else:
                parts_idx.append(
                    np.append(e.features.indices, np.uint32(watch_feature(e.watch_id)))
                )
                parts_val.append(np.append(e.features.values, np.float32(META_VALUE)))
        lengths = np.array([len(p) for p in parts_idx], dtype=np.intp)
        all_idx = np.concatenate(parts_idx)
        uniq, cols = np.unique(all_idx, return_inverse=True)
        rows = np.repeat(np.arange(len(examples), dtype=np.intp), lengths)
        vals = np.concatenate(parts_val).astype(np.float64)
        idf = background.idf(uniq.astype(np.uint32)) if background is not None else None
        if idf is not None:
            vals *= idf[cols]
        y = labels.astype(np.float64)
        sample_weight = np.array([e.weight for e in examples], dtype=np.float64)
        if balance and 0 < n_rel < len(examples):
            w_rel = sample_weight[labels].sum()
            w_noise = sample_weight[~labels].sum()
            sample_weight = np.where(labels, sample_weight / w_rel, sample_weight / w_noise)
        w, b = _fit(rows, cols.astype(np.intp), vals, y, sample_weight, len(uniq), l2, iterations)
        if idf is not None:
            w = w * idf  # folded in: scoring multiplies by the weight alone
        if len(uniq) > max_features:
            keep = np.argpartition(-np.abs(w), max_features)[:max_features]
            uniq, w = uniq[keep], w[keep]
        model = cls(uniq.astype(np.uint32), w.astype(np.float32), b, counts, (), labels)
        vocab = model._build_vocab(examples)
        return cls(*model._sparse(), b, counts, vocab, labels, -math.inf, by_language)

    def _build_vocab(self, examples: Sequence[Example]) -> list[VocabWord]:
        """The strongest words each way, with the training posts that contained each."""
        forms: dict[int, Counter[str]] = {}
        posts: dict[int, list[int]] = {}
        scores: dict[int, float] = {}
        for i, e in enumerate(examples):
            f = e.features
            if not f.words:
                continue
            word_scores = self.contributions(f)
            for j, unit in enumerate(f.units.tolist()):
                forms.setdefault(unit, Counter())[f.words[j]] += 1
                at = posts.setdefault(unit, [])
                if not at or at[-1] != i:
                    at.append(i)
                score = float(word_scores[j])
                if abs(score) > abs(scores.get(unit, 0.0)):
                    scores[unit] = score
        ranked = sorted(scores, key=scores.__getitem__)
        chosen = [u for u in ranked[:VOCAB_EACH_WAY] if scores[u] < 0]
        chosen += [u for u in ranked[-VOCAB_EACH_WAY:] if scores[u] > 0]
        return [
            VocabWord(u, forms[u].most_common(1)[0][0], scores[u], tuple(posts[u]))
            for u in dict.fromkeys(chosen)
        ]

    def _sparse(self) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.float32]]:
        """The kept features, sorted, and their weights (what the slot table holds)."""
        kept = self._slot_keys != _EMPTY
        order = np.argsort(self._slot_keys[kept], kind="stable")
        indices = np.ascontiguousarray(self._slot_keys[kept][order], dtype=np.uint32)
        weights = np.ascontiguousarray(self._slot_weights[kept][order], dtype=np.float32)
        return indices, weights

    # -- scoring ----------------------------------------------------------------------------

    def _lookup(self, indices: npt.NDArray[np.uint32]) -> npt.NDArray[np.float32]:
        """The weight of each feature (0 for a feature the model does not have): one gather
        from the slot table, not a binary search per feature (8x faster with many models)."""
        if len(indices) == 0:
            return np.zeros(0, dtype=np.float32)
        slots = (indices * _GOLDEN) >> self._shift
        weights: npt.NDArray[np.float32] = self._slot_weights[slots]
        weights[self._slot_keys[slots] != indices] = 0.0
        return weights

    def text_decision(self, features: PostFeatures) -> float:
        """The log-odds from the post alone (the watch not counted): shared by all matches of
        one analyst on one post."""
        return float(self._lookup(features.indices) @ features.values) + self.bias

    def watch_decision(self, watch_id: int | None) -> float:
        """What the watch that matched adds to the log-odds."""
        return 0.0 if watch_id is None else META_VALUE * self._weight_of(watch_feature(watch_id))

    def _weight_of(self, feature: int) -> float:
        slot = ((feature * _GOLDEN_INT) & 0xFFFFFFFF) >> int(self._shift)
        if int(self._slot_keys[slot]) == feature:
            return float(self._slot_weights[slot])
        return 0.0

    def decision(self, features: PostFeatures, watch_id: int | None = None) -> float:
        """The log-odds that the post is relevant."""
        return self.text_decision(features) + self.watch_decision(watch_id)

    def predict_proba(self, features: PostFeatures, watch_id: int | None = None) -> float:
        """P(relevant) of a post, class-balanced (0.5 = no lean either way)."""
        return _sigmoid(self.decision(features, watch_id))

    def contributions(self, features: PostFeatures) -> npt.NDArray[np.float64]:
        """How much each of the post's words pushes the score (+ relevant, − noise).

        A word's weights summed over its own features (form, inflection keys, n-grams): the
        same for the word in any post, so words of different posts compare.
        """
        n = len(features.words)
        if n == 0:
            return np.zeros(0)
        weights = self._lookup(features.word_index).astype(np.float64)
        return np.bincount(features.word_of, weights=weights, minlength=n).astype(np.float64)

    # -- reasons and /learning --------------------------------------------------------------

    @property
    def verdict_count(self) -> tuple[int, int]:
        """(relevant, noise) verdicts the model was trained on."""
        return self.counts

    def strongest_words(self, n: int = 5) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(words pointing to relevant, words pointing to noise), strongest first."""
        ranked = sorted(self._vocab.values(), key=lambda v: v.score)
        down = tuple(v.word for v in ranked if v.score < 0)[:n]
        up = tuple(v.word for v in reversed(ranked) if v.score > 0)[:n]
        return up, down

    def explain(
        self, features: PostFeatures, relevant: bool, max_words: int = 3
    ) -> tuple[int, tuple[str, ...]]:
        """(how many verdict posts of that kind share strong words with this post, the
        post's words that pushed that way the most)."""
        scores = self.contributions(features)
        sign = 1.0 if relevant else -1.0
        order = np.argsort(-sign * scores, kind="stable")
        words = tuple(
            features.words[int(i)] for i in order[:max_words] if sign * scores[int(i)] > 0
        )
        shared: set[int] = set()
        for unit in set(features.units.tolist()) & self._vocab_units:
            v = self._vocab[unit]
            if sign * v.score > 0:
                shared.update(p for p in v.posts if bool(self._labels[p]) is relevant)
        return len(shared), words

    # -- bytes ------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """A compact, versioned form (for Redis): header, then a zlib-compressed body."""
        vocab = list(self._vocab.values())
        indices, weights = self._sparse()
        words = "\0".join(v.word for v in vocab).encode("utf-8", "surrogatepass")
        post_lists = [np.array(v.posts, dtype=np.uint16) for v in vocab]
        offsets = np.cumsum([0, *(len(p) for p in post_lists)]).astype(np.uint32)
        # Format 3's tail: the per-language hold thresholds (count, then length-prefixed
        # language code and threshold each).
        languages = [
            (code.encode("utf-8", "surrogatepass")[:255], threshold)
            for code, threshold in self.hold_by_language.items()
        ]
        tail = struct.pack("<I", len(languages)) + b"".join(
            struct.pack("<B", len(code)) + code + struct.pack("<f", threshold)
            for code, threshold in languages
        )
        body = b"".join(
            (
                struct.pack(
                    _HEADERS[FORMAT_VERSION],
                    self.counts[0],
                    self.counts[1],
                    self.bias,
                    len(indices),
                    len(vocab),
                    len(self._labels),
                    self.hold_below,
                ),
                # Sorted indices stored as deltas compress to about half.
                np.diff(indices, prepend=np.uint32(0)).astype(np.uint32).tobytes(),
                weights.astype(np.float16).tobytes(),
                np.array([v.unit for v in vocab], dtype=np.uint32).tobytes(),
                np.array([v.score for v in vocab], dtype=np.float32).tobytes(),
                offsets.tobytes(),
                (np.concatenate(post_lists) if post_lists else np.zeros(0, np.uint16)).tobytes(),
                np.packbits(self._labels).tobytes(),
                struct.pack("<I", len(words)),
                words,
                tail,
            )
        )
        return _MAGIC + bytes((FORMAT_VERSION,)) + zlib.compress(body, 6)

    @classmethod
    def from_bytes(cls, data: bytes) -> RelevanceClassifier:
        """The model `to_bytes` wrote; ModelFormatError for anything else."""
        if len(data) < 4 or data[:3] != _MAGIC:
            raise ModelFormatError("not a relevance model")
        if data[3] not in _HEADERS:
            raise ModelFormatError(f"relevance model format {data[3]}, expected {FORMAT_VERSION}")
        try:
            return cls._decode(zlib.decompress(data[4:]), data[3])
        except (zlib.error, struct.error, ValueError, IndexError, UnicodeDecodeError) as exc:
            raise ModelFormatError(f"damaged relevance model: {exc}") from exc

    @classmethod
    def _decode(cls, body: bytes, version: int) -> RelevanceClassifier:
        header = _HEADERS[version]
        n_rel, n_noise, bias, n_feat, n_vocab, n_labels, *rest = struct.unpack_from(header, body)
        hold_below = float(rest[0]) if rest else -math.inf
        if math.isnan(hold_below):
            raise ValueError("hold threshold is not a number")
        at = struct.calcsize(header)

        def take(dtype: Any, count: int) -> npt.NDArray[Any]:
            nonlocal at
            size = np.dtype(dtype).itemsize * count
            if at + size > len(body):
                raise ValueError("truncated")
            out = np.frombuffer(body, dtype=dtype, count=count, offset=at)
            at += size
            return out

        indices = np.cumsum(take(np.uint32, n_feat), dtype=np.uint32)
        weights = take(np.float16, n_feat).astype(np.float32)
        units = take(np.uint32, n_vocab)
        scores = take(np.float32, n_vocab)
        offsets = take(np.uint32, n_vocab + 1)
        post_ids = take(np.uint16, int(offsets[-1]))
        labels = np.unpackbits(take(np.uint8, (n_labels + 7) // 8))[:n_labels].astype(np.bool_)
        (n_words,) = struct.unpack_from("<I", body, at)
        at += 4
        words = body[at : at + n_words].decode("utf-8", "surrogatepass").split("\0")
        if n_vocab and len(words) != n_vocab:
            raise ValueError("vocabulary does not match")
        at += n_words
        by_language: dict[str, float] = {}
        if version >= 3:
            (n_languages,) = struct.unpack_from("<I", body, at)
            at += 4
            for _ in range(n_languages):
                (size,) = struct.unpack_from("<B", body, at)
                code = body[at + 1 : at + 1 + size].decode("utf-8", "surrogatepass")
                (threshold,) = struct.unpack_from("<f", body, at + 1 + size)
                if math.isnan(threshold):
                    raise ValueError("hold threshold is not a number")
                by_language[code] = float(threshold)
                at += 1 + size + 4
        vocab = [
            VocabWord(
                int(units[i]),
                words[i],
                float(scores[i]),
                tuple(int(p) for p in post_ids[offsets[i] : offsets[i + 1]]),
            )
            for i in range(n_vocab)
        ]
        return cls(
            indices, weights, bias, (n_rel, n_noise), vocab, labels, hold_below, by_language
        )


def _reason(up: bool, count: int, words: Sequence[str]) -> str:
    arrow, kind = ("↑", "relevant") if up else ("↓", "noise")
    like = f"like {count} post{'s' if count != 1 else ''}" if count else "like posts"
    tail = f" ({', '.join(words)})" if words else ""
    return f"learned {arrow}: {like} you marked {kind}{tail}"


class _Bank:
    """The installed models, arranged to score a post word by word, updated in place.

    A post's log-odds under a model is bias + word_scale · Σ (weights of each word's form and
    inflection keys) + gram_scale · Σ (weights of each word's n-grams) + the channel and
    language terms. The two sums of each (word, model) are kept here under the word's cache
    slot once computed, so scoring a post is a sum over its distinct words, for all its
    matched analysts' models at once, instead of a look-up per feature (a post has ~850) per
    model. Each model has a column: its sums (`sums[:, column]`), and a block of the arena
    holding its slot table (the model reads its table through a view of it, so it is held
    once). Installing or removing a model rewrites its column only: the other models' sums
    carry over, and nothing is reallocated unless the columns run out (`reserve` sizes them:
    the triage worker reserves one per analyst). Rebuilding the bank for every verdict, as
    it once did, held two banks at once each time (+15 to +30 MB for a moment at 100 analysts,
    measured by bench/memory.py). A slot given to another word is forgotten by every bank
    (`_fill`). Memory per column: 4 bytes per word slot (two half-precision sums,
    `SUMS_DTYPE`: ~135 kB) and 8 bytes per table slot (~130 kB).

    Scoring and updates both run on the event loop's thread, so a post is never scored by a
    half-installed model.
    """

    __slots__ = (
        "__weakref__",
        "active",
        "biases",
        "block",
        "free",
        "keys",
        "meta",
        "models",
        "position",
        "shifts",
        "sums",
        "watch",
        "weights",
    )
    biases: npt.NDArray[np.float64]  # per column
    shifts: npt.NDArray[np.uint32]
    keys: npt.NDArray[np.uint32]  # the arena: every column's slot table
    weights: npt.NDArray[np.float32]
    sums: npt.NDArray[Any]  # (word slot, column + the counts column, 2)

    def __init__(self, models: Mapping[int, RelevanceClassifier], capacity: int = 0) -> None:
        self.models: dict[int, RelevanceClassifier] = {}
        self.position: dict[int, int] = {}  # owner -> column
        self.free: list[int] = []  # unused columns, the lowest last
        self.block = max([_TABLE_BLOCK, *(len(m._slot_keys) for m in models.values())])
        self.watch: dict[tuple[int, int | None], float] = {}  # (owner, watch) → log-odds
        self.meta: dict[tuple[int, bytes], float] = {}  # (owner, meta features) → log-odds
        self.active: tuple[int, frozenset[int]] = (-1, frozenset())  # (cold start, owners)
        self._allocate(max(capacity, len(models)), self.block)
        self.apply(models)
        _banks.add(self)

    @property
    def capacity(self) -> int:
        return len(self.biases)

    def _allocate(self, capacity: int, block: int) -> None:
        """(Re)allocate the columns and arena for `capacity` models of tables up to `block`
        slots, moving what is installed (the only time a bank copies its sums)."""
        old = None if not hasattr(self, "sums") else (self.sums, self.keys, self.weights)
        old_capacity = 0 if old is None else self.capacity
        biases = np.zeros(capacity, dtype=np.float64)
        shifts = np.zeros(capacity, dtype=np.uint32)
        if old is not None:
            biases[:old_capacity] = self.biases
            shifts[:old_capacity] = self.shifts
        self.biases, self.shifts, self.block = biases, shifts, block
        self.keys = np.full(capacity * block, _EMPTY, dtype=np.uint32)
        self.weights = np.zeros(capacity * block, dtype=np.float32)
        for owner, column in self.position.items():
            self._place(column, self.models[owner])
        sums = np.full((_SLOTS, capacity + 1, 2), np.nan, dtype=SUMS_DTYPE)
        sums[:, -1] = _slot_counts  # the last column: each word's feature counts (its scales)
        if old is not None:
            # A block of slots at a time: fancy indexing copies what it reads.
            for start in range(0, _SLOTS, _SUMS_COPY_ROWS):
                rows = slice(start, start + _SUMS_COPY_ROWS)
                sums[rows, :old_capacity] = old[0][rows, :old_capacity]
        self.sums = sums
        self.free = [*range(capacity - 1, old_capacity - 1, -1), *self.free]

    def reserve(self, capacity: int) -> None:
        """Room for `capacity` models without reallocating as they arrive."""
        if capacity > self.capacity:
            self._allocate(capacity, self.block)

    def _place(self, column: int, model: RelevanceClassifier) -> None:
        """Copy the model's table into its column's block; the model reads it from there."""
        size = len(model._slot_keys)
        at = column * self.block
        keys, weights = model._slot_keys, model._slot_weights
        self.keys[at : at + size] = keys
        self.keys[at + size : at + self.block] = _EMPTY
        self.weights[at : at + size] = weights
        model._slot_keys = self.keys[at : at + size]
        model._slot_weights = self.weights[at : at + size]
        self.shifts[column] = model._shift
        self.biases[column] = model.bias

    def _release(self, model: RelevanceClassifier) -> None:
        """A model leaving the bank keeps a copy of its own table, not a view of the arena."""
        if np.shares_memory(model._slot_keys, self.keys):
            model._slot_keys = model._slot_keys.copy()
            model._slot_weights = model._slot_weights.copy()

    def apply(self, models: Mapping[int, RelevanceClassifier]) -> None:
        """Make the installed models these: removed, replaced and new ones change their own
        columns only."""
        gone = [owner for owner in self.models if owner not in models]
        changed = [owner for owner, m in models.items() if self.models.get(owner) is not m]
        if not gone and not changed:
            return
        self.models = dict(self.models)  # a reader holding the last mapping keeps it whole
        for owner in gone:  # first: their columns are free for the new ones
            self._forget_owner(owner)
        arriving = sum(1 for o in changed if o not in self.position)
        block = max([self.block, *(len(models[o]._slot_keys) for o in changed)])
        if arriving > len(self.free):
            self._allocate(max(self.capacity + arriving, self.capacity * 3 // 2 + 4), block)
        elif block > self.block:
            self._allocate(self.capacity, block)
        for owner in changed:
            model = models[owner]
            column = self.position.get(owner)
            if column is None:
                column = self.position[owner] = self.free.pop()
            else:
                self._release(self.models[owner])
            self._place(column, model)
            self.models[owner] = model
            self.sums[:, column] = np.nan
        touched = {*gone, *changed}
        self.watch = {k: v for k, v in self.watch.items() if k[0] not in touched}
        self.meta = {k: v for k, v in self.meta.items() if k[0] not in touched}
        self.active = (-1, frozenset())

    def _forget_owner(self, owner: int) -> None:
        column = self.position.pop(owner)
        self._release(self.models.pop(owner))
        self.sums[:, column] = np.nan
        self.biases[column] = 0.0
        self.free.append(column)

    def owners_past(self, cold_start: int) -> frozenset[int]:
        """The analysts whose models have at least `cold_start` verdicts of each kind."""
        if self.active[0] != cold_start:
            past = frozenset(o for o, m in self.models.items() if min(m.counts) >= cold_start)
            self.active = (cold_start, past)
        return self.active[1]

    def forget(self, slots: list[int]) -> None:
        self.sums[slots, :-1] = np.nan
        self.sums[slots, -1] = _slot_counts[slots]

    def text_decisions(self, features: PostFeatures, owners: list[int]) -> list[float]:
        """The log-odds of the post (watch not counted) under each of these owners' models."""
        at = np.array([self.position[o] for o in owners], dtype=np.intp)
        meta = [self._meta(o, features.meta) for o in owners]
        entries = features.entries
        if not entries:
            return [float(b) + m for b, m in zip(self.biases[at], meta, strict=True)]
        slots = np.fromiter(map(_SLOT, entries), dtype=np.intp, count=len(entries))
        _slot_used[slots] = _fills[0]
        # Every model's sums of these words at once (contiguous rows), then this post's
        # models: a sum not yet computed is NaN and makes its model's total NaN.
        every = self.sums.take(slots, axis=0).sum(axis=0, dtype=np.float64)
        n_forms, n_grams = every[-1].tolist()
        totals = every[at]
        if np.isnan(totals.sum()):
            unknown = np.isnan(self.sums[slots[:, None], at, 0])  # (words, models)
            rows = np.flatnonzero(unknown.any(axis=1))
            columns = at[unknown[rows].any(axis=0)]
            computed = self._word_sums([entries[r] for r in rows.tolist()], columns)
            self.sums[slots[rows][:, None], columns] = computed
            totals = self.sums[slots[:, None], at].sum(axis=0, dtype=np.float64)
        scale = (
            WORD_NORM / math.sqrt(max(n_forms, 1.0)),
            GRAM_NORM / math.sqrt(max(n_grams, 1.0)),
        )
        decisions = totals @ np.array(scale) + self.biases[at]
        return [d + m for d, m in zip(decisions.tolist(), meta, strict=True)]

    def _word_sums(
        self, entries: Sequence[_WordEntry], columns: npt.NDArray[np.intp]
    ) -> npt.NDArray[np.float64]:
        """(words, models, 2): each word's sums of each model's weights over its form and
        inflection keys, and over its n-grams."""
        parts = [part for e in entries for part in (e[0], e[1])]
        sizes = [len(part) // 4 for part in parts]
        indices = np.frombuffer(b"".join(parts), dtype=np.uint32)
        blocks = columns.astype(np.int64) * self.block  # each column's block in the arena
        slots = ((indices * _GOLDEN)[:, None] >> self.shifts[columns]) + blocks
        weights = self.weights[slots]
        weights[self.keys[slots] != indices[:, None]] = 0.0
        # Every word has a form and at least one n-gram: no segment is empty.
        starts = np.cumsum([0, *sizes[:-1]])
        sums = np.add.reduceat(weights, starts, axis=0, dtype=np.float64)
        return sums.reshape(len(entries), 2, len(columns)).transpose(0, 2, 1)

    def _meta(self, owner: int, meta: bytes) -> float:
        key = (owner, meta)
        value = self.meta.get(key)
        if value is None:
            weights = self.models[owner]._lookup(np.frombuffer(meta, dtype=np.uint32))
            value = self.meta[key] = META_VALUE * float(weights.sum(dtype=np.float64))
        return value

    def watch_decision(self, owner: int, watch_id: int | None) -> float:
        key = (owner, watch_id)
        value = self.watch.get(key)
        if value is None:
            value = self.watch[key] = self.models[owner].watch_decision(watch_id)
        return value


_banks: weakref.WeakSet[_Bank] = weakref.WeakSet()  # the banks in use: told of reused slots


_NEUTRAL = Relevance()


def _logit(p: float) -> float:
    p = min(max(p, 1e-9), 1 - 1e-9)
    return math.log(p / (1 - p))


class LearnedRelevance:
    """The `RelevanceModel` of learned analyst models: one model per analyst, swapped whole.

    The engine calls `assess_all` once per post with all its matches: the post's features
    are computed only if some matched analyst has a model past the cold start, once, and
    every such analyst's model scores them in one pass (`_Bank`); `assess` does the same for
    one match. An analyst without a model, or whose model has fewer than `cold_start`
    verdicts of either kind, gets no change. A model moves an alert one step up at
    P(relevant) ≥ `p_up`; it holds it (one step down, and `Relevance.hold`: into the digest)
    at P ≤ `p_down` when the log-odds is also below the model's own calibrated threshold for
    the post's language (`RelevanceClassifier.hold_threshold`, see `train`). Models are
    replaced by `replace` (all) or `update` (one analyst), in place in the bank (`_Bank`): a
    changed model's column only, between two posts (both run on the event loop's thread).
    """

    def __init__(
        self,
        models: Mapping[int, RelevanceClassifier] | None = None,
        *,
        cold_start: int = COLD_START,
        p_up: float = P_UP,
        p_down: float = P_DOWN,
    ) -> None:
        self._bank = _Bank(models or {})
        self.cold_start = cold_start
        self.p_up = p_up
        self.p_down = p_down
        self._last_post: object = None
        self._last_features: PostFeatures | None = None
        self._evictions = _evictions[0]  # the word cache's, when the last features were made
        # Of the last post, per analyst: the text's log-odds, and the reasons each way.
        self._text_scores: dict[int, float] = {}
        self._reasons: dict[tuple[int, bool], str] = {}

    @property
    def models(self) -> Mapping[int, RelevanceClassifier]:
        return self._bank.models

    def replace(self, models: Mapping[int, RelevanceClassifier], *, capacity: int = 0) -> None:
        """Install exactly these models (those unchanged keep their sums); `capacity`: how
        many the bank should have room for (the analysts), so arrivals do not reallocate."""
        self._bank.reserve(capacity)
        self._bank.apply(models)
        self._text_scores = {}
        self._reasons = {}

    def update(self, analyst_id: int, model: RelevanceClassifier | None) -> None:
        """Install (or with None remove: reset, learning off) one analyst's model."""
        models = dict(self._bank.models)
        if model is None:
            models.pop(analyst_id, None)
        else:
            models[analyst_id] = model
        self.replace(models)

    def active(self, analyst_id: int) -> RelevanceClassifier | None:
        """The analyst's model if it is past the cold start, else None."""
        model = self._bank.models.get(analyst_id)
        if model is None or min(model.counts) < self.cold_start:
            return None
        return model

    def features(
        self, post: Post, language: LanguageGuess, normalised: NormalisedText | None
    ) -> PostFeatures:
        if (
            post is not self._last_post
            or self._last_features is None
            or self._evictions != _evictions[0]
        ):
            self._last_features = features_of_post(post, language.code, normalised)
            self._last_post = post
            self._evictions = _evictions[0]
            self._text_scores = {}
            self._reasons = {}
        return self._last_features

    def assess(
        self,
        post: Post,
        match: WatchMatch,
        language: LanguageGuess,
        normalised: NormalisedText | None = None,
    ) -> Relevance:
        owner = match.owner_id
        model = self.active(owner)
        if model is None:
            return _NEUTRAL
        bank = self._bank
        features = self.features(post, language, normalised)
        text = self._text_scores.get(owner)
        if text is None:
            (text,) = bank.text_decisions(features, [owner])
            self._text_scores[owner] = text
        return self._relevance(
            owner, model, features, text + bank.watch_decision(owner, match.watch_id)
        )

    def assess_all(
        self,
        post: Post,
        matches: Sequence[WatchMatch],
        language: LanguageGuess,
        normalised: NormalisedText | None = None,
    ) -> list[Relevance]:
        """`assess` of every match of one post, in order: the matched analysts' models score
        the post together."""
        bank = self._bank
        past = bank.owners_past(self.cold_start)
        owners = [o for o in dict.fromkeys([m.owner_id for m in matches]) if o in past]
        if not owners:
            return [_NEUTRAL] * len(matches)
        features = self.features(post, language, normalised)
        text = dict(zip(owners, bank.text_decisions(features, owners), strict=True))
        watch = bank.watch
        up, down = self._up, self._down
        out = []
        for match in matches:
            owner = match.owner_id
            decision = text.get(owner)
            if decision is None:
                out.append(_NEUTRAL)
                continue
            w = watch.get((owner, match.watch_id))
            if w is None:
                w = bank.watch_decision(owner, match.watch_id)
            decision += w
            if decision < up and (decision > down or decision >= bank.models[owner].hold_ceiling):
                out.append(_NEUTRAL)
            else:
                out.append(self._relevance(owner, bank.models[owner], features, decision))
        return out

    @property
    def p_up(self) -> float:
        return self._p_up

    @p_up.setter
    def p_up(self, p: float) -> None:
        self._p_up, self._up = p, _logit(p)

    @property
    def p_down(self) -> float:
        return self._p_down

    @p_down.setter
    def p_down(self, p: float) -> None:
        self._p_down, self._down = p, _logit(p)

    def _judgement(
        self, model: RelevanceClassifier, decision: float, language: str | None
    ) -> tuple[int, bool]:
        """(steps, hold) for a model's log-odds of one match in a post of this language."""
        if decision >= self._up:
            return 1, False
        if decision <= self._down and decision < model.hold_threshold(language):
            return -1, True
        return 0, False

    def _relevance(
        self, owner: int, model: RelevanceClassifier, features: PostFeatures, decision: float
    ) -> Relevance:
        steps, hold = self._judgement(model, decision, features.language)
        if not steps:
            return _NEUTRAL
        up = steps > 0
        reason = self._reasons.get((owner, up))
        if reason is None:
            reason = self._reasons[(owner, up)] = _reason(up, *model.explain(features, up))
        return Relevance(steps, reason, hold)

    def judge(
        self, model: RelevanceClassifier, features: PostFeatures, watch_id: int | None
    ) -> Relevance:
        """The step, hold and reason a past-cold-start model gives one post."""
        steps, hold = self._judgement(model, model.decision(features, watch_id), features.language)
        if not steps:
            return _NEUTRAL
        return Relevance(steps, _reason(steps > 0, *model.explain(features, steps > 0)), hold)


SUGGESTED_REASON = "🧭 Suggested: like posts your team marked relevant"
UNMATCHED_WEIGHT = 0.3  # an unmatched post is only presumed noise


def calibrate_threshold(scores: Iterable[float], *, days: float, per_day: int) -> float:
    """The score above which at most `per_day` of these recent posts a day would be suggested.

    `scores` are the desk model's scores of the unmatched posts of the last `days`; the
    threshold is the next-highest score below the allowed number (inf when there are none).
    """
    ordered = sorted(scores, reverse=True)
    allowed = int(per_day * days)
    if allowed <= 0 or not ordered:
        return math.inf
    if allowed >= len(ordered):
        return ordered[-1]
    return ordered[allowed]  # strictly above this one: `allowed` posts


@dataclass(frozen=True, slots=True)
class DeskModel:
    """The team-wide model: every analyst's relevant posts against their noise posts and a
    sample of posts no watch matched; it scores unmatched posts for suggestions."""

    model: RelevanceClassifier
    threshold: float = math.inf

    @classmethod
    def train(
        cls,
        relevant: Iterable[PostFeatures],
        noise: Iterable[PostFeatures],
        unmatched_sample: Iterable[PostFeatures] = (),
        *,
        unmatched_weight: float = UNMATCHED_WEIGHT,
        background: Background | None = None,
    ) -> DeskModel:
        examples = [Example(f, True) for f in relevant]
        examples += [Example(f, False) for f in noise]
        examples += [Example(f, False, weight=unmatched_weight) for f in unmatched_sample]
        return cls(RelevanceClassifier.train(examples, background=background, calibrate=False))

    def score(self, features: PostFeatures) -> float:
        return self.model.predict_proba(features)

    def calibrated(
        self, recent: Iterable[PostFeatures], *, days: float, per_day: int
    ) -> DeskModel:
        """This model with the threshold that lets through at most `per_day` suggestions a day
        of posts like `recent` (the unmatched posts of the last `days`)."""
        scores = [self.score(f) for f in recent]
        return DeskModel(self.model, calibrate_threshold(scores, days=days, per_day=per_day))

    def suggest(self, features: PostFeatures) -> bool:
        return self.model.counts[0] > 0 and self.score(features) > self.threshold

    def to_bytes(self) -> bytes:
        return struct.pack("<d", self.threshold) + self.model.to_bytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> DeskModel:
        if len(data) < 8:
            raise ModelFormatError("not a desk model")
        (threshold,) = struct.unpack_from("<d", data)
        return cls(RelevanceClassifier.from_bytes(data[8:]), threshold)
