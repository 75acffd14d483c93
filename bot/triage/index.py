"""The compiled index of all active watches.

Every watch is reduced to a few *triggers* — match keys of its words, exact forms, prefixes,
regexes — chosen so that no post can match the watch without containing one of them (a
negated branch never triggers). Per post, the index looks the post's own keys and forms up in
dictionaries, finds prefixes with one Aho-Corasick pass, and runs the regex watches (through
an RE2 set when there are many); only the watches so found are evaluated against the post.
The cost per post therefore follows the post's length and its matches, not the number of
watches. Adding or removing a watch touches only that watch's triggers.
"""

from __future__ import annotations

import logging
from bisect import bisect_left, bisect_right
from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import ahocorasick
import re2

from bot.triage.inflection import is_known_word, post_keys
from bot.triage.normalise import MASK, NormalisedText
from bot.triage.priority import PRIORITIES
from bot.triage.query import (
    And,
    Channel,
    Exact,
    Lang,
    Near,
    Node,
    Not,
    Or,
    Phrase,
    Prefix,
    Query,
    Regex,
    Word,
    bare_channel_id,
    parse_query,
)

log = logging.getLogger(__name__)

# Above this many regex watches, one RE2 set pass picks the regexes worth running.
_REGEX_SET_MIN = 8
# A masked word (м*гранты) is read with its masks filled by letters the watched words have at
# that place: at most this many readings per word and per post (hostile posts).
_MASK_FILLINGS_PER_WORD = 40
_MASK_FILLINGS_PER_POST = 120
# A mask in the last letters of a word may be any letter (дн*й, a form of день: the letters
# before the mask need not start a watched word).
_MASK_ENDING = 3
# The letters a mask in an ending may stand for, commonest first (Russian text frequency, then
# the other Cyrillic alphabets' own letters; English, then Turkic and other Latin letters).
_CYRILLIC_BY_FREQUENCY = "оеаинтсрвлкмдпуяыьгзбчйхжшюцщэфъіїєґәғқңөұүһўҳҷӣӯјђћљњџ"
_LATIN_BY_FREQUENCY = "eaiotnsrhldcumwfgypbvkjxqzəışğçöüäéèàâêîôû"

Span = tuple[int, int]
Interval = tuple[int, int]  # token positions [start, end)
Trigger = tuple[str, str]  # ("k", key) | ("x", exact form) | ("p", prefix) | ("r", pattern)


@dataclass(frozen=True, slots=True)
class WatchSpec:
    """What the engine needs of a watch."""

    id: int
    owner_id: int
    query: str
    priority: str = "normal"  # urgent | high | normal | low


@dataclass(frozen=True, slots=True)
class WatchMatch:
    """A watch that matched a post: its matched terms and their spans in the original text."""

    watch_id: int
    owner_id: int
    terms: tuple[str, ...]
    spans: tuple[Span, ...]  # (start, end) in the ORIGINAL post text, sorted, non-overlapping


@dataclass(frozen=True, slots=True)
class _Compiled:
    spec: WatchSpec
    query: Query
    triggers: tuple[Trigger, ...]
    certain: bool  # being a candidate already proves the match (a term, or an OR of terms)
    required: tuple[frozenset[str], ...]  # key sets that must all meet the post's keys


