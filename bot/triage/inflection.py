"""Inflection-aware match keys: a word and its inflected forms share a key.

`word_keys(word)` reduces one already-normalised word (see `normalise`) to a set of keys;
two words are "the same word in some inflection" iff their key sets intersect. The reducer is
chosen by the word's OWN script and letters, not by the post's language, because Russian posts
quote Ukrainian words and the reverse:

* Cyrillic, Russian and Ukrainian: dictionary lemmas from pymorphy3 (``lang='ru'`` /
  ``lang='uk'``), one key per noun/verb/adjective analysis (``LEMMA_PREFIX`` + normal form).
  A Ukrainian-only letter (і ї є ґ) selects the Ukrainian dictionary, a Russian-only one
  (ы э ъ) the Russian one; a word with neither (мова, року, мигрант) is looked up in both, so
  that either language matches. Snowball has no Ukrainian stemmer, and a dictionary also
  handles what a suffix stemmer cannot: vowel alternations (рік/року, отец/отца, выслать/
  вышлют) and homonymous stems (суд/судья, дети/деть). A word neither dictionary knows (a new
  name, a coinage, a typo) gets the Russian Snowball stem plus pymorphy3's predicted lemmas, so
  it still meets the known forms of its lexeme.
  The prediction (~190 µs a word) also joins forms of Bulgarian, Belarusian or Serbian words
  by analogy, so it is kept for every Cyrillic word without a letter of its own (below).
* Serbian Cyrillic letters (ђ ћ ј љ њ џ) → Snowball Serbian (it answers in Latin, so both
  Serbian scripts share keys); Kazakh, Kyrgyz, Tajik, Tatar, Bashkir, Belarusian letters
  (ә ғ қ ң ө ұ ү һ ӣ ӯ ҳ ҷ ў …) → no stemmer: the word itself.
* Latin with ə ı ş ğ → Snowball Turkish (also used for Azerbaijani), applied until it stops
  changing the word: one pass strips one suffix layer, so ``sığınmacılar`` would stop at
  ``sığınmacı`` while ``sığınmacı`` itself goes to ``sığınmaç``. Snowball reads a final
  ``-sin`` as the copula (``məclisin`` → ``məcli``), though in news it is far more often a
  stem in -s with the genitive ``-in`` (Məclis+in): such a word also gets the keys of the word
  without ``-in``. ç ö ü → Turkish and German/French together; ä → German; é è ê à … → French;
  č ć đ š ž → Serbian; plain Latin → English. A Turkish proper name with an apostrophe
  suffix (``Ankara'da``) also gets the keys of the part before the apostrophe.
* Armenian, Greek, Arabic, Persian (پ چ ژ گ ک ی), Devanagari, Tamil → their Snowball stemmer;
  Georgian, Hebrew and others → the word itself.

Where a reducer cannot join two forms (Turkic words without a marked letter, Uzbek, Kazakh,
Georgian), the query language's prefix form ``word*`` is the fallback.

Precision decisions: derivation is not inflection. ``мир`` (peace/world) does not match
``мирный`` (peaceful: its own lemma; query ``мир*`` for the family), ``война`` (war) does not
match ``воин`` (warrior), and participles and gerunds (``бывший``, ``выступая``) are not forms
of their verb here. A word that is ambiguous in the dictionary keeps every reading (``стали``
is a form of both стать and сталь), so recall wins over precision for homographs.

The stemmers and morphological analysers are loaded on first use, once per process, and every
reduction is cached (vocabulary repeats).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import cache, lru_cache
from typing import Any

from bot.triage.translit import cyrillic_readings
from bot.triage.turkic import TURKIC_LANGUAGES, admits, turkic_stem

__all__ = [
    "LEMMA_PREFIX",
    "is_known_word",
    "post_keys",
    "post_word_keys",
    "query_word_keys",
    "word_keys",
]

# Dictionary lemmas and stems are different kinds of key: a lemma key is marked so that a stem
# never meets a lemma by accident (the stem 'стал' of 'сталь' is not the lemma 'стал').
LEMMA_PREFIX = "~"

logger = logging.getLogger(__name__)

_UK_ONLY = frozenset("іїєґ")
_RU_ONLY = frozenset("ыэъ")
_SERBIAN_CYR = frozenset("ђћјљњџ")
# Cyrillic letters of languages without a stemmer here (be kk ky tg tt ba uz mn mk).
_OTHER_CYR = frozenset("ўәғқңөұүһӣӯҳҷҙҫҡҗѓќѕӊӈ")
_TURKIC_LAT = frozenset("əışğ")
# Snowball Turkish takes a final -sin for the copula; it is mostly a genitive (Məclis+in).
_TURKIC_SIN = re.compile(".{3}s[iıuü]n$")
_TR_OR_DE = frozenset("öü")
_GERMAN_LAT = frozenset("ä")
_FRENCH_LAT = frozenset("éèêàâîôûëïœùÿ")
_SERBIAN_LAT = frozenset("čćđšž")
_PERSIAN_ONLY = frozenset("پچژگکی")
# English forms a suffix stemmer cannot join to their lemma (Snowball: children → children).
# A form is reduced as its lemma; the lemma keeps its own stem.
_ENGLISH_IRREGULAR = {
    **dict.fromkeys(("children", "children's"), "child"),
    **dict.fromkeys(("women", "women's"), "woman"),
    **dict.fromkeys(("men", "men's"), "man"),
    "feet": "foot",
    "teeth": "tooth",
    "mice": "mouse",
    "geese": "goose",
    "wives": "wife",
    "knives": "knife",
    "wolves": "wolf",
    "thieves": "thief",
    "seen": "see",
    **dict.fromkeys(("said",), "say"),
    **dict.fromkeys(("went", "gone"), "go"),
    **dict.fromkeys(("was", "were", "been", "is", "am", "are"), "be"),
    **dict.fromkeys(("had", "has"), "have"),
    **dict.fromkeys(("did", "done", "does"), "do"),
    **dict.fromkeys(("made",), "make"),
    **dict.fromkeys(("took", "taken"), "take"),
    **dict.fromkeys(("gave", "given"), "give"),
    **dict.fromkeys(("came",), "come"),
    **dict.fromkeys(("knew", "known"), "know"),
    **dict.fromkeys(("got", "gotten"), "get"),
    **dict.fromkeys(("thought",), "think"),
    **dict.fromkeys(("told",), "tell"),
    **dict.fromkeys(("became",), "become"),
    **dict.fromkeys(("felt",), "feel"),
    **dict.fromkeys(("brought",), "bring"),
    **dict.fromkeys(("began", "begun"), "begin"),
    **dict.fromkeys(("kept",), "keep"),
    **dict.fromkeys(("held",), "hold"),
    **dict.fromkeys(("wrote", "written"), "write"),
    **dict.fromkeys(("stood",), "stand"),
    **dict.fromkeys(("heard",), "hear"),
    **dict.fromkeys(("meant",), "mean"),
    **dict.fromkeys(("met",), "meet"),
    **dict.fromkeys(("ran",), "run"),
    **dict.fromkeys(("paid",), "pay"),
    **dict.fromkeys(("sat",), "sit"),
    **dict.fromkeys(("spoke", "spoken"), "speak"),
    **dict.fromkeys(("led",), "lead"),
    **dict.fromkeys(("grew", "grown"), "grow"),
    **dict.fromkeys(("lost",), "lose"),
    **dict.fromkeys(("sent",), "send"),
    **dict.fromkeys(("built",), "build"),
    **dict.fromkeys(("understood",), "understand"),
    **dict.fromkeys(("drew", "drawn"), "draw"),
    **dict.fromkeys(("broke", "broken"), "break"),
    **dict.fromkeys(("spent",), "spend"),
    **dict.fromkeys(("drove", "driven"), "drive"),
    **dict.fromkeys(("bought",), "buy"),
    **dict.fromkeys(("wore", "worn"), "wear"),
    **dict.fromkeys(("chose", "chosen"), "choose"),
    **dict.fromkeys(("sought",), "seek"),
    **dict.fromkeys(("threw", "thrown"), "throw"),
    **dict.fromkeys(("caught",), "catch"),
    **dict.fromkeys(("fought",), "fight"),
    **dict.fromkeys(("taught",), "teach"),
    **dict.fromkeys(("sold",), "sell"),
    **dict.fromkeys(("fled",), "flee"),
    **dict.fromkeys(("struck", "stricken"), "strike"),
    **dict.fromkeys(("flew", "flown"), "fly"),
}
# English contractions keep their apostrophe; other short tails after one are suffixes of
# Turkish/Azerbaijani proper names (Türkiye'nin, Ankara'da, Bakı'ya).
_ENGLISH_TAILS = frozenset(("s", "t", "ll", "re", "ve", "d", "m"))
# pymorphy3 gives a participle or gerund its verb as normal form (бывший → быть), and a
# comparative its adjective (больше → большой): derivation, for a keyword search.
_PARTICIPLE_POS = frozenset({"PRTF", "PRTS"})
_PARTICIPLE_NOMINATIVE = {
    "PRTF": frozenset({"masc", "sing", "nomn"}),
    "PRTS": frozenset({"masc", "sing"}),
}
_SELF_LEMMA_POS = frozenset({"GRND", "COMP"})
_SPECIAL_POS = _PARTICIPLE_POS | _SELF_LEMMA_POS
# Ukrainian impersonal forms in -но/-то (сказано, отримано) are the Russian short participles
# (сказано: PRTS), which are not forms of their verb here; in Russian "Impe" marks finite
# impersonal verbs (светает), which stay forms of theirs: only the Ukrainian one is read so.
_UK_IMPERSONAL = "Impe"
_MIN_READING_SCORE = 0.02
# ~0.3 kB per entry (~15 MB full, measured on bench/triage.py's posts: 5.7 MB of (word,
# language) keys, 8.4 MB of key tuples and their strings, the rest the cache's links); a miss
# costs 5 µs (stemmer) to ~250 µs (pymorphy3 in both dictionaries, pure-Python DAWG), a hit
# 0.6 µs.
_CACHE_SIZE = 50_000
_FIXPOINT_PASSES = 3


@cache
def _stemmer(language: str) -> Callable[[str], str]:
    """The Snowball stemmer of `language` (PyStemmer), made once per process."""
    import Stemmer  # heavy C extension: loaded on first use, not at import

    logger.debug("loading Snowball stemmer %s", language)
    # No cache of its own (PyStemmer's default keeps 10,000 words per stemmer: 7.6 MB over
    # the nine after 5,000 posts): the words come from `post_keys`' and `word_keys`' caches.
    stem: Callable[[str], str] = Stemmer.Stemmer(language, 0).stemWord
    return stem


@cache
def _morph(language: str) -> Any:
    """pymorphy3's analyser for 'ru' or 'uk' (pymorphy3-dicts-*), made once per process."""
    import pymorphy3  # loads dictionaries: first use only

    logger.debug("loading pymorphy3 dictionaries for %s", language)
    return pymorphy3.MorphAnalyzer(lang=language)


