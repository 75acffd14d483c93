"""Text normalisation for matching, with offsets back into the original text.

A post is folded the way analysts expect a keyword search to ignore differences: Unicode
compatibility forms (NFKC: full-width letters, ligatures, non-breaking spaces), case
(``casefold``; Turkish ``İ`` becomes ``i``), ``ё``→``е``, typographic apostrophes (``’ ʼ ʻ ‘``)
→ ``'``, invisible characters (zero-width spaces and joiners, bidi marks, soft hyphens,
variation selectors) and stray stress accents removed, and homoglyphs folded inside words that
mix Latin and Cyrillic letters (``мигрaнт`` with a Latin ``a`` reads as ``мигрант``; ``Ermәnistan``
with a Cyrillic ``ә`` reads as ``Ermənistan``), a common way to dodge keyword filters.

URLs and ``@mentions`` are set aside (they are not words); ``#hashtags`` are read as words.
Every token carries the span of the visible word in the ORIGINAL text, so a match can be
highlighted there; `NormalisedText.original_span` maps any span of the normalised text back.

Speed: the common post (already NFKC, no invisible characters) takes one casefold and one
``str.translate`` over the whole text; only words containing something unusual are folded
character by character.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

import re2

__all__ = [
    "MASK",
    "NormalisedText",
    "Reading",
    "Token",
    "fold_lookalikes",
    "normalise",
    "normalise_word",
]


@dataclass(frozen=True, slots=True)
class Token:
    text: str  # normalised word: NFKC, casefold, ё→е, homoglyphs folded, invisibles removed
    start: int  # offset of the word in the ORIGINAL text
    end: int  # end offset (exclusive) in the ORIGINAL text
    hashtag: bool = False  # came from '#word' (hashtags are also read as words)


@dataclass(frozen=True, slots=True)
class Reading:
    """Another reading of the tokens ``tokens[first:stop]`` as ONE word, beside the tokens
    themselves (which stay as written, so a phrase of the letters still matches).

    * Letters spaced, dotted or hyphenated out: ``м и г р а н т ы`` → ``мигранты`` (at least
      three single letters, every gap the same separator).
    * A word with masking characters inside: ``м*гранты``, ``м_гранты``, ``м#гранты`` →
      ``м*гранты`` (`masked`; each `MASK` stands for one unknown letter, which the watch
      index resolves against the words it watches).
    """

    text: str
    first: int  # index of the first token read
    stop: int  # index after the last token read
    masked: bool = False
    # A spaced-out run without a one-letter word at its edge ("в с т р а н е" → "стране"):
    # the index drops it where the whole run is a word a dictionary knows.
    trimmed: bool = False


# In a masked reading, one unknown letter.
MASK = "*"


@dataclass(frozen=True, slots=True)
class NormalisedText:
    original: str
    text: str  # the whole text normalised (what /regex/ watches search)
    tokens: tuple[Token, ...]  # words in order; URLs and @mentions are NOT tokens
    urls: tuple[str, ...]  # as written in the original text
    mentions: tuple[str, ...]  # normalised, with the '@' ('@username')
    # Offset map, normalised → original: piece i starts at _n_starts[i] in `text` and covers
    # _o_starts[i].._o_ends[i] of `original`; a linear piece maps character by character.
    # Empty = identity (the text did not change length anywhere).
    _n_starts: tuple[int, ...] = field(default=(), repr=False, compare=False)
    _o_starts: tuple[int, ...] = field(default=(), repr=False, compare=False)
    _o_ends: tuple[int, ...] = field(default=(), repr=False, compare=False)
    _linear: tuple[bool, ...] = field(default=(), repr=False, compare=False)
    # Other readings of runs of tokens as one word (spelling tricks), in token order.
    readings: tuple[Reading, ...] = ()

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Map a span of `text` to the span of `original` it came from.

        Characters removed by normalisation (zero-width characters, soft hyphens) inside the
        span are included; a character that NFKC expanded or merged maps as a whole.
        """
        n = len(self.text)
        start = min(max(start, 0), n)
        end = min(max(end, start), n)
        if not self._n_starts:
            return start, end
        return self._map_start(start), self._map_end(end, start)

    def _map_start(self, pos: int) -> int:
        i = bisect_right(self._n_starts, pos) - 1
        if i < 0:
            return 0
        if pos >= self._piece_end(i):  # past the last piece: end of the original
            return self._o_ends[i]
        if self._linear[i]:
            return self._o_starts[i] + (pos - self._n_starts[i])
        return self._o_starts[i]

    def _map_end(self, pos: int, start: int) -> int:
        if pos == start:
            return self._map_start(pos)
        i = bisect_left(self._n_starts, pos) - 1
        if i < 0:
            return 0
        if self._linear[i]:
            return min(self._o_starts[i] + (pos - self._n_starts[i]), self._o_ends[i])
        return self._o_ends[i]

    def _piece_end(self, i: int) -> int:
        return self._n_starts[i + 1] if i + 1 < len(self._n_starts) else len(self.text)