class PostView:
    """One post as the evaluator reads it: token positions by key, by form and by prefix."""

    __slots__ = (
        "_cache",
        "_regex_spans",
        "channel_id",
        "form_pos",
        "indexed_prefixes",
        "key_pos",
        "language",
        "nt",
        "prefix_pos",
        "span_forms",
        "span_keys",
        "username",
    )

    def __init__(
        self,
        nt: NormalisedText,
        *,
        language: str,
        channel_id: int,
        username: str | None,
        readings: Iterable[tuple[str, Interval]] = (),
    ) -> None:
        self.nt = nt
        self.language = language
        self.channel_id = bare_channel_id(channel_id)
        self.username = username.lstrip("@").casefold() if username else None
        form_pos: dict[str, list[int]] = {}
        for i, token in enumerate(nt.tokens):
            positions = form_pos.get(token.text)
            if positions is None:
                form_pos[token.text] = [i]
            else:
                positions.append(i)
        key_pos: dict[str, list[int]] = {}
        for form, positions in form_pos.items():
            for key in post_keys(form, language):  # cached by the inflection module
                known = key_pos.get(key)
                if known is None:
                    key_pos[key] = positions
                else:
                    key_pos[key] = sorted(known + positions)
        self.form_pos = form_pos
        self.key_pos = key_pos
        # Words read over several tokens (letters spaced out, masks filled): by form and key.
        span_forms: dict[str, list[Interval]] = {}
        span_keys: dict[str, list[Interval]] = {}
        for form, interval in readings:
            span_forms.setdefault(form, []).append(interval)
            for key in post_keys(form, language):
                span_keys.setdefault(key, []).append(interval)
        self.span_forms = span_forms
        self.span_keys = span_keys
        self.prefix_pos: dict[str, list[int]] = {}
        self.indexed_prefixes: Container[str] = ()
        self._regex_spans: dict[str, list[Span]] = {}
        self._cache: dict[int, list[Interval]] = {}  # by id(node): nodes outlive the view

    def _span_prefix(self, prefix: str) -> list[Interval]:
        return [iv for form, at in self.span_forms.items() if form.startswith(prefix) for iv in at]

    def has_keys(self, keys: Iterable[str]) -> bool:
        """Whether a word of the post (or a reading) has one of `keys`."""
        key_pos = self.key_pos
        if any(k in key_pos for k in keys):
            return True
        span_keys = self.span_keys
        return bool(span_keys) and any(k in span_keys for k in keys)

    def _prefix(self, prefix: str) -> list[int]:
        """Positions of words starting with `prefix`; the index found its own prefixes."""
        found = self.prefix_pos.get(prefix)
        if found is None:
            if prefix in self.indexed_prefixes:
                return []
            found = sorted(
                i for form, at in self.form_pos.items() if form.startswith(prefix) for i in at
            )
            self.prefix_pos[prefix] = found
        return found

    def regex_spans(self, regex: Regex) -> list[Span]:
        """Spans of the regex in the normalised text (computed once per post)."""
        spans = self._regex_spans.get(regex.pattern)
        if spans is None:
            spans = [
                m.span() for m in regex.compiled.finditer(self.nt.text) if m.end() > m.start()
            ]
            self._regex_spans[regex.pattern] = spans
        return spans

    # --- evaluation ---------------------------------------------------------------------

    def holds(self, node: Node) -> bool:
        """Whether the post satisfies the node."""
        if isinstance(node, Word):
            key_pos = self.key_pos
            if any(k in key_pos for k in node.keys):
                return True
            span_keys = self.span_keys  # readings: usually none
            return bool(span_keys) and any(k in span_keys for k in node.keys)
        if isinstance(node, Exact):
            return node.text in self.form_pos or node.text in self.span_forms
        if isinstance(node, Prefix):
            return bool(self._prefix(node.text)) or bool(
                self.span_forms and self._span_prefix(node.text)
            )
        if isinstance(node, And):
            return all(self.holds(c) for c in node.children)
        if isinstance(node, Or):
            return any(self.holds(c) for c in node.children)
        if isinstance(node, Not):
            return not self.holds(node.child)
        if isinstance(node, Regex):
            return bool(self.regex_spans(node))
        if isinstance(node, Channel):
            if node.username is not None:
                return self.username == node.username
            return self.channel_id == node.channel_id
        if isinstance(node, Lang):
            return self.language == node.code
        return bool(self.occurrences(node))

    def occurrences(self, node: Node) -> list[Interval]:
        """Token intervals where a positional node occurs, sorted by start."""
        cached = self._cache.get(id(node))
        if cached is not None:
            return cached
        result: list[Interval]
        if isinstance(node, Word):
            positions: set[int] = set()
            for key in node.keys:
                found = self.key_pos.get(key)
                if found:
                    positions.update(found)
            result = [(i, i + 1) for i in sorted(positions)]
            if self.span_keys:
                result = self._with_spans(
                    result, [iv for k in node.keys for iv in self.span_keys.get(k, ())]
                )
        elif isinstance(node, Exact):
            result = [(i, i + 1) for i in self.form_pos.get(node.text, ())]
            if self.span_forms:
                result = self._with_spans(result, self.span_forms.get(node.text, []))
        elif isinstance(node, Prefix):
            result = [(i, i + 1) for i in self._prefix(node.text)]
            if self.span_forms:
                result = self._with_spans(result, self._span_prefix(node.text))
        elif isinstance(node, Phrase):
            result = self._phrase(node)
        elif isinstance(node, Or):
            merged: set[Interval] = set()
            for child in node.children:
                merged.update(self.occurrences(child))
            result = sorted(merged)
        elif isinstance(node, Near):
            result = sorted({cover for cover, _, _ in self._near_pairs(node)})
        else:
            result = []
        self._cache[id(node)] = result
        return result

    @staticmethod
    def _with_spans(single: list[Interval], spans: list[Interval]) -> list[Interval]:
        return sorted(set(single).union(spans)) if spans else single

    def _phrase(self, node: Phrase) -> list[Interval]:
        if not all(self.holds(unit) for unit in node.units):
            return []
        chains = self.occurrences(node.units[0])
        for unit in node.units[1:]:
            if not chains:
                return []
            ends_at: dict[int, list[int]] = {}
            for s, e in self.occurrences(unit):
                ends_at.setdefault(s, []).append(e)
            chains = [(s, after) for s, e in chains for after in ends_at.get(e, ())]
        return sorted(set(chains)) if len(chains) > 1 else chains

    def _near_pairs(self, node: Near) -> list[tuple[Interval, Interval, Interval]]:
        """(cover, a, b) for every pair of occurrences at most node.distance apart."""
        left = self.occurrences(node.left)
        right = self.occurrences(node.right)
        if not left or not right:
            return []
        starts = [s for s, _ in right]
        longest = max(e - s for s, e in right)
        n = node.distance
        out = []
        for a in left:
            lo = bisect_left(starts, a[0] - n + 1 - longest)
            hi = bisect_right(starts, a[1] + n - 1)
            for b in right[lo:hi]:
                if a[1] <= b[0]:
                    gap = b[0] - a[1] + 1
                elif b[1] <= a[0]:
                    gap = a[0] - b[1] + 1
                else:
                    gap = 0
                if gap <= n:
                    out.append(((min(a[0], b[0]), max(a[1], b[1])), a, b))
        return out

    # --- highlighting -------------------------------------------------------------------

    def highlight(self, node: Node, terms: list[str], spans: list[Span]) -> None:
        """Collect the matched terms and their original-text spans of a node that holds."""
        if isinstance(node, Not | Channel | Lang):
            return
        if isinstance(node, And):
            for child in node.children:
                self.highlight(child, terms, spans)
        elif isinstance(node, Or):
            for child in node.children:
                if self.holds(child):
                    self.highlight(child, terms, spans)
        elif isinstance(node, Near):
            pairs = self._near_pairs(node)
            self._highlight_at(node.left, {a for _, a, _ in pairs}, terms, spans)
            self._highlight_at(node.right, {b for _, _, b in pairs}, terms, spans)
        elif isinstance(node, Regex):
            found = self.regex_spans(node)
            if found:
                terms.append(str(node))
                original_span = self.nt.original_span
                spans.extend(original_span(s, e) for s, e in found)
        else:
            found_at = self.occurrences(node)
            if found_at:
                terms.append(str(node))
                spans.extend(self._original(found_at))

    def _highlight_at(
        self, node: Node, where: set[Interval], terms: list[str], spans: list[Span]
    ) -> None:
        """Highlight only the occurrences of a NEAR operand that are close enough."""
        if isinstance(node, Or | Near):
            for child in node.children if isinstance(node, Or) else (node.left, node.right):
                inside = [iv for iv in self.occurrences(child) if _within(iv, where)]
                if inside:
                    self._highlight_at(child, set(inside), terms, spans)
            return
        chosen = [iv for iv in self.occurrences(node) if iv in where]
        if chosen:
            terms.append(str(node))
            spans.extend(self._original(chosen))

    def _original(self, intervals: Iterable[Interval]) -> list[Span]:
        tokens = self.nt.tokens
        return [(tokens[s].start, tokens[e - 1].end) for s, e in intervals]


