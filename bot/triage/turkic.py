"""Suffix-stripping stemmers for Azerbaijani, Turkish, Kazakh, Kyrgyz and Uzbek.

No maintained stemmer for these languages exists in the package registry we use (the ones
there are single-release projects: azstemmer, stemmer-aze, uzbek-stemmer, kazstem, kyrgyz);
Snowball has Turkish only. So each language here gets a small stemmer designed like Snowball's
Turkish one, for nouns and adjectives (what analysts watch for):

* **Ordered suffix classes**, stripped outside-in, at most one suffix per class and pass:
  particles and the copula (-dır, -ki), case (genitive, accusative, dative, locative,
  ablative, instrumental), possessive, plural. A pass is repeated until nothing changes (at
  most three), so ``ailə`` (family) and ``ailədə`` both end at the same key.
* **Vowel harmony**: a suffix is stripped only if its vowel agrees in backness with the last
  vowel of what is left (Uzbek has lost harmony: not checked there). ``insan+ların`` is
  stripped; ``-ler`` after a back-vowel stem is not.
* **Buffer consonants**: a suffix written ``~nın`` (genitive after a vowel) is stripped only
  after a vowel; a suffix starting with a vowel only after a consonant.
* **Softening**: a stem's final consonant is written hard whatever followed it, so
  ``bayrağı`` / ``bayraq``, ``жүрегі`` / ``жүрек``, ``qishlog'i`` / ``qishloq`` share a key.
* **Minimum stem**: two letters with a vowel (three before a one-letter suffix), so short
  roots are not eaten.

Azerbaijani and Uzbek in Cyrillic are transliterated to Latin first, by the official tables,
so both scripts of one language share keys. The keys are stems, not words: two forms are the
same word iff their stems are equal. Verbs are not conjugated away (a watch on a verb needs
``word*``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

__all__ = ["TURKIC_LANGUAGES", "admits", "turkic_stem"]

_MAX_PASSES = 3
_MAX_STEMS = 8


@dataclass(frozen=True, slots=True)
class _Spec:
    back: frozenset[str]
    front: frozenset[str]
    vowels: frozenset[str]
    classes: tuple[tuple[tuple[str, bool], ...], ...]  # (suffix, after a vowel only)
    harmony: bool
    soften: dict[str, str]  # final letter (or digraph) → its hard form
    alphabet: frozenset[str]
    transliterate: dict[str, str] | None = None  # from the other script, before stemming
    # Consonant assimilation: a suffix starting with one of `hard_initials` follows only a
    # voiceless consonant, one starting with `soft_initials` never does (Kazakh өлкө is not
    # өл+кө: after л the dative is -ге/-гө).
    voiceless: frozenset[str] = frozenset()
    hard_initials: frozenset[str] = frozenset()
    soft_initials: frozenset[str] = frozenset()
    unharmonised: frozenset[str] = frozenset()  # suffixes that keep their vowel (Kazakh -мен)


def _classes(*groups: str) -> tuple[tuple[tuple[str, bool], ...], ...]:
    """Suffix classes from space-separated lists; '~' marks 'after a vowel only'. Longest
    suffixes first, so -ların is tried before -ın."""
    out = []
    for group in groups:
        items = [(s.lstrip("~"), s.startswith("~")) for s in group.split()]
        out.append(tuple(sorted(dict.fromkeys(items), key=lambda item: -len(item[0]))))
    return tuple(out)


_AZ_TR_VOWELS = "aıoueəiöü"
_AZ = _Spec(
    back=frozenset("aıou"),
    front=frozenset("eəiöü"),
    vowels=frozenset(_AZ_TR_VOWELS),
    classes=_classes(
        "dır dir dur dür ~dır ~dir dırlar dirlər",
        # case, including the forms after a 3rd person possessive (kitabı+nda)
        "ın in un ün ~nın ~nin ~nun ~nün ı i u ü ~nı ~ni ~nu ~nü a ə ~ya ~yə "
        "da də ta tə dan dən tan tən ~nda ~ndə ~ndan ~ndən ~na ~nə "
        "la lə ~yla ~ylə dakı dəki ~ndakı ~ndəki",
        # possessive
        "ım im um üm ın in un ün ı i u ü ~sı ~si ~su ~sü "
        "ımız imiz umuz ümüz ~mız ~miz ~muz ~müz ınız iniz unuz ünüz ~nız ~niz ~nuz ~nüz "
        "ları ləri",
        "lar lər",
    ),
    harmony=True,
    soften={"ğ": "q"},
    alphabet=frozenset("abcçdeəfgğhxıijkqlmnoöprsştuüvyz'"),
    transliterate={
        **dict(
            zip(
                "абвгғдеәжзиыјйкҝлмноөпрстуүфхһчҹш",
                "abvqğdeəjziıyykglmnoöprstuüfxhçcş",
                strict=True,
            )
        ),
        "ё": "yo",
        "ю": "yu",
        "я": "ya",
        "ц": "ts",
        "щ": "şç",
        "ъ": "",
        "ь": "",
        "э": "e",
    },
)

_TR = _Spec(
    back=frozenset("aıou"),
    front=frozenset("eiöü"),
    vowels=frozenset("aıoueiöüâîû"),
    classes=_classes(
        "dır dir dur dür tır tir tur tür ~dır ~dir",
        "ın in un ün ~nın ~nin ~nun ~nün ı i u ü ~yı ~yi ~yu ~yü a e ~ya ~ye "
        "da de ta te dan den tan ten ~nda ~nde ~ndan ~nden ~na ~ne "
        "la le ~yla ~yle daki deki taki teki ~ndaki ~ndeki",
        "ım im um üm ın in un ün ı i u ü ~sı ~si ~su ~sü "
        "ımız imiz umuz ümüz ~mız ~miz ~muz ~müz ınız iniz unuz ünüz ~nız ~niz ~nuz ~nüz "
        "ları leri",
        "lar ler",
    ),
    harmony=True,
    soften={"ğ": "k", "b": "p", "c": "ç", "d": "t"},
    alphabet=frozenset("abcçdefgğhıijklmnoöprsştuüvyzâîû'"),
    voiceless=frozenset("çfhkpsşt"),
    hard_initials=frozenset("t"),
    soft_initials=frozenset("d"),
)

_KK = _Spec(
    back=frozenset("аоұыя"),
    front=frozenset("әеөүіэ"),
    vowels=frozenset("аоұыяәеөүіэиуюё"),
    classes=_classes(
        "мын мін бын бін пын пін мыз міз быз біз пыз піз",
        "ның нің дың дің тың тің ны ні ды ді ты ті ға ге қа ке а е ~на ~не "
        "да де та те ~нда ~нде дан ден тан тен нан нен ~ндан ~нден мен бен пен "
        "дағы дегі тағы тегі ~ндағы ~ндегі",
        "ым ім ың ің ыңыз іңіз ~ңыз ~ңіз ы і ~сы ~сі ын ін ~сын ~сін ымыз іміз ~мыз ~міз",
        "лар лер дар дер тар тер",
    ),
    harmony=True,
    soften={"ғ": "қ", "г": "к", "б": "п"},
    alphabet=frozenset("аәбвгғдеёжзийкқлмнңоөпрстуұүфхһцчшщъыіьэюя"),
    voiceless=frozenset("пфктсшщхцчқ"),
    hard_initials=frozenset("ктқп"),
    soft_initials=frozenset("дгғб"),
    unharmonised=frozenset(("мен", "бен", "пен")),
)

_KY = _Spec(
    back=frozenset("аоуыя"),
    front=frozenset("еөүиэ"),
    vowels=frozenset("аоуыяеөүиэюё"),
    classes=_classes(
        "мын мин мун мүн мын быз биз буз бүз пыз пиз пуз пүз сың сиң суң сүң",
        "нын нин нун нүн дын дин дун дүн тын тин тун түн "
        "ны ни ну нү ды ди ду дү ты ти ту тү "
        "га ге го гө ка ке ко кө а е о ө ~на ~не ~но ~нө "
        "да де до дө та те то тө ~нда ~нде ~ндо ~ндө "
        "дан ден дон дөн тан тен тон төн ~нан ~нен ~нон ~нөн ~ндан ~нден ~ндон ~ндөн "
        "менен ~менен ~нен дагы деги дагы догу дөгү тагы теги ~ндагы ~ндеги",
        "ым им ум үм ың иң уң үң ыңыз иңиз уңуз үңүз ~ңыз ~ңиз ~ңуз ~ңүз "
        "ы и у ү ~сы ~си ~су ~сү ын ин ун үн ~сын ~син ~сун ~сүн "
        "ыбыз ибиз убуз үбүз ~быз ~биз ~буз ~бүз",
        "лар лер лор лөр дар дер дор дөр тар тер тор төр",
    ),
    harmony=True,
    soften={"г": "к", "б": "п"},
    alphabet=frozenset("абвгдеёжзийклмнңоөпрстуүфхцчшщъыьэюя"),
    voiceless=frozenset("пфктсшщхцч"),
    hard_initials=frozenset("ктп"),
    soft_initials=frozenset("дгб"),
    unharmonised=frozenset(("менен",)),
)

_UZ_CYRILLIC = {
    **dict(zip("абвгджзийклмнопрстуфхэ", "abvgdjziyklmnoprstufxe", strict=True)),
    "е": "e",  # "ye" at the start of a word and after a vowel: see _transliterate
    "ё": "yo",
    "ц": "ts",
    "ч": "ch",
    "ш": "sh",
    "ъ": "'",
    "ь": "",
    "ю": "yu",
    "я": "ya",
    "ў": "o'",
    "қ": "q",
    "ғ": "g'",
    "ҳ": "h",
}
_UZ = _Spec(
    back=frozenset(),
    front=frozenset(),
    vowels=frozenset("aeiou"),
    classes=_classes(
        "dir mi",
        "ning ni ga ka qa da ta dan tan dagi gacha cha",
        "im ing ~ng i ~si imiz ~miz ingiz ~ngiz lari",
        "lar",
    ),
    harmony=False,
    soften={"g'": "q", "g": "k"},
    alphabet=frozenset("abcdefghijklmnopqrstuvxyz'"),
    transliterate=_UZ_CYRILLIC,
)

_SPECS = {"az": _AZ, "tr": _TR, "kk": _KK, "ky": _KY, "uz": _UZ}
TURKIC_LANGUAGES: frozenset[str] = frozenset(_SPECS)
# The Cyrillic alphabets of the languages written in both scripts.
_CYRILLIC_OF = {
    "az": frozenset(_AZ.transliterate or ()),
    "uz": frozenset(_UZ_CYRILLIC),
}


def _transliterate(word: str, table: dict[str, str]) -> str:
    out = []
    for i, ch in enumerate(word):
        if ch == "е" and table is _UZ_CYRILLIC and (i == 0 or word[i - 1] in "аеиоуўэюя"):
            out.append("ye")
        else:
            out.append(table.get(ch, ch))
    return "".join(out)


def admits(language: str, word: str) -> bool:
    """Whether every letter of `word` belongs to an alphabet of `language` (either script)."""
    spec = _SPECS[language]
    letters = set(word)
    if letters <= spec.alphabet:
        return True
    cyrillic = _CYRILLIC_OF.get(language)
    return cyrillic is not None and letters <= cyrillic | {"'"}


def _last_vowel(stem: str, spec: _Spec) -> str | None:
    for ch in reversed(stem):
        if ch in spec.back or ch in spec.front:
            return ch
    return None


def _harmonises(stem: str, suffix: str, spec: _Spec) -> bool:
    if not spec.harmony or suffix in spec.unharmonised:
        return True
    suffix_vowel = next((ch for ch in suffix if ch in spec.back or ch in spec.front), None)
    stem_vowel = _last_vowel(stem, spec)
    if suffix_vowel is None or stem_vowel is None:
        return True
    return (suffix_vowel in spec.back) == (stem_vowel in spec.back)


def _strippable(stem: str, suffix: str, after_vowel: bool, spec: _Spec) -> bool:
    ends_in_vowel = stem[-1:] in spec.vowels
    if len(stem) < 2 or (len(stem) == 2 and ends_in_vowel):
        return False  # ev+lər is stripped, ai+lə (ailə) is not
    if len(suffix) == 1 and len(stem) < 3:
        return False
    if not any(ch in spec.vowels for ch in stem):
        return False
    if after_vowel and not ends_in_vowel:
        return False
    if suffix[0] in spec.vowels and ends_in_vowel:
        return False
    if suffix[0] in spec.hard_initials and stem[-1] not in spec.voiceless:
        return False
    if suffix[0] in spec.soft_initials and stem[-1] in spec.voiceless:
        return False
    return _harmonises(stem, suffix, spec)


def _strips(word: str, spec: _Spec, first: int) -> list[tuple[str, int]]:
    """Every (stem, class) one suffix of class `first` or later can be stripped to."""
    found = []
    for k in range(first, len(spec.classes)):
        for suffix, after_vowel in spec.classes[k]:
            if word.endswith(suffix) and _strippable(
                word[: -len(suffix)], suffix, after_vowel, spec
            ):
                found.append((word[: -len(suffix)], k))
    return found


def _stems(word: str, spec: _Spec) -> set[str]:
    """Every stem `word` strips down to: one suffix per class and pass, outside-in, passes
    repeated until nothing strips (at most `_MAX_PASSES`). Where two readings exist
    (``məclis+i`` or ``məcli+si``) both are kept, at most `_MAX_STEMS` in all."""
    leaves: set[str] = set()
    todo = [(word, 0, 0)]  # (word, first class, pass)
    while todo and len(leaves) < _MAX_STEMS:
        current, first, passes = todo.pop()
        options = _strips(current, spec, first)
        if options:
            todo.extend((stem, k + 1, passes) for stem, k in options)
        elif first > 0 and passes + 1 < _MAX_PASSES:
            todo.append((current, 0, passes + 1))  # another pass from the outermost class
        else:
            leaves.add(current)
    return leaves or {word}


def _soften(stem: str, spec: _Spec) -> str:
    for soft, hard in spec.soften.items():
        if stem.endswith(soft) and len(stem) > len(soft) + 1:
            return stem[: -len(soft)] + hard
    return stem


# The callers cache their keys per word: this cache only spares the query side and repeats.
@lru_cache(maxsize=4096)
def turkic_stem(language: str, word: str) -> frozenset[str]:
    """The stems of one normalised word of `language` ('az', 'tr', 'kk', 'ky' or 'uz'):
    usually one; two readings of its suffixes give two."""
    spec = _SPECS[language]
    if spec.transliterate is not None and not set(word) <= spec.alphabet:
        word = _transliterate(word, spec.transliterate)
    if language != "uz":  # Uzbek writes o' and g' with the apostrophe
        head, apostrophe, _ = word.partition("'")
        if apostrophe and len(head) >= 2:
            word = head  # Bakı'ya, Türkiye'nin: a proper name and its suffix
    return frozenset(_soften(stem, spec) for stem in _stems(word, spec))