def _known_lemmas(language: str, word: str) -> set[str] | None:
    """Lemma keys of `word` in pymorphy3's `language` dictionary; None if it is not there.

    One key (``LEMMA_PREFIX`` + lemma) per reading: a noun, verb or adjective reading gives its
    normal form; a participle its own nominative (обвиняемого → обвиняемый, not обвинять); a
    gerund or comparative itself (получив, больше: not forms of получить, большой); other words
    (pronouns, numerals) their normal form. Readings the dictionary's corpus statistics make
    rare (under 2 %: день as a form of деть) are dropped unless nothing else is left.

    A full `parse` costs ~150 µs (pure-Python DAWG, every analyser unit, scoring); the
    dictionary lookup alone a third of that, and for most words (one plain lemma) it is the
    whole answer. Only ambiguous words and participles take the full parse.
    """
    morph = _morph(language)
    dictionary = morph.dictionary
    lemmas: set[str] = set()
    special = False
    for fixed_word, readings in dictionary.words.similar_items(word, morph.char_substitutes):
        for paradigm, index in readings:
            tag = dictionary.build_tag_info(paradigm, index)
            special = special or tag.POS in _SPECIAL_POS or (language == "uk" and "Impe" in tag)
            lemmas.add(dictionary.build_normal_form(paradigm, index, fixed_word))
    if not lemmas:
        return None
    if len(lemmas) == 1 and not special:
        return {LEMMA_PREFIX + lemmas.pop().replace("ё", "е")}
    return _parsed_lemmas(morph, word)