def _token_factory() -> Callable[[str, int, int, bool], Token]:
    """A Token constructor 2x faster than the frozen dataclass's own __init__ (which goes
    through object.__setattr__ per field); a post has hundreds of tokens."""
    new = object.__new__
    set_text = Token.__dict__["text"].__set__
    set_start = Token.__dict__["start"].__set__
    set_end = Token.__dict__["end"].__set__
    set_hashtag = Token.__dict__["hashtag"].__set__

    def make(text: str, start: int, end: int, hashtag: bool) -> Token:
        token: Token = new(Token)
        set_text(token, text)
        set_start(token, start)
        set_end(token, end)
        set_hashtag(token, hashtag)
        return token

    return make


_new_token = _token_factory()

# Characters removed outright: zero-width space/non-joiner/joiner, LRM/RLM, bidi embeddings
# and isolates, word joiner and invisible operators, BOM, soft hyphen, combining grapheme
# joiner, Arabic letter mark, Mongolian vowel separator, Hangul fillers (letters to Unicode,
# so a filler inside a word kept it one token), variation selectors, tag characters.
_INVISIBLE_CHARS = (
    "\u00ad\u034f\u061c\u180e"
    "\u200b\u200c\u200d\u200e\u200f"
    "\u202a\u202b\u202c\u202d\u202e"
    "\u2060\u2061\u2062\u2063\u2064"
    "\u2066\u2067\u2068\u2069"
    "\ufeff"
    # Hangul fillers (ㅤ and its half-width and Jamo forms): blank, and letters to \w
    "\u115f\u1160\u3164\uffa0"
    + "".join(chr(c) for c in range(0xFE00, 0xFE10))
    + "".join(chr(c) for c in range(0xE0000, 0xE0080))
)
_INVISIBLE = frozenset(_INVISIBLE_CHARS)
# Stress accents left uncomposed after NFKC (мигра́нт): removed too.
_STRESS = "\u0300\u0301"
_STRIP_RE = re.compile("[" + re.escape(_INVISIBLE_CHARS + _STRESS) + "]")

_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_APOSTROPHES = ("’", "ʼ", "ʻ", "‘", "`")

