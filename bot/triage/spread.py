"""A story's spread and who amplifies whom, from what the repository recorded.

Pure: `bot.storage.campaigns` records, per story (its first post and the copies that joined
it: forwards by their header, near-duplicates by the sketch), each copy's channel, time and
forward source, and per day the forward edges (source channel → the channel that forwarded it).
Here those become what the Spread view and the admins' amplification view show: who was first,
who amplified and how fast; the channel pairs that forward each other most; channels forwarded
often but not monitored (candidates to add); and a graph (networkx, imported only when a graph
is asked for: it costs memory the service does not otherwise need).
"""

from __future__ import annotations

import importlib
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "Candidate",
    "ForwardEdge",
    "SpreadRecord",
    "SpreadStep",
    "StorySpread",
    "amplification_graph",
    "analyse_spread",
    "candidates",
    "influence",
    "merge_edges",
    "rank_pairs",
]

CopyKind = Literal["first", "forward", "copy"]
MILESTONES = (2, 5, 10, 25, 50)


@dataclass(frozen=True, slots=True)
class SpreadRecord:
    """One post of a story."""

    channel_id: int
    message_id: int
    at: float  # unix seconds (the post's date)
    kind: CopyKind = "copy"  # first post, forward (by header) or near-duplicate
    username: str | None = None
    forward_channel_id: int | None = None
    forward_message_id: int | None = None
    forward_name: str | None = None

    @property
    def key(self) -> tuple[int, int]:
        return self.channel_id, self.message_id


@dataclass(frozen=True, slots=True)
class SpreadStep:
    record: SpreadRecord
    delay_s: float  # after the first post
    new_channel: bool  # the channel's first post of this story


@dataclass(frozen=True, slots=True)
class StorySpread:
    first: SpreadRecord
    steps: tuple[SpreadStep, ...]  # every copy after the first, in time order
    channels: int  # distinct channels, the first's included
    span_s: float  # first post to the last copy
    reached: tuple[tuple[int, float], ...]  # (channels, seconds after the first) milestones
    # Forward sources no monitored channel is: (channel id or None, name), most forwarded first.
    unmonitored_sources: tuple[tuple[int | None, str | None, int], ...]
    timeline: tuple[tuple[float, int], ...]  # (seconds after the first, channels so far)

    @property
    def amplifiers(self) -> tuple[SpreadRecord, ...]:
        """The channels that carried the story after the first, each once, in order."""
        return tuple(s.record for s in self.steps if s.new_channel)


def analyse_spread(
    records: Iterable[SpreadRecord],
    monitored: Collection[int] = (),
    *,
    first: SpreadRecord | None = None,
) -> StorySpread | None:
    """Order a story's records and measure its spread; None without any record.

    `first` is the story's first post when it is known apart from the records (the archive);
    otherwise the earliest record is. A first post later than a copy (clocks, a forward of an
    older post) still leads: the story is keyed by it."""
    unique: dict[tuple[int, int], SpreadRecord] = {}
    for record in records:
        known = unique.get(record.key)
        if known is None or (record.kind == "first" and known.kind != "first"):
            unique[record.key] = record
    if first is not None:
        unique[first.key] = first
    if not unique:
        return None
    ordered = sorted(unique.values(), key=lambda r: (r.at, r.channel_id, r.message_id))
    if first is None:
        named = [r for r in ordered if r.kind == "first"]
        first = named[0] if named else ordered[0]
    start = first.at
    seen = {first.channel_id}
    steps: list[SpreadStep] = []
    timeline: list[tuple[float, int]] = [(0.0, 1)]
    reached: list[tuple[int, float]] = []
    milestones = iter(m for m in MILESTONES if m > 1)
    goal = next(milestones, None)
    sources: Counter[tuple[int | None, str | None]] = Counter()
    for record in ordered:
        if record.forward_channel_id is not None or record.forward_name:
            source_id = record.forward_channel_id
            if source_id is None or source_id not in monitored:
                sources[(source_id, record.forward_name)] += 1
        if record.key == first.key:
            continue
        delay = max(0.0, record.at - start)
        new = record.channel_id not in seen
        seen.add(record.channel_id)
        steps.append(SpreadStep(record, delay, new))
        if new:
            timeline.append((delay, len(seen)))
            while goal is not None and len(seen) >= goal:
                reached.append((goal, delay))
                goal = next(milestones, None)
    # One entry per source: a source known by id keeps the name any header gave it.
    merged: dict[int | str, tuple[int | None, str | None, int]] = {}
    for (source_id, name), n in sources.items():
        slot: int | str = source_id if source_id is not None else f"name:{name}"
        old = merged.get(slot)
        merged[slot] = (source_id, (old[1] if old else None) or name, (old[2] if old else 0) + n)
    unmonitored = sorted(merged.values(), key=lambda t: (-t[2], str(t[0]), t[1] or ""))
    span = max((s.delay_s for s in steps), default=0.0)
    return StorySpread(
        first=first,
        steps=tuple(steps),
        channels=len(seen),
        span_s=span,
        reached=tuple(reached),
        unmonitored_sources=tuple(unmonitored),
        timeline=tuple(timeline),
    )