def _parsed_lemmas(morph: Any, word: str) -> set[str]:
    """Lemma keys from pymorphy3's full analysis (with predictions for unknown words)."""
    weights: dict[str, float] = {}
    ukrainian = getattr(morph, "lang", "") == "uk"
    for parse in morph.parse(word):
        pos = parse.tag.POS
        if pos in _PARTICIPLE_POS:
            nominative = parse.inflect(_PARTICIPLE_NOMINATIVE[pos])
            lemma = nominative.word if nominative is not None else word
        elif pos in _SELF_LEMMA_POS or (ukrainian and _UK_IMPERSONAL in parse.tag):
            lemma = word  # a gerund, a comparative, a Ukrainian -но/-то form (сказано)
        else:
            lemma = parse.normal_form
        lemma = lemma.replace("ё", "е")
        weights[lemma] = weights.get(lemma, 0.0) + parse.score
    kept = {lemma for lemma, weight in weights.items() if weight >= _MIN_READING_SCORE}
    return {LEMMA_PREFIX + lemma for lemma in kept or weights}


def _stem_to_fixpoint(language: str, word: str) -> str:
    stem = _stemmer(language)
    for _ in range(_FIXPOINT_PASSES):
        shorter = stem(word)
        if shorter == word or not shorter:
            break
        word = shorter
    return word