# Homoglyphs, after casefolding. Latin look-alikes inside a Cyrillic word become Cyrillic.
_LAT_TO_CYR = {
    "a": "а",
    "o": "о",
    "e": "е",
    "c": "с",
    "p": "р",
    "x": "х",
    "i": "і",
    "y": "у",
    "k": "к",
    "m": "м",
    "t": "т",
    "h": "н",
    "b": "в",
    "j": "ј",
    "ë": "е",
    "ï": "ї",
    "ə": "ә",
    # accented look-alikes: мигрáнты with a Latin á reads as мигранты
    "á": "а",
    "à": "а",
    "ó": "о",
    "ò": "о",
    "é": "е",
    "è": "е",
    "ý": "у",
    "í": "і",
}
# Cyrillic look-alikes inside a Latin word become Latin.
_CYR_TO_LAT = {
    "а": "a",
    "о": "o",
    "е": "e",
    "с": "c",
    "р": "p",
    "х": "x",
    "у": "y",
    "і": "i",
    "к": "k",
    "м": "m",
    "т": "t",
    "н": "h",
    "в": "b",
    "ј": "j",
    "ѕ": "s",
    "һ": "h",
    "ԁ": "d",
    "ӏ": "l",
    "ї": "ï",
    "ә": "ə",
}
# Greek look-alikes (after casefolding: capital Β Η Μ casefold to β η μ) inside a Cyrillic or
# Latin word: мигрαнты with a Greek alpha.
_GREEK_TO_CYR = {
    "α": "а",
    "ο": "о",
    "ε": "е",
    "ρ": "р",
    "κ": "к",
    "τ": "т",
    "χ": "х",
    "υ": "у",
    "ι": "і",
    "β": "в",
    "η": "н",
    "μ": "м",
    "ό": "о",
    "ά": "а",
    "έ": "е",
    "σ": "с",  # casefold makes the look-alike final sigma ς a σ
}
_GREEK_TO_LAT = {"α": "a", "ο": "o", "ε": "e", "ρ": "p", "κ": "k", "τ": "t", "χ": "x"}
_GREEK_TO_LAT |= {"υ": "u", "ι": "i", "β": "b", "η": "n", "μ": "m", "ν": "v"}
_LAT_TO_CYR_TABLE = str.maketrans(_LAT_TO_CYR)
_CYR_TO_LAT_TABLE = str.maketrans(_CYR_TO_LAT)
_GREEK_TO_CYR_TABLE = str.maketrans(_GREEK_TO_CYR)
_GREEK_TO_LAT_TABLE = str.maketrans(_GREEK_TO_LAT)
_LATIN_LETTERS = "a-z\u00df-\u00f6\u00f8-\u024f\u0259"
_CYRILLIC_LETTERS = "\u0400-\u052f"
_GREEK_LETTERS = "\u0370-\u03ff"
_NON_GREEK = _LATIN_LETTERS + _CYRILLIC_LETTERS
# RE2 scans a whole post for a Latin-Cyrillic (or Greek-other) pair 3x faster than `re`.
_MIXED_RE = re2.compile(
    f"[{_LATIN_LETTERS}][{_CYRILLIC_LETTERS}]|[{_CYRILLIC_LETTERS}][{_LATIN_LETTERS}]"
    f"|[{_GREEK_LETTERS}][{_NON_GREEK}]|[{_NON_GREEK}][{_GREEK_LETTERS}]"
)
# The same over text not yet case-folded (the language detector's): Latin capitals too.
_ANY_CASE_LATIN = _LATIN_LETTERS + "A-Z\u00c0-\u00d6\u00d8-\u00de"
_MIXED_ANY_CASE_RE = re2.compile(
    f"[{_ANY_CASE_LATIN}][{_CYRILLIC_LETTERS}]|[{_CYRILLIC_LETTERS}][{_ANY_CASE_LATIN}]"
    f"|[{_GREEK_LETTERS}][{_ANY_CASE_LATIN}{_CYRILLIC_LETTERS}]"
    f"|[{_ANY_CASE_LATIN}{_CYRILLIC_LETTERS}][{_GREEK_LETTERS}]"
)
_LATIN_RE = re.compile(f"[{_LATIN_LETTERS}]")
_ASCII_LETTER_RE = re.compile("[A-Za-z]")
_GREEK_RE = re.compile(f"[{_GREEK_LETTERS}]")
_CYRILLIC_RE = re.compile(f"[{_CYRILLIC_LETTERS}]")

_URL_END = r"[^\s<>\"«»“”'.,;:!?)\]}…]"
_URL = rf"(?:https?://|www\.|(?:t|telegram)\.me/|tg://)(?:[^\s<>\"«»“”]*{_URL_END})?"
_MENTION = r"(?<![\w@.])@[a-z0-9_]{2,32}(?![\w@]|'[\w])"  # not a word's start: @mg'm


@cache
def _mark_class() -> str:
    """A regex class body of every combining mark in the BMP (Python's \\w excludes them)."""
    return _code_ranges(
        [c for c in range(0x300, 0x10000) if unicodedata.category(chr(c)) in ("Mn", "Mc", "Me")]
    )


# A word: letters, digits and combining marks (Python's \w has no marks, so Devanagari or
# vowelled Arabic would fall apart), with apostrophes inside (п'ять, o'zbek, don't). '_' is
# matched too and split off afterwards: one character class is 2x faster than a class
# without '_'.
@cache
def _word_re() -> re.Pattern[str]:
    letter = rf"[\w{_mark_class()}]"
    return re.compile(rf"{letter}+(?:'{letter}+)*")


