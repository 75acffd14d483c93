"""Recall and precision of `word_keys` matching on real Russian and Ukrainian text.

Reference labelling: pymorphy3's analyses. Two surface forms of the text are "the same word"
iff pymorphy3 gives them a common normal form among their noun / verb / infinitive /
adjective analyses (participles, gerunds and comparatives are derivation-like and left out).
Queries: up to 300 lemmas (fixed seed) that have at least 3 distinct forms in the text; each
lemma is typed as the query, as an analyst would type the dictionary form.

For a query lemma L, relevant = the text's forms whose reference normal forms include L;
retrieved = the text's forms whose `word_keys` intersect `word_keys(L)`. Recall and precision
are micro-averaged over the queries, by distinct form ("types") and by occurrence ("tokens").

Circularity: the deployed keys for Russian and Ukrainian words ARE pymorphy3 lemmas (with a
Snowball stem for words the dictionaries do not know), so the pymorphy3-graded figures mostly
check routing (which dictionary a word goes to), the ru/uk ambiguity policy and the unknown-word
fallback; they are an upper bound, not independent evidence. Two checks do not grade pymorphy3
with itself:
* `*_snowball_only`: a reducer that does not use pymorphy3 (Snowball Russian stems), graded
  against the same pymorphy3 reference;
* `gold`: both reducers graded against `bench/inflection_gold.json`, a hand-labelled set of
  ~30 lemmas per language with every inflected form of each in the text, judged by a person
  and not derived from pymorphy3. Recall/precision over the whole vocabulary of the text.

`gold_turkic_en`: az, tr, kk, ky, uz and en, graded against hand-labelled sets in the same file
(not derived from any stemmer), with post words reduced as the triage worker reduces them (by
the post's language, `post_word_keys`) and the query by every language its letters allow
(`query_word_keys`); `letters_only` is the reduction before issue 11 (`word_keys` both
sides), `tr_snowball` Snowball's Turkish stemmer alone. az-Cyrl and uz-Cyrl are the Latin text
and gold transliterated by the official tables. Bar: recall >= 0.95, precision >= 0.90.

Usage: .venv/bin/python bench/inflection.py [--data ../shared/data] [--queries 300]
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot.triage.inflection import post_word_keys, query_word_keys, word_keys  # noqa: E402
from bot.triage.normalise import normalise, normalise_word  # noqa: E402

FILES = {"ru": "newstest2019-ref.rus.txt", "uk": "newstest2019-ref.ukr.txt"}
CONTENT_POS = frozenset({"NOUN", "VERB", "INFN", "ADJF", "ADJS"})
MIN_FORMS = 3


def reference_lemmas(morph: Any, form: str) -> frozenset[str]:
    """Normal forms of the content-word analyses of `form` (pronominal adjectives such as
    этот/тот are pronouns, not content words: left out)."""
    return frozenset(
        p.normal_form.replace("ё", "е")
        for p in morph.parse(form)
        if p.tag.POS in CONTENT_POS and "Apro" not in str(p.tag)
    )


def evaluate(
    counts: Counter[str],
    reference: dict[str, frozenset[str]],
    queries: list[str],
    keys_of: Callable[[str], frozenset[str]],
    query_keys_of: Callable[[str], frozenset[str]] | None = None,
) -> dict[str, float]:
    """`keys_of` reduces the text's forms; `query_keys_of` (default: the same) the queries."""
    query_keys_of = query_keys_of or keys_of
    form_keys = {form: keys_of(form) for form in counts}
    by_key: dict[str, set[str]] = defaultdict(set)
    for form, keys in form_keys.items():
        for key in keys:
            by_key[key].add(form)
    hit_t = ret_t = rel_t = 0
    hit_o = ret_o = rel_o = 0
    for lemma in queries:
        relevant = {f for f, lemmas in reference.items() if lemma in lemmas}
        retrieved: set[str] = set()
        for key in query_keys_of(normalise_word(lemma)):
            retrieved |= by_key.get(key, set())
        hits = relevant & retrieved
        hit_t += len(hits)
        ret_t += len(retrieved)
        rel_t += len(relevant)
        hit_o += sum(counts[f] for f in hits)
        ret_o += sum(counts[f] for f in retrieved)
        rel_o += sum(counts[f] for f in relevant)
    return {
        "recall": round(hit_o / rel_o, 4),
        "precision": round(hit_o / ret_o, 4),
        "recall_types": round(hit_t / rel_t, 4),
        "precision_types": round(hit_t / ret_t, 4),
    }


