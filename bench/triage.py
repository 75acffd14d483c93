"""Triage throughput against a per-watch regex loop, at 100 and 10,000 watches.

Watches are built from real vocabulary (words, 2-3-word phrases, prefixes, and a few OR, NEAR,
NOT, exact and regex watches) drawn from the NTREX sentences of every language in
`../shared/data/ntrex/` (relative to the repository root; the data is read in place). Posts
are the same sentences joined 2-4 at a time. Full triage — normalise, language, match,
priority — runs on one core; in the same run the naive baseline searches, for every watch, a
compiled case-insensitive `re` pattern of its words over the post text, the way keyword bots
do (over a subset of posts when it is slow). Rates are per post.

`posts_per_s` is the steady state of a running worker, whose vocabulary repeats: a window of
posts (1,000, about 30,000 distinct words) timed after one pass over it has filled the
per-word inflection cache. `cold_posts_per_s` is one pass over all the posts with every word
new to the process, so each goes through the stemmers and the pymorphy3 dictionaries.
`stage_us` splits the steady state per post: normalise, language, match and priority.

`add_ms` / `remove_ms`: the median time to add (including the next post's rebuild of any
lazily compiled structure) or remove one watch among all the others.

Prints one JSON line per watch count. Run: `.venv/bin/python bench/triage.py`.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import re
import resource
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.models import Post  # noqa: E402
from bot.triage.engine import TriageEngine, WatchSpec  # noqa: E402
from bot.triage.inflection import post_keys  # noqa: E402
from bot.triage.language import make_detector  # noqa: E402
from bot.triage.normalise import normalise  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "ntrex"
PRIORITIES = ("low", "normal", "normal", "normal", "high", "urgent")


def load_sentences() -> dict[str, list[str]]:
    out = {}
    for path in sorted(DATA.glob("newstest2019-*.txt")):
        lang = path.name.split(".")[-2]
        out[lang] = [s for s in path.read_text(encoding="utf-8").splitlines() if s.strip()]
    if not out:
        raise SystemExit(f"no NTREX sentences under {DATA}")
    return out


def make_posts(sentences: dict[str, list[str]], rng: random.Random) -> list[Post]:
    posts = []
    date = datetime(2025, 1, 1, tzinfo=UTC)
    for lines in sentences.values():
        i = 0
        while i < len(lines):
            n = rng.randint(2, 4)
            channel = rng.randrange(500)
            posts.append(
                Post(
                    channel_id=1_000_000 + channel,
                    message_id=len(posts) + 1,
                    date=date,
                    text="\n".join(lines[i : i + n]),
                    username=f"chan{channel}",
                )
            )
            i += n
    rng.shuffle(posts)
    return posts


def _words(sentence: str) -> list[str]:
    """The words of a sentence as an analyst would type them (original spelling)."""
    nt = normalise(sentence)
    return [
        sentence[t.start : t.end]
        for t in nt.tokens
        if t.text.replace("'", "").isalpha() and len(t.text) >= 2
    ]


def make_watches(
    sentences: dict[str, list[str]], count: int, rng: random.Random
) -> list[tuple[WatchSpec, list[str]]]:
    """(spec, naive regex parts) pairs; the parts are what a keyword bot would search for.

    Single words are drawn uniformly from each language's distinct words of 5+ letters (the
    vocabulary, not the running text, so watches are not mostly the commonest words);
    phrases and NEAR pairs come from one sentence.
    """
    langs = sorted(sentences)
    split = {lang: [_words(s) for s in lines] for lang, lines in sentences.items()}
    vocab = {
        lang: sorted({w for words in split[lang] for w in words if len(w) >= 5}) for lang in langs
    }
    out: list[tuple[WatchSpec, list[str]]] = []
    seen: set[str] = set()
    while len(out) < count:
        lang = rng.choice(langs)
        words = rng.choice(split[lang])
        a, b = rng.sample(vocab[lang], 2)
        kind = rng.random()
        if kind < 0.55:
            query, parts = a, [re.escape(a)]
        elif kind < 0.75:
            if len(words) < 3:
                continue
            start = rng.randrange(len(words) - 1)
            phrase = words[start : start + rng.randint(2, 3)]
            if max(len(w) for w in phrase) < 4:
                continue
            query, parts = '"' + " ".join(phrase) + '"', [r"\W+".join(map(re.escape, phrase))]
        elif kind < 0.85:
            if len(a) < 6:
                continue
            stem = a[: max(4, len(a) - 3)]
            query, parts = stem + "*", [r"\b" + re.escape(stem)]
        elif kind < 0.90:
            query, parts = f"{a} OR {b}", [re.escape(a), re.escape(b)]
        elif kind < 0.95:
            near = [w for w in words if len(w) >= 5]
            if len(near) < 2:
                continue
            a, b = rng.sample(near, 2)
            query, parts = f"{a} NEAR/5 {b}", [re.escape(a), re.escape(b)]
        elif kind < 0.99:
            query, parts = f"{a} -{b}", [re.escape(a)]
        elif kind < 0.998:
            query, parts = f"={a}", [r"\b" + re.escape(a) + r"\b"]
        else:
            pattern = f"{re.escape(a.casefold())}|{re.escape(b.casefold())}"
            query, parts = f"/{pattern}/", [pattern]
        if query in seen:
            continue
        seen.add(query)
        spec = WatchSpec(len(out) + 1, 1000 + len(out) % 50, query, rng.choice(PRIORITIES))
        out.append((spec, parts))
    return out


def _cache_counts() -> tuple[int, int]:
    """(hits, misses) of the inflection module's word cache, when it keeps count."""
    info = getattr(post_keys, "cache_info", None)
    if info is None:
        return 0, 0
    counts = info()
    return counts.hits, counts.misses