def _script(ch: str) -> str:
    code = ord(ch)
    if 0x0400 <= code <= 0x052F:
        return "cyrillic"
    if ch.isascii() or 0x00C0 <= code <= 0x024F or ch == "ə":
        return "latin"
    if 0x0530 <= code <= 0x058F:
        return "armenian"
    if 0x0600 <= code <= 0x06FF or 0x0750 <= code <= 0x077F or 0xFB50 <= code <= 0xFEFF:
        return "arabic"
    if 0x0370 <= code <= 0x03FF:
        return "greek"
    if 0x0900 <= code <= 0x097F:
        return "devanagari"
    if 0x0B80 <= code <= 0x0BFF:
        return "tamil"
    return "other"


def _cyrillic_keys(word: str, letters: frozenset[str]) -> set[str]:
    if letters & _SERBIAN_CYR:
        return {_stemmer("serbian")(word)}
    if letters & _OTHER_CYR:
        # Kazakh, Kyrgyz, Uzbek, Azerbaijani letters: every Turkic stemmer whose alphabet has
        # them all (ә ұ і: Kazakh; ң ө ү: Kazakh or Kyrgyz; ў қ ғ ҳ: Uzbek or Kazakh).
        turkic = {
            key
            for language in _CYRILLIC_TURKIC
            if admits(language, word)
            for key in _turkic_keys(word, language)
        }
        return turkic or {word}
    if letters & _UK_ONLY:
        languages: tuple[str, ...] = ("uk",)
    elif letters & _RU_ONLY:
        languages = ("ru",)
    else:
        languages = ("ru", "uk")  # мова, року, мигрант: either language may be meant
    known = [lemmas for lang in languages if (lemmas := _known_lemmas(lang, word)) is not None]
    if known:
        return set().union(*known)
    # Unknown to the dictionaries (a new name, a coinage, a typo): the Russian stem plus
    # pymorphy3's predicted lemmas, so it still meets the known forms of its lexeme.
    predicted = (_parsed_lemmas(_morph(lang), word) for lang in languages)
    return {_stemmer("russian")(word)}.union(*predicted)