@cache
def _token_re() -> re.Pattern[str]:
    word = _word_re().pattern
    return re.compile(
        rf"(?P<url>{_URL})|(?P<mention>{_MENTION})|(?<![\w#])#(?P<tag>{word})|(?P<word>{word})"
    )


def _may_hold_links(text: str) -> bool:
    """Cheap test: could `text` hold a URL, a mention or a hashtag?"""
    return "@" in text or "#" in text or "/" in text or "www." in text


def _fold_simple(s: str) -> str:
    # str.replace chains beat str.translate by 20x on non-ASCII text. 'İ' first: casefold
    # would make it 'i' + a combining dot.
    if s.isascii():
        return s.lower().replace("`", "'")
    s = s.replace("İ", "i").casefold().replace("ё", "е")
    if "ѝ" in s or "ѐ" in s:  # grave stress that NFKC composed: ѝ → ѝ, ѐ → ѐ
        s = s.replace("ѝ", "и").replace("ѐ", "е")
    for apostrophe in _APOSTROPHES:
        s = s.replace(apostrophe, "'")
    return s


def _code_ranges(codes: list[int]) -> str:
    ranges: list[tuple[int, int]] = []
    for code in codes:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    return "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
        for a, b in ranges
    )


@cache
def _dirty_re() -> Any:  # an re2 pattern: Python's re is 50x slower on these huge classes
    """Where folding is not one lower-case character for one character.

    A combining mark is matched with the character before it (NFKC may compose them); any
    other character is dirty when NFKC changes it, when casefolding changes its length, or
    when it is removed (invisible characters, stress accents, and 'İ', whose casefold is two
    characters). Everything between dirty matches is folded in one piece. Built once, on
    first use (a scan of the Unicode tables takes about 0.2 s).
    """
    marks: list[int] = []
    dirty: list[int] = []
    for code in (*range(0xA0, 0x20000), *range(0x2F800, 0x2FA20)):
        ch = chr(code)
        if unicodedata.combining(ch):
            marks.append(code)
        elif (
            unicodedata.normalize("NFKC", ch) != ch or len(ch.casefold()) != 1 or ch in _INVISIBLE
        ):
            dirty.append(code)
    dirty.extend(ord(ch) for ch in _INVISIBLE_CHARS + "İ" if ord(ch) > 0x2FA1F)
    mark_class = _code_ranges(marks)
    return re2.compile(f"(?s).?[{mark_class}]+|[{_code_ranges(sorted(set(dirty)))}]")


def _fold_cluster(cluster: str) -> str:
    if cluster in _INVISIBLE:
        return ""
    s = unicodedata.normalize("NFKC", cluster).replace("İ", "i").casefold()
    if not s.isascii():
        s = unicodedata.normalize("NFKC", s)
    return _fold_simple(_STRIP_RE.sub("", s))


class _Mapper:
    """Builds the normalised text piece by piece with its offset map."""

    __slots__ = ("linear", "n_starts", "o_ends", "o_starts", "parts", "pos")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.n_starts: list[int] = []
        self.o_starts: list[int] = []
        self.o_ends: list[int] = []
        self.linear: list[bool] = []
        self.pos = 0

    def add(self, norm: str, o_start: int, o_end: int, linear: bool) -> None:
        if not norm:
            return
        self.parts.append(norm)
        if linear and self.linear and self.linear[-1] and self.o_ends[-1] == o_start:
            self.o_ends[-1] = o_end  # extend the previous linear piece
        else:
            self.n_starts.append(self.pos)
            self.o_starts.append(o_start)
            self.o_ends.append(o_end)
            self.linear.append(linear)
        self.pos += len(norm)


