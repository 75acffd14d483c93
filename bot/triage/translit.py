"""Latin spellings of Russian words read back into Cyrillic (`migrantov` → `мигрантов`).

Channels write Russian in Latin letters to dodge filters, and foreign news spells Russian names
in Latin (`Dugin`, `Dugina`). Rather than generating every Latin spelling of every form of a
watched word, a Latin word is read back into the Cyrillic spellings it could stand for, and the
inflection module gives those the Russian dictionary's lemma keys, which the Cyrillic query word
has too. Common romanisations are read (BGN/PCGN, ISO 9 without diacritics, the informal ones):
``zh kh ts ch sh shch sch ya yu yo`` and their ``j``/``i`` variants, ``y`` as ы or й, ``'`` as ь.

An ASCII word has at most `_MAX_SPELLINGS` Cyrillic readings, and as many again with a
dropped soft sign put back (before a consonant after л, or at the end); ambiguity (``e`` as
е or э at the start, ``y`` as ы or и after a consonant) is resolved by trying each.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["cyrillic_readings"]

_MAX_SPELLINGS = 4
_CONSONANTS = "бвгджзклмнпрстфхцчшщ"
_SOFT_L_RE = re.compile(f"л(?=[{_CONSONANTS}])")
_SOFT_END_RE = re.compile("([лнтдсзмр])$")
_VOWELS = frozenset("aeiouy")
# Longest first at each position.
_MULTI = (
    ("shch", ("щ",)),
    ("sch", ("щ",)),
    ("zh", ("ж",)),
    ("kh", ("х",)),
    ("ts", ("ц",)),
    ("tz", ("ц",)),
    ("ch", ("ч",)),
    ("sh", ("ш",)),
    ("ya", ("я",)),
    ("ia", ("я", "иа")),
    ("ja", ("я",)),
    ("yu", ("ю",)),
    ("iu", ("ю", "иу")),
    ("ju", ("ю",)),
    ("yo", ("е",)),
    ("jo", ("е",)),
    ("ye", ("е",)),
    ("je", ("е",)),
)
_SINGLE = {
    "a": "а",
    "b": "б",
    "v": "в",
    "w": "в",
    "g": "г",
    "d": "д",
    "e": "е",
    "z": "з",
    "i": "и",
    "j": "й",
    "k": "к",
    "q": "к",
    "l": "л",
    "m": "м",
    "n": "н",
    "o": "о",
    "p": "п",
    "r": "р",
    "s": "с",
    "t": "т",
    "u": "у",
    "f": "ф",
    "h": "х",
    "x": "кс",
    "c": "ц",
    "'": "ь",
}


@lru_cache(maxsize=2048)  # its caller caches its own answer per word
def cyrillic_readings(word: str) -> tuple[str, ...]:
    """The Cyrillic spellings a lower-case ASCII word may stand for (none if it is not one)."""
    if not word.isascii() or not word.replace("'", "").isalpha() or len(word) < 3:
        return ()
    readings = [""]
    i = 0
    n = len(word)
    while i < n:
        options: tuple[str, ...] | None = None
        step = 1
        for latin, cyrillic in _MULTI:
            if word.startswith(latin, i):
                options, step = cyrillic, len(latin)
                if latin == "ye" and i > 0 and word[i - 1] not in _VOWELS:
                    options = ("ые", "ье", "е")  # novye, statye
                break
        if options is None:
            ch = word[i]
            if ch == "y":
                before_vowel = i + 1 < n and word[i + 1] in _VOWELS
                after_vowel = i > 0 and word[i - 1] in _VOWELS
                options = ("й",) if before_vowel or after_vowel or i == 0 else ("ы", "и")
            elif ch == "e" and i == 0:
                options = ("е", "э")
            else:
                single = _SINGLE.get(ch)
                if single is None:
                    return ()
                options = (single,)
        readings = [r + o for r in readings for o in options][:_MAX_SPELLINGS]
        i += step
    # The soft sign is usually dropped: bolshoy is больш-, den is день, pravitelstv is -тельств.
    softened = [_SOFT_L_RE.sub("ль", r) for r in readings]
    softened += [_SOFT_END_RE.sub(r"\1ь", r) for r in readings + softened]
    extra = [r for r in dict.fromkeys(softened) if r not in readings]
    return tuple(readings + extra[:_MAX_SPELLINGS])