def _latin_keys(word: str, letters: frozenset[str]) -> set[str]:
    languages: list[str] = []
    if letters & _TURKIC_LAT:
        languages.append("turkish")
    if letters & _TR_OR_DE:
        languages += ["turkish", "german"]
    if "ç" in letters:
        languages += ["turkish", "french"]
    if letters & _GERMAN_LAT:
        languages.append("german")
    if letters & _FRENCH_LAT:
        languages.append("french")
    if letters & _SERBIAN_LAT:
        languages.append("serbian")
    if not languages:
        languages.append("english")
        word = _ENGLISH_IRREGULAR.get(word, word)
    keys = {
        _stem_to_fixpoint(language, word) if language == "turkish" else _stemmer(language)(word)
        for language in dict.fromkeys(languages)
    }
    if "ə" in letters and admits("az", word):
        keys |= _turkic_keys(word, "az")
    if "turkish" in languages and _TURKIC_SIN.search(word) is not None:
        keys.add(_stem_to_fixpoint("turkish", word[:-2]))  # Məclis+in, not Məcli+sin
    head, apostrophe, tail = word.rpartition("'")
    if apostrophe and len(head) >= 3 and len(tail) <= 5 and tail not in _ENGLISH_TAILS:
        keys |= word_keys(head)
    return keys


def _reduce(word: str) -> set[str]:
    letters = frozenset(word)
    scripts = {_script(ch) for ch in letters if ch.isalpha()}
    if len(scripts) != 1:
        return {word}  # digits only, or mixed scripts that homoglyph folding left alone
    script = scripts.pop()
    if script == "cyrillic":
        return _cyrillic_keys(word, letters)
    if script == "latin":
        return _latin_keys(word, letters)
    if script == "armenian":
        return {_stemmer("armenian")(word)}
    if script == "arabic":
        return {_stemmer("persian" if letters & _PERSIAN_ONLY else "arabic")(word)}
    if script == "greek":
        return {_stemmer("greek")(word)}
    if script == "devanagari":
        return {_stemmer("hindi")(word)}
    if script == "tamil":
        return {_stemmer("tamil")(word)}
    return {word}


# post_keys caches what posts need, so this cache serves its misses and the queries.
@lru_cache(maxsize=8192)
def word_keys(word: str) -> frozenset[str]:
    """Match keys (stems or lemmas) of one normalised word; never empty.

    Two words are the same word in some inflection iff their key sets intersect.
    """
    keys = {key for key in _reduce(word) if key}
    return frozenset(keys) if keys else frozenset((word,))


# Turkic languages by the script a word of theirs may be written in.
_LATIN_TURKIC = ("tr", "az", "uz")
_CYRILLIC_TURKIC = ("kk", "ky", "uz", "az")
_SCRIPT_TURKIC = {"latin": _LATIN_TURKIC, "cyrillic": _CYRILLIC_TURKIC}
# Languages whose posts are written in Cyrillic: a Latin word inside one is read back into
# Cyrillic (migrantov → мигрантов) if the Russian dictionary knows the reading.
_CYRILLIC_LANGUAGES = frozenset(("ru", "uk", "be", "bg", "sr", "mk", "kk", "ky", "tg"))
# pymorphy3 tags of a proper name: foreign text spells these in Latin (Dugin, Moskva).
_NAME_TAGS = frozenset(("Surn", "Name", "Patr", "Geox"))