def evaluate_gold(
    counts: Counter[str],
    gold: dict[str, list[str]],
    keys_of: Callable[[str], frozenset[str]],
    query_keys_of: Callable[[str], frozenset[str]] | None = None,
) -> dict[str, Any]:
    """Recall/precision against hand-labelled form sets (every form of the text retrievable)."""
    query_keys_of = query_keys_of or keys_of
    gold = {normalise_word(lemma): forms for lemma, forms in gold.items()}
    reference = {
        form: frozenset(lemma for lemma, forms in gold.items() if form in forms) for form in counts
    }
    scores = evaluate(counts, reference, sorted(gold), keys_of, query_keys_of)
    missed = sorted(
        f"{lemma}:{form}"
        for lemma, forms in gold.items()
        for form in forms
        if form in counts and not keys_of(form) & query_keys_of(lemma)
    )
    by_key: dict[str, set[str]] = defaultdict(set)
    for form in counts:
        for key in keys_of(form):
            by_key[key].add(form)
    wrong = sorted(
        f"{lemma}:{form}"
        for lemma, forms in gold.items()
        for key in query_keys_of(lemma)
        for form in by_key.get(key, ())
        if form not in forms
    )
    in_text = sum(1 for forms in gold.values() for form in forms if form in counts)
    return {
        "lemmas": len(gold),
        "forms_in_text": in_text,
        **scores,
        "missed": missed[:12],
        "wrongly_found": sorted(set(wrong))[:12],
    }


# Turkic and English gold (bench/inflection_gold.json): file, the post language the text is
# triaged as, and a transliteration into the other script where the language has two.
TURKIC_FILES = {
    "az": "newstest2019-ref.aze-Latn.txt",
    "tr": "newstest2019-ref.tur.txt",
    "kk": "newstest2019-ref.kaz.txt",
    "ky": "newstest2019-ref.kir.txt",
    "uz": "newstest2019-ref.uzb.txt",
    "en": "newstest2019-src.eng.txt",
}
# Official Latin → Cyrillic tables: Azerbaijani (1958 alphabet), Uzbek (1940 alphabet, the one
# Uzbek Cyrillic is still written in). Digraphs first.
AZ_TO_CYRILLIC = dict(
    zip("abcçdeəfgğhxıijkqlmnoöprsştuüvyz", "абҹчдеәфҝғһхыижкглмноөпрсштуүвјз", strict=True)
)
UZ_TO_CYRILLIC_DIGRAPHS = (
    ("o'", "ў"),
    ("g'", "ғ"),
    ("sh", "ш"),
    ("ch", "ч"),
    ("ya", "я"),
    ("yu", "ю"),
    ("yo", "ё"),
)
UZ_TO_CYRILLIC = dict(zip("abdefghijklmnopqrstuvxyz'", "абдефгҳижклмнопқрстувхйзъ", strict=True))


def to_cyrillic(language: str, word: str) -> str:
    if language == "az":
        return "".join(AZ_TO_CYRILLIC.get(ch, ch) for ch in word)
    out = []
    i = 0
    while i < len(word):
        for latin, cyrillic in UZ_TO_CYRILLIC_DIGRAPHS:
            if word.startswith(latin, i):
                out.append(cyrillic)
                i += len(latin)
                break
        else:
            ch = word[i]
            out.append("э" if ch == "e" and i == 0 else UZ_TO_CYRILLIC.get(ch, ch))
            i += 1
    return "".join(out)