def _fold_with_map(text: str, first: Any) -> tuple[str, _Mapper]:
    """Fold `text` whose first dirty spot is `first`: clean stretches in one go, dirty spots
    one cluster (a character and its combining marks) at a time."""
    mapper = _Mapper()
    last = 0
    for m in itertools.chain((first,), _dirty_re().finditer(text, first.end())):
        start, end = m.span()
        if start > last:
            mapper.add(_fold_simple(text[last:start]), last, start, True)
        i = start
        while i < end:
            j = i + 1
            while j < end and unicodedata.combining(text[j]):
                j += 1
            cluster = text[i:j]
            norm = _fold_cluster(cluster)
            mapper.add(norm, i, j, len(norm) == len(cluster))
            i = j
        last = end
    if last < len(text):
        mapper.add(_fold_simple(text[last:]), last, len(text), True)
    return "".join(mapper.parts), mapper


def _fold_homoglyphs(word: str) -> str:
    """Fold look-alike letters of a word mixing Latin and Cyrillic into its majority script;
    Greek look-alikes inside a Cyrillic or Latin word into that script first."""
    greek = _GREEK_RE.findall(word)
    if greek and len(greek) < len(word):
        if _CYRILLIC_RE.search(word) and all(ch in _GREEK_TO_CYR for ch in greek):
            word = word.translate(_GREEK_TO_CYR_TABLE)
        elif _LATIN_RE.search(word) and all(ch in _GREEK_TO_LAT for ch in greek):
            word = word.translate(_GREEK_TO_LAT_TABLE)
    latin = _LATIN_RE.findall(word)
    cyrillic = _CYRILLIC_RE.findall(word)
    if not latin or not cyrillic:
        return word
    can_cyr = all(ch in _LAT_TO_CYR for ch in latin)
    can_lat = all(ch in _CYR_TO_LAT for ch in cyrillic)
    if can_cyr and (not can_lat or len(cyrillic) >= len(latin)):
        return word.translate(_LAT_TO_CYR_TABLE)
    if can_lat:
        return word.translate(_CYR_TO_LAT_TABLE)
    return word


def _is_letter(ch: str) -> bool:
    return ch.isalnum() or unicodedata.combining(ch) != 0


def _word_bounds(text: str, start: int, end: int, floor: int) -> tuple[int, int]:
    """Widen [start, end) to the whole word as the token regex sees it (letters, digits,
    marks, and apostrophes between two of those)."""
    while start > floor and (
        _is_letter(text[start - 1])
        or (text[start - 1] == "'" and start - 1 > floor and _is_letter(text[start - 2]))
    ):
        start -= 1
    n = len(text)
    while end < n and (
        _is_letter(text[end]) or (text[end] == "'" and end + 1 < n and _is_letter(text[end + 1]))
    ):
        end += 1
    return start, end


def _fold_all_homoglyphs(text: str) -> str:
    """Fold homoglyphs in every word that has a Latin letter next to a Cyrillic one."""
    parts: list[str] = []
    last = 0
    for m in _MIXED_RE.finditer(text):
        if m.start() < last:
            continue  # inside a word already folded
        start, end = _word_bounds(text, m.start(), m.end(), last)
        word = text[start:end]
        folded = _fold_homoglyphs(word)
        if folded != word:
            parts.append(text[last:start])
            parts.append(folded)
            last = end
    if not parts:
        return text
    parts.append(text[last:])
    return "".join(parts)


def fold_lookalikes(text: str) -> str:
    """`text` with the look-alike letters of words mixing scripts folded as `normalise` folds
    them, keeping case (кojи with a Latin o and j reads as који): what a language detector
    should see. Text without such a word is returned as it is."""
    if (
        text.isascii()
        or _ASCII_LETTER_RE.search(text) is None  # Greek look-alikes alone: not worth a scan
        or _MIXED_ANY_CASE_RE.search(text) is None
    ):
        return text
    lowered = text.lower()
    if len(lowered) != len(text):
        return text
    folded = _fold_all_homoglyphs(lowered)
    if folded == lowered or len(folded) != len(text):
        return text
    return "".join(
        ch if f == low else (f.upper() if ch.isupper() else f)
        for ch, low, f in zip(text, lowered, folded, strict=True)
    )