def _single_script(word: str) -> str | None:
    scripts = {_script(ch) for ch in word if ch.isalpha()}
    return scripts.pop() if len(scripts) == 1 else None


def _turkic_keys(word: str, language: str) -> set[str]:
    """Keys of `word` read as `language` (a Turkic language), namespaced by language so that
    a Turkic stem meets only stems of the same language (both scripts of az and uz).

    Turkish too goes through `bot.triage.turkic`, not Snowball: Snowball's Turkish stemmer
    reads a final -n/-san/-dü as a verb ending (insan → in, insanların → insa, gündü → g),
    which on the hand-checked gold (bench/inflection.py, ``tr_snowball``) costs 8 points of
    precision and misses forms. Snowball Turkish stays for words whose letters alone say
    Turkic (ı ş ğ) in a post of another language.
    """
    return {f"{language}:{stem}" for stem in turkic_stem(language, word)}


def _by_language(word: str, language: str) -> set[str] | None:
    """Keys of `word` in a post detected as `language`, where that language decides (a Turkic
    language whose alphabet has every letter of the word); None where the letters decide."""
    if language not in TURKIC_LANGUAGES:
        return None
    script = _single_script(word)
    if script is None or language not in _SCRIPT_TURKIC.get(script, ()):
        return None
    if not admits(language, word):
        return None  # an English or Russian word quoted inside the post: its letters decide
    return _turkic_keys(word, language)


def _transliterated(word: str, *, names_only: bool) -> set[str]:
    """Russian lemma keys of the Cyrillic readings of a Latin word the dictionary knows
    (with `names_only`, only readings that are names: Dugin, Moskva, not most → мост)."""
    readings = cyrillic_readings(word)
    if not readings:
        return set()
    morph = _morph("ru")
    keys: set[str] = set()
    for reading in readings:
        if not morph.word_is_known(reading):
            continue
        if names_only and not any(
            _NAME_TAGS & parse.tag.grammemes for parse in morph.parse(reading)
        ):
            continue
        keys |= _known_lemmas("ru", reading) or set()
    return keys


# Spelling tricks read at the word level (the normaliser keeps the word as written):
# digits for letters, letters repeated for effect, a whole word in look-alike Latin capitals.
_DIGIT_TO_CYR = {"0": "о", "3": ("з", "е"), "4": "а", "6": "б", "1": ("и", "і"), "9": "д"}
_DIGIT_TO_LAT = {"0": "o", "1": ("i", "l"), "3": "e", "4": "a", "5": "s", "7": "t", "8": "b"}
_LOOKALIKE_CAPITALS = str.maketrans("aoecpxykmthb", "аоесрхукмтнв")
_LOOKALIKE_LETTERS = frozenset("aoecpxykmthb")
_REPEATED_RE = re.compile(r"(\w)\1{2,}")
_MAX_READINGS = 4


def _digit_readings(word: str) -> list[str]:
    """A word with digits among its letters (мигр4нты, m1grants) read with letters."""
    cyrillic = sum(1 for ch in word if _script(ch) == "cyrillic")
    latin = sum(1 for ch in word if ch.isascii() and ch.isalpha())
    if not cyrillic and not latin:
        return []
    table = _DIGIT_TO_CYR if cyrillic >= latin else _DIGIT_TO_LAT
    readings = [""]
    for ch in word:
        options = table.get(ch, ch) if ch.isdigit() else ch
        choices = (options,) if isinstance(options, str) else options
        readings = [r + c for r in readings for c in choices][:_MAX_READINGS]
    return [r for r in readings if not any(ch.isdigit() for ch in r)]