def _is_cyrillic(ch: str) -> bool:
    return "\u0400" <= ch <= "\u052f"


def _unit_texts(query: Query) -> list[str]:
    """The texts of a query's words, exact forms and prefixes (phrase units included)."""
    out: list[str] = []
    for term in query.terms:
        units: Sequence[Node] = term.units if isinstance(term, Phrase) else (term,)
        out.extend(u.text for u in units if isinstance(u, Word | Exact | Prefix))
    return out


def _within(interval: Interval, covers: set[Interval]) -> bool:
    return any(c[0] <= interval[0] and interval[1] <= c[1] for c in covers)


def merge_spans(spans: Iterable[Span]) -> tuple[Span, ...]:
    """Sorted, non-overlapping spans (overlapping or touching spans joined)."""
    ordered = sorted(spans)
    if len(ordered) == 1 and ordered[0][0] < ordered[0][1]:
        return (ordered[0],)
    out: list[list[int]] = []
    for start, end in ordered:
        if end <= start:
            continue
        if out and start <= out[-1][1]:
            out[-1][1] = max(out[-1][1], end)
        else:
            out.append([start, end])
    return tuple((s, e) for s, e in out)


# --- triggers ----------------------------------------------------------------------------------


def _rarity(length: int) -> float:
    """A rough expected frequency of a word of this many letters: short words are common."""
    return 4.0 ** -min(length, 12)


