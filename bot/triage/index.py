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
from collections.abc import Container, Iterable
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import ahocorasick
import re2

from bot.triage.inflection import post_word_keys
from bot.triage.normalise import NormalisedText
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
        "username",
    )

    def __init__(
        self,
        nt: NormalisedText,
        *,
        language: str,
        channel_id: int,
        username: str | None,
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
            for key in post_word_keys(form, language):  # cached by the inflection module
                known = key_pos.get(key)
                if known is None:
                    key_pos[key] = positions
                else:
                    key_pos[key] = sorted(known + positions)
        self.form_pos = form_pos
        self.key_pos = key_pos
        self.prefix_pos: dict[str, list[int]] = {}
        self.indexed_prefixes: Container[str] = ()
        self._regex_spans: dict[str, list[Span]] = {}
        self._cache: dict[int, list[Interval]] = {}  # by id(node): nodes outlive the view

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
            return any(k in key_pos for k in node.keys)
        if isinstance(node, Exact):
            return node.text in self.form_pos
        if isinstance(node, Prefix):
            return bool(self._prefix(node.text))
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
        elif isinstance(node, Exact):
            result = [(i, i + 1) for i in self.form_pos.get(node.text, ())]
        elif isinstance(node, Prefix):
            result = [(i, i + 1) for i in self._prefix(node.text)]
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

    def _phrase(self, node: Phrase) -> list[Interval]:
        if not all(self.holds(unit) for unit in node.units):
            return []
        first = self.occurrences(node.units[0])
        if not first:
            return []
        rest = []
        for unit in node.units[1:]:
            found = {s for s, _ in self.occurrences(unit)}
            if not found:
                return []
            rest.append(found)
        length = len(node.units)
        return [
            (s, s + length)
            for s, _ in first
            if all(s + j in found for j, found in enumerate(rest, start=1))
        ]

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
        self._by_key: dict[str, set[int]] = {}
        self._by_form: dict[str, set[int]] = {}
        self._by_prefix: dict[str, set[int]] = {}
        self._by_regex: dict[str, set[int]] = {}
        self._regexes: dict[str, Regex] = {}
        self._prefix_automaton: Any = None
        self._prefix_dirty = False
        self._regex_set: Any = None
        self._regex_order: list[str] = []
        self._regex_dirty = False

    def __len__(self) -> int:
        return len(self._watches)

    def __contains__(self, watch_id: object) -> bool:
        return watch_id in self._watches

    def get(self, watch_id: int) -> WatchSpec | None:
        compiled = self._watches.get(watch_id)
        return compiled.spec if compiled else None

    def query_of(self, watch_id: int) -> Query | None:
        compiled = self._watches.get(watch_id)
        return compiled.query if compiled else None

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
            table.setdefault(value, set()).add(spec.id)
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
                ids.discard(watch_id)
                if not ids:
                    del table[value]
                    if kind == "p":
                        self._prefix_dirty = True
                    elif kind == "r":
                        self._regex_dirty = True
                        self._regexes.pop(value, None)
        return True

    def _table(self, kind: str) -> dict[str, set[int]]:
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
        view = PostView(nt, language=language, channel_id=channel_id, username=username)
        candidates: set[int] = set()
        by_key = self._by_key
        for key in view.key_pos.keys() & by_key.keys():
            candidates |= by_key[key]
        by_form = self._by_form
        if by_form:
            for form in view.form_pos.keys() & by_form.keys():
                candidates |= by_form[form]
        if self._by_prefix:
            self._find_prefixes(view, candidates)
        if self._by_regex:
            self._find_regexes(view, candidates)
        matches = []
        watches = self._watches
        key_pos = view.key_pos
        for watch_id in sorted(candidates):
            compiled = watches[watch_id]
            root = compiled.query.root
            if not compiled.certain:
                if not all(any(k in key_pos for k in ks) for ks in compiled.required):
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
                    candidates |= by_prefix[prefix]
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
                candidates |= self._by_regex[pattern]

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