def _disguised(word: str, language: str) -> set[str]:
    """Keys of the readings of a disguised word (none for a plain one)."""
    readings: list[str] = []
    has_digit = any(ch.isdigit() for ch in word)
    if has_digit and sum(ch.isalpha() for ch in word) >= 2:
        readings += _digit_readings(word)
    if _REPEATED_RE.search(word) is not None:
        readings += [_REPEATED_RE.sub(r"\1", word), _REPEATED_RE.sub(r"\1\1", word)]
    if (
        language in _CYRILLIC_LANGUAGES
        and word.isascii()
        and len(word) > 2
        and frozenset(word) <= _LOOKALIKE_LETTERS
    ):
        cyrillic = word.translate(_LOOKALIKE_CAPITALS)  # AXMAT → ахмат, CBO → сво
        if len(cyrillic) <= 4 or _morph("ru").word_is_known(cyrillic):
            readings.append(cyrillic)
    keys: set[str] = set()
    for reading in readings:
        if reading != word:
            keys |= _by_language(reading, language) or word_keys(reading)
    return keys


@lru_cache(maxsize=_CACHE_SIZE)
def post_keys(word: str, language: str) -> tuple[str, ...]:
    """Match keys of one normalised word of a post detected as `language`, sorted.

    Where the letters allow several languages, the post's language decides: in a Kazakh post
    ``адам`` is Kazakh (адам, адамдар, адамның), not the Russian ``ад`` in the dative plural.
    A Latin word in a Cyrillic post, and a Latin name in any post, also gets the Russian
    lemma keys of its Cyrillic reading (``migrantov``, ``Dugina``). A disguised word also gets
    the keys of what it reads as: digits for letters (``мигр4нты``), letters repeated
    (``миграаанты``), a whole word in look-alike Latin capitals in a Cyrillic post (``AXMAT``).

    This is the per-word cache of posts: a tuple, because its 50,000 entries are most of
    what the triage role's caches hold, and a tuple of one to three keys (most words) takes
    48-64 bytes where a frozenset takes 216 (10.6 -> 2.5 MB for the values at 50,000).
    """
    own = _by_language(word, language)
    extra = _disguised(word, language)
    if word.isascii() and language not in _LATIN_TURKIC:
        extra |= _transliterated(word, names_only=language not in _CYRILLIC_LANGUAGES)
    keys = word_keys(word) | extra if own is None else own | extra
    return tuple(sorted(keys))


def post_word_keys(word: str, language: str) -> frozenset[str]:
    """`post_keys` as a set (not cached apart: built from `post_keys`' cache)."""
    return frozenset(post_keys(word, language))


@lru_cache(maxsize=4096)
def is_known_word(word: str, language: str = "") -> bool | None:
    """Whether a dictionary knows `word` (Russian or Ukrainian: by its letters, else by the
    post's `language`, else either); None where no dictionary covers its letters."""
    if _single_script(word) != "cyrillic" or frozenset(word) & (_OTHER_CYR | _SERBIAN_CYR):
        return None
    letters = frozenset(word)
    if letters & _UK_ONLY:
        languages: tuple[str, ...] = ("uk",)
    elif letters & _RU_ONLY:
        languages = ("ru",)
    elif language in ("ru", "uk"):
        languages = (language,)  # the Ukrainian dictionary knows вгороде (вгородити)
    else:
        languages = ("ru", "uk")
    return any(_morph(language).word_is_known(word) for language in languages)


@lru_cache(maxsize=4096)  # a Word node keeps its keys: this only spares repeated words
def query_word_keys(word: str) -> frozenset[str]:
    """Match keys of one normalised query word: reduced by every language it could be in.

    The letters' own reduction (`word_keys`), every Turkic language whose alphabet has the
    word's letters, and for a Latin name its Russian reading (``Dugin`` finds ``Дугин``).
    A post word meets the query word iff `post_word_keys` meets these.
    """
    keys = set(word_keys(word))
    script = _single_script(word)
    for language in _SCRIPT_TURKIC.get(script or "", ()):
        if admits(language, word):
            keys |= _turkic_keys(word, language)
    if word.isascii():
        keys |= _transliterated(word, names_only=True)
    return frozenset(keys)