def _plan(node: Node) -> tuple[tuple[Trigger, ...], float] | None:
    """Triggers of a node and the estimated chance that a post holds one of them."""
    if isinstance(node, Word):
        keys = tuple(("k", key) for key in sorted(node.keys))
        return keys, _rarity(len(node.text)) * (1 + 0.1 * (len(keys) - 1))
    if isinstance(node, Exact):
        return (("x", node.text),), _rarity(len(node.text) + 1)
    if isinstance(node, Prefix):
        return (("p", node.text),), _rarity(len(node.text) - 1)
    if isinstance(node, Regex):
        return (("r", node.pattern),), _rarity(4)
    if isinstance(node, Phrase):
        return _cheapest([_plan(u) for u in node.units])
    if isinstance(node, Near):
        return _cheapest([_plan(node.left), _plan(node.right)])
    if isinstance(node, And):
        return _cheapest([_plan(c) for c in node.children])
    if isinstance(node, Or):
        union: dict[Trigger, None] = {}
        cost = 0.0
        for child in node.children:
            planned = _plan(child)
            if planned is None:
                return None
            union.update(dict.fromkeys(planned[0]))
            cost += planned[1]
        return tuple(union), cost
    return None  # Not, Channel, Lang: a post can satisfy them without any term


def _cheapest(
    options: list[tuple[tuple[Trigger, ...], float] | None],
) -> tuple[tuple[Trigger, ...], float] | None:
    usable = [o for o in options if o is not None]
    return min(usable, key=lambda o: o[1]) if usable else None


def triggers_of(node: Node) -> tuple[Trigger, ...] | None:
    """Terms of which every post matching `node` contains at least one; None if there are none.

    Where all of several parts must hold (AND, a phrase, NEAR), the part least likely to occur
    (the longest word, roughly) is enough.
    """
    planned = _plan(node)
    return planned[0] if planned else None


def required_keys(node: Node) -> tuple[frozenset[str], ...]:
    """Key sets of words that must all occur in a post the node matches (a cheap pre-check)."""
    if isinstance(node, Word):
        return (node.keys,)
    if isinstance(node, Phrase):
        return tuple(u.keys for u in node.units if isinstance(u, Word))
    if isinstance(node, Near):
        return required_keys(node.left) + required_keys(node.right)
    if isinstance(node, And):
        return tuple(ks for c in node.children for ks in required_keys(c))
    return ()