def turkic_and_english(data: Path, gold_sets: dict[str, Any]) -> dict[str, Any]:
    """Each language's gold, reduced as deployed (post words by the post's language, the
    query by every language its letters allow) and as before this bench's issue (letters
    only), plus az and uz in Cyrillic."""
    results: dict[str, Any] = {}
    for lang, name in TURKIC_FILES.items():
        text = (data / "ntrex" / name).read_text(encoding="utf-8")
        counts: Counter[str] = Counter(
            t.text for t in normalise(text).tokens if t.text.replace("'", "").isalpha()
        )
        gold = gold_sets[lang]
        variants = [(lang, counts, gold)]
        if lang in ("az", "uz"):
            cyr_counts: Counter[str] = Counter()
            for form, n in counts.items():
                cyr_counts[normalise_word(to_cyrillic(lang, form))] += n
            cyr_gold = {
                to_cyrillic(lang, normalise_word(lemma)): [
                    normalise_word(to_cyrillic(lang, f)) for f in forms
                ]
                for lemma, forms in gold.items()
            }
            variants.append((f"{lang}-Cyrl", cyr_counts, cyr_gold))
        for label, vocabulary, labelled in variants:

            def post_keys(form: str, lang: str = lang) -> frozenset[str]:
                return post_word_keys(form, lang)

            results[label] = {
                "deployed": evaluate_gold(vocabulary, labelled, post_keys, query_word_keys),
                "letters_only": evaluate_gold(vocabulary, labelled, word_keys),
            }
            if label == "tr":
                import Stemmer

                snowball = Stemmer.Stemmer("turkish").stemWord

                def snowball_keys(form: str, stem: Any = snowball) -> frozenset[str]:
                    return frozenset((stem(form.partition("'")[0] or form),))

                results["tr_snowball"] = evaluate_gold(vocabulary, labelled, snowball_keys)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()

    import pymorphy3
    import Stemmer

    ru_stem = Stemmer.Stemmer("russian").stemWord
    gold_sets = json.loads((REPO / "bench" / "inflection_gold.json").read_text(encoding="utf-8"))
    result: dict[str, Any] = {"bench": "inflection", "reference": "pymorphy3"}
    started = time.perf_counter()
    for lang, name in FILES.items():
        text = (args.data / "ntrex" / name).read_text(encoding="utf-8")
        counts: Counter[str] = Counter(t.text for t in normalise(text).tokens if t.text.isalpha())
        morph = pymorphy3.MorphAnalyzer(lang=lang)
        reference = {form: reference_lemmas(morph, form) for form in counts}
        forms_of: dict[str, set[str]] = defaultdict(set)
        for form, lemmas in reference.items():
            for lemma in lemmas:
                forms_of[lemma].add(form)
        candidates = sorted(lemma for lemma, forms in forms_of.items() if len(forms) >= MIN_FORMS)
        queries = random.Random(2019).sample(candidates, min(args.queries, len(candidates)))
        scores = evaluate(counts, reference, queries, word_keys)
        result[lang] = {"queries": len(queries), "forms": len(counts), **scores}

        # A reducer that does not use pymorphy3 at all, graded against it honestly.
        def snowball(w: str) -> frozenset[str]:
            return frozenset((ru_stem(w),))

        result[f"{lang}_snowball_only"] = evaluate(counts, reference, queries, snowball)

        def post_keys(form: str, lang: str = lang) -> frozenset[str]:
            return post_word_keys(form, lang)

        result[f"{lang}_gold"] = {
            "deployed": evaluate_gold(counts, gold_sets[lang], post_keys, query_word_keys),
            "snowball_only": evaluate_gold(counts, gold_sets[lang], snowball),
        }
    result["gold_turkic_en"] = turkic_and_english(args.data, gold_sets)
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["bar"] = {
        "recall": 0.95,
        "precision": 0.90,
        "ru_uk": {"recall": 0.97, "precision": 0.95},
    }
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
