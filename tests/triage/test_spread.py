from __future__ import annotations

import sys

from bot.triage.spread import (
    ForwardEdge,
    SpreadRecord,
    amplification_graph,
    analyse_spread,
    candidates,
    influence,
    rank_pairs,
)

T0 = 1_700_000_000.0


def test_spread_orders_copies_and_measures_speed() -> None:
    first = SpreadRecord(1, 10, T0, "first", "origin")
    records = [
        SpreadRecord(3, 5, T0 + 600, "forward", forward_channel_id=1, forward_message_id=10),
        SpreadRecord(2, 7, T0 + 60, "copy"),
        SpreadRecord(2, 8, T0 + 120, "copy"),  # the same channel again: no new amplifier
        SpreadRecord(4, 1, T0 + 900, "forward", forward_channel_id=99, forward_name="Hidden"),
        SpreadRecord(5, 1, T0 + 1200, "forward", forward_name="Nameless"),
        SpreadRecord(2, 7, T0 + 60, "copy"),  # recorded twice
    ]
    spread = analyse_spread(records, monitored={1, 2, 3, 4, 5}, first=first)
    assert spread is not None
    assert spread.first == first
    assert [r.channel_id for r in spread.amplifiers] == [2, 3, 4, 5]
    assert [s.record.message_id for s in spread.steps] == [7, 8, 5, 1, 1]
    assert spread.channels == 5
    assert spread.span_s == 1200
    assert spread.reached == ((2, 60.0), (5, 1200.0))
    assert spread.timeline == ((0.0, 1), (60.0, 2), (600.0, 3), (900.0, 4), (1200.0, 5))
    assert spread.unmonitored_sources == ((99, "Hidden", 1), (None, "Nameless", 1))


def test_spread_without_a_known_first_starts_at_the_earliest() -> None:
    spread = analyse_spread([SpreadRecord(2, 1, T0 + 5), SpreadRecord(3, 1, T0)])
    assert spread is not None
    assert spread.first.channel_id == 3
    assert analyse_spread([]) is None


def test_pairs_rank_and_candidates_are_unmonitored_sources() -> None:
    edges = [
        ForwardEdge(1, 2, 5),
        ForwardEdge(1, 2, 3),  # another day
        ForwardEdge(9, 2, 4),
        ForwardEdge(9, 3, 1),
        ForwardEdge(8, 3, 2),
        ForwardEdge(3, 3, 7),  # a channel forwarding itself is not amplification
    ]
    assert rank_pairs(edges, 2) == [ForwardEdge(1, 2, 8), ForwardEdge(9, 2, 4)]
    found = candidates(edges, monitored={1, 2, 3}, names={9: "Source"}, min_forwards=3)
    assert [(c.channel_id, c.name, c.forwards, c.forwarded_by) for c in found] == [
        (9, "Source", 5, 2)
    ]


def test_influence_ranks_the_most_forwarded_source_first() -> None:
    edges = [ForwardEdge(1, 2, 5), ForwardEdge(1, 3, 5), ForwardEdge(2, 3, 1)]
    ranked = influence(edges)
    assert ranked[0][0] == 1
    assert abs(sum(score for _c, score in ranked) - 1.0) < 1e-3
    assert influence([]) == []


def test_graph_is_built_lazily_with_weights() -> None:
    graph = amplification_graph([ForwardEdge(1, 2, 5), ForwardEdge(2, 3, 1)], limit=1)
    assert "networkx" in sys.modules
    assert list(graph.edges(data="weight")) == [(1, 2, 5)]