def normalise(text: str) -> NormalisedText:
    """Normalise a post's text into folded text, word tokens, URLs and mentions."""
    work = text
    try:
        first_dirty = None if text.isascii() else _dirty_re().search(text)
    except UnicodeEncodeError:  # lone surrogates (broken input): scan a repaired copy
        work = _SURROGATE_RE.sub("\ufffd", text)
        first_dirty = _dirty_re().search(work)
    if first_dirty is None:
        folded = _fold_all_homoglyphs(_fold_simple(work))
        mapped = NormalisedText(text, folded, (), (), ())
    else:
        raw, mapper = _fold_with_map(work, first_dirty)
        folded = _fold_all_homoglyphs(raw)
        if len(mapper.linear) == 1 and mapper.linear[0] and len(raw) == len(text):
            mapper = _Mapper()  # one character for one everywhere: identity map
        mapped = NormalisedText(
            text,
            folded,
            (),
            (),
            (),
            tuple(mapper.n_starts),
            tuple(mapper.o_starts),
            tuple(mapper.o_ends),
            tuple(mapper.linear),
        )
    span = mapped.original_span
    identity = not mapped._n_starts
    tokens: list[Token] = []
    new_token = _new_token
    urls: list[str] = []
    mentions: list[str] = []
    if not _may_hold_links(folded):
        for m in _word_re().finditer(folded):
            word = m.group()
            if "_" in word:
                _add_parts(tokens, word, m.start(), span, False)
            elif identity:
                tokens.append(new_token(word, m.start(), m.end(), False))
            else:
                tokens.append(new_token(word, *span(m.start(), m.end()), False))
    else:
        for m in _token_re().finditer(folded):
            kind = m.lastgroup
            if kind == "word":
                word = m.group()
                if "_" in word:
                    _add_parts(tokens, word, m.start(), span, False)
                else:
                    tokens.append(new_token(word, *span(m.start(), m.end()), False))
            elif kind == "tag":
                _add_parts(tokens, m.group("tag"), m.start("tag"), span, True)
            elif kind == "url":
                o_start, o_end = span(*m.span())
                urls.append(text[o_start:o_end])
            else:
                mentions.append(m.group())
    return NormalisedText(
        text,
        folded,
        tuple(tokens),
        tuple(urls),
        tuple(mentions),
        mapped._n_starts,
        mapped._o_starts,
        mapped._o_ends,
        mapped._linear,
        _readings(folded, tokens, span),
    )


# Letters spaced out: at least three single letters (or digits), every gap the same one to
# three separator characters. A backreference: Python's re (RE2 has none), ~5 µs a post.
_SEPARATORS = " .\\-‐‑‒–—·•/|_*+~"
_SPACED_RE = re.compile(
    rf"(?<![^\W_])[^\W_](?P<sep>[{_SEPARATORS}]{{1,3}})[^\W_](?:(?P=sep)[^\W_])+(?![^\W_]|'[^\W_])"
)
# What every post is scanned with first (RE2, no backreference: faster than the above, and
# most posts have no three single letters in a row).
_SPACED_HINT_RE = re2.compile(
    rf"(?:^|[^\pL\pN])[\pL\pN][{_SEPARATORS}]{{1,3}}[\pL\pN][{_SEPARATORS}]{{1,3}}[\pL\pN]"
    r"(?:[^\pL\pN]|$)"
)
# Masking characters inside a word: letters on both sides of one to three of them.
_MASK_CHARS = "*#_"
_MASKED_RE = re.compile(r"(?<![^\W_])[^\W_]+(?:[*#_]{1,3}[^\W_]+)+(?![^\W_])")
_MASKED_HINT_RE = re2.compile(r"[\pL\pN][*#_]{1,3}[\pL\pN]")
_MASK_TABLE = str.maketrans(dict.fromkeys(_MASK_CHARS, MASK))
_MAX_READING = 40  # letters: a longer run is not a disguised word
_MAX_MASKS = 3
_MAX_READINGS = 64  # per post (a hostile post may hold thousands of runs)