def run_engine(engine: TriageEngine, posts: list[Post]) -> tuple[float, int]:
    matched = 0
    start = time.perf_counter()
    for post in posts:
        matched += len(engine.triage(post).matches)
    return time.perf_counter() - start, matched


def run_naive(patterns: list[re.Pattern[str]], posts: list[Post]) -> tuple[float, int]:
    matched = 0
    start = time.perf_counter()
    for post in posts:
        text = post.text
        for pattern in patterns:
            if pattern.search(text):
                matched += 1
    return time.perf_counter() - start, matched


def stage_costs(engine: TriageEngine, posts: list[Post]) -> dict[str, float]:
    """Microseconds per post of each stage of the steady state (caches warm)."""
    detector = make_detector("py3langid")
    engine_s, _ = run_engine(engine, posts)
    start = time.perf_counter()
    for post in posts:
        normalise(post.text)
    normalise_s = time.perf_counter() - start
    start = time.perf_counter()
    for post in posts:
        detector.detect(post.text)
    language_s = time.perf_counter() - start
    per_post = 1e6 / len(posts)
    return {
        "normalise": round(normalise_s * per_post, 1),
        "language": round(language_s * per_post, 1),
        "match_and_priority": round((engine_s - normalise_s - language_s) * per_post, 1),
        "total": round(engine_s * per_post, 1),
    }


def churn(engine: TriageEngine, extra: list[WatchSpec]) -> tuple[float, float]:
    """Median ms to add (plus the next post) and to remove one watch."""
    probe = Post(channel_id=1, message_id=1, date=datetime(2025, 1, 1, tzinfo=UTC), text="x")
    engine.triage(probe)
    base = []
    for _ in range(len(extra)):
        t = time.perf_counter()
        engine.triage(probe)
        base.append(time.perf_counter() - t)
    adds, removes = [], []
    for spec in extra:
        t = time.perf_counter()
        engine.add_watch(spec)
        engine.triage(probe)
        adds.append(time.perf_counter() - t)
    for spec in extra:
        t = time.perf_counter()
        engine.remove_watch(spec.id)
        engine.triage(probe)
        removes.append(time.perf_counter() - t)
    return statistics.median(adds) * 1000, statistics.median(removes) * 1000


def bench(
    count: int,
    sentences: dict[str, list[str]],
    posts: list[Post],
    naive_max: int,
    steady_posts: int,
) -> dict[str, object]:
    rng = random.Random(count)
    watches = make_watches(sentences, count + 40, rng)
    main, extra = watches[:count], watches[count:]
    engine = TriageEngine(make_detector("py3langid"))
    start = time.perf_counter()
    for spec, _ in main:
        engine.add_watch(spec)
    build_s = time.perf_counter() - start
    # A worker freezes what it built at start (models, dictionaries, the compiled watches) out
    # of the cyclic garbage collector's way, as bot.app does; otherwise every full collection
    # walks them all again.
    gc.collect()
    gc.freeze()
    # Cold: every word of the posts is new to the process (the inflection caches are empty).
    cold_elapsed, _ = run_engine(engine, posts)
    # Steady state: a running worker's vocabulary repeats, so word reductions are cached. A
    # window of posts whose vocabulary fits the inflection cache, once to warm it, then timed.
    window = posts[:steady_posts]
    run_engine(engine, window)
    before = _cache_counts()
    elapsed, matched = run_engine(engine, window)
    after = _cache_counts()
    lookups = (after[0] - before[0]) + (after[1] - before[1])
    hit_rate = (after[0] - before[0]) / lookups if lookups else None
    stages = stage_costs(engine, window)
    add_ms, remove_ms = churn(engine, [spec for spec, _ in extra])

    patterns = [re.compile("|".join(parts), re.IGNORECASE) for _, parts in main]
    naive_posts = posts[:naive_max]
    naive_elapsed, naive_matched = run_naive(patterns, naive_posts)
    posts_per_s = len(window) / elapsed
    naive_per_s = len(naive_posts) / naive_elapsed
    return {
        "bench": "triage",
        "watches": count,
        "posts": len(window),
        "posts_per_s": round(posts_per_s, 1),
        "cold_posts": len(posts),
        "cold_posts_per_s": round(len(posts) / cold_elapsed, 1),
        "naive_posts": len(naive_posts),
        "naive_posts_per_s": round(naive_per_s, 1),
        "ratio": round(posts_per_s / naive_per_s, 1),
        "matches_per_post": round(matched / len(window), 2),
        "naive_hits_per_post": round(naive_matched / len(naive_posts), 2),
        "stage_us": stages,
        "steady_word_cache_hit_rate": None if hit_rate is None else round(hit_rate, 3),
        "build_s": round(build_s, 2),
        "add_ms": round(add_ms, 3),
        "remove_ms": round(remove_ms, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watches", type=int, nargs="*", default=[100, 10_000])
    parser.add_argument(
        "--posts", type=int, default=6000, help="posts, a sample of every language (0 = all)"
    )
    parser.add_argument("--naive-posts", type=int, default=300)
    parser.add_argument(
        "--steady-posts",
        type=int,
        default=1000,
        help="the steady-state window (its vocabulary must fit the inflection cache)",
    )
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    sentences = load_sentences()
    posts = make_posts(sentences, random.Random(7))
    if args.posts:
        posts = posts[: args.posts]
    for count in args.watches:
        naive_max = len(posts) if count <= 1000 else args.naive_posts
        result = bench(count, sentences, posts, naive_max, args.steady_posts)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