# --- who amplifies whom ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ForwardEdge:
    source: int  # the channel whose post was forwarded
    target: int  # the channel that forwarded it
    forwards: int


@dataclass(frozen=True, slots=True)
class Candidate:
    """A channel forwarded often by monitored channels but not monitored itself."""

    channel_id: int
    name: str | None
    forwards: int
    forwarded_by: int  # distinct monitored channels that forwarded it


def merge_edges(edges: Iterable[ForwardEdge]) -> list[ForwardEdge]:
    """Sum duplicate (source, target) pairs (the repository keeps one set per day)."""
    totals: Counter[tuple[int, int]] = Counter()
    for edge in edges:
        if edge.source != edge.target and edge.forwards > 0:
            totals[(edge.source, edge.target)] += edge.forwards
    return [ForwardEdge(s, t, n) for (s, t), n in totals.items()]


def rank_pairs(edges: Iterable[ForwardEdge], limit: int = 20) -> list[ForwardEdge]:
    """Channel pairs by forwards, most first (ties by ids, so the order is stable)."""
    merged = merge_edges(edges)
    merged.sort(key=lambda e: (-e.forwards, e.source, e.target))
    return merged[:limit]


def candidates(
    edges: Iterable[ForwardEdge],
    monitored: Collection[int],
    names: Mapping[int, str] | None = None,
    *,
    min_forwards: int = 3,
    limit: int = 10,
) -> list[Candidate]:
    """Unmonitored sources forwarded at least `min_forwards` times, the most first (then by
    how many channels forwarded them)."""
    forwards: Counter[int] = Counter()
    by: dict[int, set[int]] = defaultdict(set)
    for edge in merge_edges(edges):
        if edge.source in monitored:
            continue
        forwards[edge.source] += edge.forwards
        by[edge.source].add(edge.target)
    names = names or {}
    found = [
        Candidate(source, names.get(source), n, len(by[source]))
        for source, n in forwards.items()
        if n >= min_forwards
    ]
    found.sort(key=lambda c: (-c.forwards, -c.forwarded_by, c.channel_id))
    return found[:limit]


def _networkx() -> Any:
    # Imported on use, through importlib: ~20 MB the service does without until an admin asks
    # for the graph, and the package ships no type information.
    return importlib.import_module("networkx")


def amplification_graph(edges: Iterable[ForwardEdge], limit: int = 60) -> Any:
    """A networkx DiGraph source → target of the `limit` strongest pairs; edge attribute
    `weight` is the forwards."""
    nx = _networkx()
    graph = nx.DiGraph()
    for edge in rank_pairs(edges, limit):
        graph.add_edge(edge.source, edge.target, weight=edge.forwards)
    return graph


def influence(
    edges: Sequence[ForwardEdge], limit: int = 20, *, damping: float = 0.85, rounds: int = 50
) -> list[tuple[int, float]]:
    """Channels by how widely their posts travel: PageRank over "target forwarded source"
    (a forward is a vote for the source, worth more from a channel that is forwarded itself).

    Power iteration here, not networkx's pagerank, which needs scipy (~100 MB more)."""
    merged = merge_edges(edges)
    if not merged:
        return []
    nodes = sorted({e.source for e in merged} | {e.target for e in merged})
    out_weight: Counter[int] = Counter()
    for edge in merged:
        out_weight[edge.target] += edge.forwards
    n = len(nodes)
    rank = dict.fromkeys(nodes, 1.0 / n)
    for _ in range(rounds):
        dangling = sum(rank[v] for v in nodes if out_weight[v] == 0)
        base = (1.0 - damping) / n + damping * dangling / n
        nxt = dict.fromkeys(nodes, base)
        for edge in merged:  # the forwarder's rank flows to the source, by forwards
            nxt[edge.source] += (
                damping * rank[edge.target] * edge.forwards / out_weight[edge.target]
            )
        delta = sum(abs(nxt[v] - rank[v]) for v in nodes)
        rank = nxt
        if delta < 1e-9:
            break
    ranked = sorted(rank.items(), key=lambda kv: (-kv[1], kv[0]))
    return [(channel, round(score, 4)) for channel, score in ranked[:limit]]