def _readings(
    folded: str, tokens: list[Token], span: Callable[[int, int], tuple[int, int]]
) -> tuple[Reading, ...]:
    """Runs of tokens that read as one disguised word (see `Reading`)."""
    spaced = masked = None
    if _SPACED_HINT_RE.search(folded) is not None:
        spaced = _SPACED_RE.search(folded)
    if ("*" in folded or "#" in folded or "_" in folded) and _MASKED_HINT_RE.search(folded):
        masked = _MASKED_RE.search(folded)
    if spaced is None and masked is None:
        return ()
    starts = [t.start for t in tokens]
    out: list[Reading] = []
    taken: list[tuple[int, int]] = []  # token ranges of spaced runs (not masked words too)
    if spaced is not None:
        for m in itertools.chain((spaced,), _SPACED_RE.finditer(folded, spaced.end())):
            letters = m.group()[:: len(m.group("sep")) + 1]
            alpha = sum(ch.isalpha() for ch in letters)
            if alpha < 3 or alpha <= len(letters) - alpha or len(letters) > _MAX_READING:
                continue
            reading = _reading(letters, m, tokens, starts, span, masked=False)
            if reading is None:
                continue
            out.append(reading)
            taken.append((reading.first, reading.stop))
            if m.group("sep").isspace():
                out.extend(_without_short_words(reading, tokens))
            if len(out) >= _MAX_READINGS:
                return tuple(out[:_MAX_READINGS])
    if masked is not None:
        for m in itertools.chain((masked,), _MASKED_RE.finditer(folded, masked.end())):
            word = m.group().translate(_MASK_TABLE)
            masks = word.count(MASK)
            known = len(word) - masks
            if masks > _MAX_MASKS or known < max(3, masks + 2) or len(word) > _MAX_READING:
                continue
            reading = _reading(word, m, tokens, starts, span, masked=True)
            if reading is None or any(a <= reading.first < b for a, b in taken):
                continue
            out.append(reading)
            if len(out) >= _MAX_READINGS:
                break
    out.sort(key=lambda r: r.first)
    return tuple(out)


# Words of one letter (prepositions, conjunctions) that a spaced-out word may sit beside:
# "в с т р а н е" is в + страна as well as one word.
_ONE_LETTER_WORDS = frozenset("авиксуоязйіaio")


def _without_short_words(reading: Reading, tokens: list[Token]) -> list[Reading]:
    """The spaced-out reading without a one-letter word at its start, its end, or both."""
    letters = reading.text
    head = 1 if letters[0] in _ONE_LETTER_WORDS else 0
    tail = 1 if letters[-1] in _ONE_LETTER_WORDS else 0
    out = []
    for drop_head, drop_tail in ((head, 0), (0, tail), (head, tail)):
        if (drop_head or drop_tail) and len(letters) - drop_head - drop_tail >= 3:
            first, stop = reading.first + drop_head, reading.stop - drop_tail
            text = _fold_homoglyphs("".join(t.text for t in tokens[first:stop]))
            out.append(Reading(text, first, stop, trimmed=True))
    return list(dict.fromkeys(out))


def _reading(
    word: str,
    m: re.Match[str],
    tokens: list[Token],
    starts: list[int],
    span: Callable[[int, int], tuple[int, int]],
    *,
    masked: bool,
) -> Reading | None:
    """The reading of the tokens a match covers, if they are exactly its letters."""
    o_start, o_end = span(*m.span())
    first = bisect_left(starts, o_start)
    stop = bisect_left(starts, o_end)
    letters = word.replace(MASK, "") if masked else word
    if stop - first < 2 or "".join(t.text for t in tokens[first:stop]) != letters:
        return None  # part of a URL, a mention, or split otherwise by the tokenizer
    return Reading(_fold_homoglyphs(word), first, stop, masked)


def _add_parts(
    tokens: list[Token],
    word: str,
    offset: int,
    span: Callable[[int, int], tuple[int, int]],
    hashtag: bool,
) -> None:
    """Add the '_'-separated parts of a matched word (#мигранты_вон is two words)."""
    if "_" not in word:
        tokens.append(_new_token(word, *span(offset, offset + len(word)), hashtag))
        return
    pos = offset
    for part in word.split("_"):
        core = part.strip("'")  # "_'x": the apostrophe was inside only next to '_'
        if core:
            start = pos + part.index(core)
            tokens.append(_new_token(core, *span(start, start + len(core)), hashtag))
        pos += len(part) + 1


@lru_cache(maxsize=16_384)
def normalise_word(word: str) -> str:
    """The folding of `normalise` applied to one query word (or a prefix, or a phrase).

    Returns the normalised text with surrounding whitespace stripped; homoglyphs are folded
    per word exactly as in posts, so a query word folds the same way as the post word.
    """
    return normalise(word).text.strip()
