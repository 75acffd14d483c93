"""Spelling tricks: is a watched word still found when a channel disguises it?

Real sentences from ../shared/data/ntrex/newstest2019-ref.rus.txt that hold a form of one of
the hand-labelled Russian lemmas of bench/inflection_gold.json. Each sentence is posted once
per trick with that form disguised (and once untouched, the control), and the bare lemma is
the watch. `detected` is the share of disguised posts the watch matches, with the disguised
word highlighted. False positives: every lemma watch over every untouched sentence that holds
none of its gold forms, counted for the deployed index and for the reduction before issue 11
(letters only: `word_keys` both sides), which stands for "today's" figure.

Beside the lemma watches, the index holds `--distractors` other watches (the commonest words
of the same text), so that masks are resolved against a realistic term dictionary;
`other_watch_by_reading` counts the disguised posts where a watch other than the lemma's
matched the disguised word only through the new readings (a spaced-out run read as one word,
a mask filled) and not on the untouched word: the false positives the tricks' folding adds.
Matches of the pieces as written (a letter "я" of a spaced-out word meeting a watch on "меня")
are not counted: those tokens were there before. Some are real ambiguity: с*общ*ла is
сообщила or сообщала, к*мпании компании or кампании, "в о п р о с" вопрос or в опрос.

Usage: .venv/bin/python bench/evasion.py [--data ../shared/data] [--sentences 300]
    [--distractors 2000]
Prints one JSON line. Bar: detected >= 0.95 for every trick; false positives no higher.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot.triage.index import WatchIndex, WatchSpec  # noqa: E402
from bot.triage.inflection import word_keys  # noqa: E402
from bot.triage.normalise import normalise, normalise_word  # noqa: E402

_TRANSLIT = dict(zip("абвгдезийклмнопрстуфыэ", "abvgdeziyklmnoprstufye", strict=True))
_TRANSLIT |= {"ж": "zh", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "shch", "ь": ""}
_TRANSLIT |= {"ю": "yu", "я": "ya", "ё": "yo", "ъ": ""}
_LOOKALIKE = str.maketrans("аоеср", "αοεςρ")


def _first_vowel(word: str) -> int:
    return next((i for i, ch in enumerate(word) if i > 0 and ch in "аоеиуя"), len(word) // 2)


def _replace_at(word: str, i: int, new: str) -> str:
    return word[:i] + new + word[i + 1 :]


def _digits(word: str) -> str | None:
    for letter, digit in (("а", "4"), ("о", "0"), ("з", "3"), ("б", "6")):
        i = word.find(letter, 1)
        if 0 < i < len(word) - 1:
            return _replace_at(word, i, digit)
    return None


def _mask_at(word: str, seed: int, mask: str = "*", masks: int = 1) -> str | None:
    """`masks` masks at random inner places (not the first or the last letter)."""
    if len(word) < 5:
        return None
    places = random.Random(seed).sample(range(1, len(word) - 1), masks)
    for i in places:
        word = _replace_at(word, i, mask)
    return word


def _latin_capitals(word: str) -> str | None:
    table = str.maketrans("аоесрхукмтнв", "AOECPXYKMTHB")
    upper = word.lower().translate(table)
    return upper if upper.isascii() else None


TRICKS: dict[str, Callable[[str], str | None]] = {
    "none": lambda w: w,
    "spaced": lambda w: " ".join(w),
    "dotted": lambda w: ".".join(w),
    "hyphenated": lambda w: "-".join(w),
    "spaced_dot_space": lambda w: ". ".join(w),
    "masked": lambda w: _replace_at(w, _first_vowel(w), "*"),
    "masked_anywhere": lambda w: _mask_at(w, len(w) * 31 + ord(w[0])),
    "masked_underscore": lambda w: _mask_at(w, len(w) * 17 + ord(w[-1]), "_"),
    "masked_hash": lambda w: _mask_at(w, len(w) * 13 + ord(w[1]), "#"),
    "masked_twice": lambda w: _mask_at(w, len(w) * 7, masks=2) if len(w) >= 7 else None,
    "digits": _digits,
    "repeated": lambda w: w[: _first_vowel(w)] + w[_first_vowel(w)] * 3 + w[_first_vowel(w) + 1 :],
    "greek": lambda w: g if (g := w[:1] + w[1:].translate(_LOOKALIKE)) != w else None,
    "latin_accent": lambda w: w.replace("а", "á", 1) if "а" in w[1:] else None,
    "combining": lambda w: w[: _first_vowel(w) + 1] + "\u0301" + w[_first_vowel(w) + 1 :],
    "grave_stress": lambda w: w.replace("и", "и\u0300", 1) if "и" in w else None,
    "hangul_filler": lambda w: w[:2] + "\u3164" + w[2:],
    "zero_width": lambda w: w[:2] + "\u200b" + w[2:],
    "word_joiner": lambda w: w[:2] + "\u2060" + w[2:],
    "latin_capitals": _latin_capitals,
    "transliteration": lambda w: "".join(_TRANSLIT.get(ch, ch) for ch in w.lower()),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--sentences", type=int, default=300)
    parser.add_argument("--distractors", type=int, default=2000)
    args = parser.parse_args()
    started = time.perf_counter()
    gold: dict[str, list[str]] = json.loads(
        (REPO / "bench" / "inflection_gold.json").read_text(encoding="utf-8")
    )["ru"]
    lines = (args.data / "ntrex" / "newstest2019-ref.rus.txt").read_text(encoding="utf-8")
    sentences = [line for line in lines.splitlines() if line.strip()]
    form_to_lemma = {form: lemma for lemma, forms in gold.items() for form in forms}
    cases = []  # (sentence, start, end, lemma)
    for sentence in sentences:
        for token in normalise(sentence).tokens:
            lemma = form_to_lemma.get(token.text)
            if lemma is not None and len(token.text) >= 4:
                cases.append((sentence, token.start, token.end, lemma))
                break
    cases = random.Random(11).sample(cases, min(args.sentences, len(cases)))
    index = WatchIndex()
    ids = {lemma: i for i, lemma in enumerate(sorted(gold), start=1)}
    for lemma, watch_id in ids.items():
        index.add(WatchSpec(watch_id, 1, lemma))
    gold_forms = {form for forms in gold.values() for form in forms} | set(gold)
    counts: dict[str, int] = {}
    for sentence in sentences:
        for token in normalise(sentence).tokens:
            if len(token.text) >= 4 and token.text.isalpha() and token.text not in gold_forms:
                counts[token.text] = counts.get(token.text, 0) + 1
    distractors = sorted(counts, key=lambda w: (-counts[w], w))[: args.distractors]
    for i, word in enumerate(distractors, start=10_000):
        index.add(WatchSpec(i, 1, word))

    detected: dict[str, Any] = {}
    untouched: dict[int, set[int]] = {}  # case -> watches matching the untouched word
    for trick, disguise in TRICKS.items():
        hits = tried = other = 0
        for case, (sentence, start, end, lemma) in enumerate(cases):
            word = sentence[start:end]
            disguised = disguise(word)
            if disguised is None or (disguised == word and trick != "none"):
                continue
            post = sentence[:start] + disguised + sentence[end:]
            tried += 1
            nt = normalise(post)
            on_word = {
                match.watch_id
                for match in index.match(nt, language="ru", channel_id=1)
                if any(s < start + len(disguised) and e > start for s, e in match.spans)
            }
            hits += ids[lemma] in on_word
            if trick == "none":
                untouched[case] = on_word
            elif on_word - untouched[case]:
                as_written = dataclasses.replace(nt, readings=())
                before = {
                    match.watch_id
                    for match in index.match(as_written, language="ru", channel_id=1)
                    if any(s < start + len(disguised) and e > start for s, e in match.spans)
                }
                other += bool(on_word - before - untouched[case])
        detected[trick] = {
            "posts": tried,
            "detected": round(hits / tried, 4) if tried else None,
            "other_watch_by_reading": other,
        }

    # False positives on the untouched sentences: deployed index vs letters-only reduction.
    lemma_keys = {lemma: word_keys(normalise_word(lemma)) for lemma in gold}
    fp_deployed = fp_letters = 0
    for sentence in sentences:
        nt = normalise(sentence)
        forms = {t.text for t in nt.tokens}
        relevant = {lemma for lemma, fs in gold.items() if forms & set(fs)}
        for match in index.match(nt, language="ru", channel_id=1):
            if match.watch_id >= 10_000:
                continue  # a distractor
            lemma = next(lemma for lemma, i in ids.items() if i == match.watch_id)
            fp_deployed += lemma not in relevant
        post_keys = set().union(*(word_keys(f) for f in forms)) if forms else set()
        fp_letters += sum(
            1 for lemma, keys in lemma_keys.items() if keys & post_keys and lemma not in relevant
        )
    print(
        json.dumps(
            {
                "bench": "evasion",
                "language": "ru",
                "sentences": len(cases),
                "watches": len(gold),
                "distractor_watches": len(distractors),
                "tricks": detected,
                "false_positives": {
                    "untouched_sentences": len(sentences),
                    "deployed": fp_deployed,
                    "letters_only_before": fp_letters,
                },
                "bar": {"detected": 0.95, "false_positives": "no higher than before"},
                "seconds": round(time.perf_counter() - started, 1),
            },
            ensure_ascii=False,
        )
    )


if __name__ == "__main__":
    main()