def _is_certain(node: Node) -> bool:
    if isinstance(node, Word | Exact | Prefix | Regex):
        return True
    return isinstance(node, Or) and all(_is_certain(c) for c in node.children)


# --- the index ---------------------------------------------------------------------------------


class WatchIndex:
    """All active watches compiled for matching; one per worker (not thread-safe)."""

    def __init__(self) -> None:
        self._watches: dict[int, _Compiled] = {}
        # Term -> the ids of the watches it triggers, as a tuple: most terms trigger one watch,
        # and a tuple of one takes 48 bytes where a set takes 216 (7.7 -> 1.7 MB at 10,000).
        self._by_key: dict[str, tuple[int, ...]] = {}
        self._by_form: dict[str, tuple[int, ...]] = {}
        self._by_prefix: dict[str, tuple[int, ...]] = {}
        self._by_regex: dict[str, tuple[int, ...]] = {}
        self._regexes: dict[str, Regex] = {}
        self._prefix_automaton: Any = None
        self._prefix_dirty = False
        self._regex_set: Any = None
        self._regex_order: list[str] = []
        self._regex_dirty = False
        # The words, forms and prefixes watched, against which masks are resolved: counts,
        # and (built on the first masked word after a change) sorted.
        self._terms: dict[str, int] = {}
        self._sorted_terms: list[str] = []
        self._fillings: dict[tuple[str, str], tuple[str, ...]] = {}
        self._terms_dirty = False

    def __len__(self) -> int:
        return len(self._watches)

    def __contains__(self, watch_id: object) -> bool:
        return watch_id in self._watches

    def get(self, watch_id: int) -> WatchSpec | None:
        compiled = self._watches.get(watch_id)
        return compiled.spec if compiled else None

    def add(self, spec: WatchSpec, query: Query | None = None) -> Query:
        """Compile and add a watch (replacing one with the same id); raises QueryError."""
        if spec.priority not in PRIORITIES:
            raise ValueError(f"unknown priority {spec.priority!r}; use one of {PRIORITIES}")
        parsed = query if query is not None else parse_query(spec.query)
        triggers = triggers_of(parsed.root)
        if not triggers:  # parse_query refuses these; a hand-built Query might not
            raise ValueError(f"watch {spec.id}: the query has no term to look for")
        self.remove(spec.id)
        regexes = {n.pattern: n for n in parsed.terms if isinstance(n, Regex)}
        for kind, value in triggers:
            table = self._table(kind)
            if value not in table:
                if kind == "p":
                    self._prefix_dirty = True
                elif kind == "r":
                    self._regex_dirty = True
                    self._regexes[value] = regexes[value]
            table[value] = (*table.get(value, ()), spec.id)
        terms = self._terms
        for text in _unit_texts(parsed):
            terms[text] = terms.get(text, 0) + 1
        self._terms_dirty = True
        root = parsed.root
        self._watches[spec.id] = _Compiled(
            spec, parsed, triggers, _is_certain(root), required_keys(root)
        )
        return parsed

    def remove(self, watch_id: int) -> bool:
        """Remove a watch; False when it was not there."""
        compiled = self._watches.pop(watch_id, None)
        if compiled is None:
            return False
        for kind, value in compiled.triggers:
            table = self._table(kind)
            ids = table.get(value)
            if ids is not None:
                ids = tuple(i for i in ids if i != watch_id)
                if ids:
                    table[value] = ids
                else:
                    del table[value]
                    if kind == "p":
                        self._prefix_dirty = True
                    elif kind == "r":
                        self._regex_dirty = True
                        self._regexes.pop(value, None)
        terms = self._terms
        for text in _unit_texts(compiled.query):
            left = terms.get(text, 1) - 1
            if left > 0:
                terms[text] = left
            else:
                terms.pop(text, None)
        self._terms_dirty = True
        return True

    def _table(self, kind: str) -> dict[str, tuple[int, ...]]:
        if kind == "k":
            return self._by_key
        if kind == "x":
            return self._by_form
        if kind == "p":
            return self._by_prefix
        return self._by_regex

    # --- per post -----------------------------------------------------------------------

    def match(
        self,
        nt: NormalisedText,
        *,
        language: str,
        channel_id: int,
        username: str | None = None,
    ) -> list[WatchMatch]:
        """The watches the post matches, in watch id order."""
        return [m for _, m in self.match_with_specs(nt, language, channel_id, username)]

    def match_with_specs(
        self, nt: NormalisedText, language: str, channel_id: int, username: str | None
    ) -> list[tuple[WatchSpec, WatchMatch]]:
        """`match`, with each matched watch's spec (what the engine needs to prioritise)."""
        readings = self._readings(nt, language) if nt.readings else ()
        view = PostView(
            nt, language=language, channel_id=channel_id, username=username, readings=readings
        )
        candidates: set[int] = set()
        by_key = self._by_key
        for key in view.key_pos.keys() & by_key.keys():
            candidates.update(by_key[key])
        by_form = self._by_form
        if by_form:
            for form in view.form_pos.keys() & by_form.keys():
                candidates.update(by_form[form])
        if readings:
            for key in view.span_keys.keys() & by_key.keys():
                candidates.update(by_key[key])
            for form in view.span_forms.keys() & by_form.keys():
                candidates.update(by_form[form])
            for form in view.span_forms:
                for end in range(1, len(form) + 1):
                    candidates.update(self._by_prefix.get(form[:end], ()))
        if self._by_prefix:
            self._find_prefixes(view, candidates)
        if self._by_regex:
            self._find_regexes(view, candidates)
        matches = []
        watches = self._watches
        key_pos = view.key_pos
        has_keys = view.has_keys
        for watch_id in sorted(candidates):
            compiled = watches[watch_id]
            root = compiled.query.root
            if not compiled.certain:
                if readings:
                    if not all(has_keys(ks) for ks in compiled.required):
                        continue
                elif not all(any(k in key_pos for k in ks) for ks in compiled.required):
                    continue
                if not view.holds(root):
                    continue
            terms: list[str] = []
            spans: list[Span] = []
            view.highlight(root, terms, spans)
            spec = compiled.spec
            matches.append(
                (
                    spec,
                    WatchMatch(
                        watch_id,
                        spec.owner_id,
                        tuple(dict.fromkeys(terms)) if len(terms) > 1 else tuple(terms),
                        merge_spans(spans),
                    ),
                )
            )
        return matches

    # --- masked words -------------------------------------------------------------------

    def _readings(self, nt: NormalisedText, language: str) -> list[tuple[str, Interval]]:
        """The post's readings as words over token intervals, masks filled (see `_fill`)."""
        out: list[tuple[str, Interval]] = []
        budget = _MASK_FILLINGS_PER_POST
        # Runs that read as a known word whole ("в о п р о с"): not also в + опрос.
        known = [
            (r.first, r.stop)
            for r in nt.readings
            if not r.masked and not r.trimmed and is_known_word(r.text, language)
        ]
        for reading in nt.readings:
            interval = (reading.first, reading.stop)
            if reading.trimmed:
                if not any(a <= reading.first and reading.stop <= b for a, b in known):
                    out.append((reading.text, interval))
            elif not reading.masked:
                out.append((reading.text, interval))
            elif budget > 0:
                fillings = self._fill(reading.text, language)[:budget]
                budget -= len(fillings)
                out.extend((filling, interval) for filling in fillings)
        return out

    def _fill(self, word: str, language: str) -> tuple[str, ...]:
        """The readings of a masked word (each `MASK` one unknown letter) that could be a
        watched word: a mask takes the letters that watched words starting with the letters
        before it have at its place (м*гранты → мигранты when мигрант is watched), or, in the
        last letters of the word, any letter of its script, commonest first (дн*й → дней).
        Found by bisection in the sorted watched terms: no loop over the watches."""
        if self._terms_dirty:
            self._sorted_terms = sorted(self._terms)
            self._fillings = {}
            self._terms_dirty = False
        cached = self._fillings.get((word, language))
        if cached is not None:
            return cached
        candidates = [word]
        for _ in range(word.count(MASK)):
            # Letters of watched words first, for every candidate; any letter of an ending
            # after them (so the cap never cuts a reading the watched words support).
            by_terms: list[str] = []
            by_ending: list[str] = []
            for candidate in candidates:
                at = candidate.index(MASK)
                head, tail = candidate[:at], candidate[at + 1 :]
                of_terms, of_ending = self._letters_at(candidate, at)
                by_terms.extend(head + letter + tail for letter in of_terms)
                if len(by_ending) < _MASK_FILLINGS_PER_WORD:
                    by_ending.extend(head + letter + tail for letter in of_ending)
            candidates = (by_terms + by_ending)[:_MASK_FILLINGS_PER_WORD]
        if len(candidates) > 1:
            # Where a dictionary knows some readings (го*од: город, not годод), only those:
            # an unknown reading's predicted lemma would meet unrelated words (год).
            known = [c for c in candidates if is_known_word(c, language)]
            if known:
                candidates = known
        result = tuple(candidates)
        if len(self._fillings) >= 4096:
            self._fillings.clear()
        self._fillings[(word, language)] = result
        return result

    def _letters_at(self, word: str, at: int) -> tuple[list[str], list[str]]:
        """Letters for the mask at `at`: those watched words have there, then (for a mask in
        the ending) the other letters of the script."""
        terms = self._sorted_terms
        before = word[:at]
        letters: dict[str, None] = {}
        i = bisect_left(terms, before)
        while i < len(terms) and terms[i].startswith(before):
            term = terms[i]
            if len(term) > at:
                letter = term[at]
                if letter.isalpha():
                    letters[letter] = None
                i = bisect_left(terms, before + chr(ord(letter) + 1), i + 1)
            else:
                i += 1  # the term is `before` itself
        ending: list[str] = []
        if at >= len(word) - _MASK_ENDING:
            alphabet = _CYRILLIC_BY_FREQUENCY if _is_cyrillic(before[-1]) else _LATIN_BY_FREQUENCY
            ending = [letter for letter in alphabet if letter not in letters]
        return list(letters), ending

    def _find_prefixes(self, view: PostView, candidates: set[int]) -> None:
        if self._prefix_dirty or self._prefix_automaton is None:
            automaton = ahocorasick.Automaton()
            for prefix in self._by_prefix:
                automaton.add_word(" " + prefix, prefix)
            automaton.make_automaton()
            self._prefix_automaton = automaton
            self._prefix_dirty = False
        view.indexed_prefixes = self._by_prefix
        forms = list(view.form_pos)
        if not forms:
            return
        # One pass over all the post's words, each preceded by a space (the keys start with
        # one), then each hit is kept only if it starts where a word starts.
        starts = [0, *accumulate(len(form) + 1 for form in forms)]
        form_at = dict(zip(starts, forms, strict=False))
        prefix_pos = view.prefix_pos
        by_prefix = self._by_prefix
        form_pos = view.form_pos
        for end, prefix in self._prefix_automaton.iter(" " + " ".join(forms)):
            form = form_at.get(end - len(prefix))
            if form is not None:
                found = prefix_pos.get(prefix)
                if found is None:
                    prefix_pos[prefix] = list(form_pos[form])
                    candidates.update(by_prefix[prefix])
                else:
                    found.extend(form_pos[form])
                    found.sort()

    def _find_regexes(self, view: PostView, candidates: set[int]) -> None:
        patterns: Iterable[str]
        if len(self._by_regex) >= _REGEX_SET_MIN:
            if self._regex_dirty or self._regex_set is None:
                self._build_regex_set()
            order = self._regex_order
            patterns = [order[i] for i in self._regex_set.Match(view.nt.text) or ()]
        else:
            patterns = list(self._by_regex)
        for pattern in patterns:
            regex = self._regexes.get(pattern)
            if regex is not None and view.regex_spans(regex):
                candidates.update(self._by_regex[pattern])

    def _build_regex_set(self) -> None:
        options = re2.Options()
        options.case_sensitive = False
        options.log_errors = False
        regex_set = re2.Set.SearchSet(options)
        self._regex_order = list(self._by_regex)
        for pattern in self._regex_order:
            regex_set.Add(pattern)
        regex_set.Compile()
        self._regex_set = regex_set
        self._regex_dirty = False
