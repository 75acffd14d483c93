"""The watch query language: parsing, canonical form, refusals with position and expectation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.triage.query import (
    MAX_QUERY_CHARS,
    And,
    Channel,
    Exact,
    Lang,
    Near,
    Not,
    Or,
    Phrase,
    Prefix,
    QueryError,
    Regex,
    Word,
    parse_query,
)

# (query, canonical form)
VALID = [
    ("мигрант", "мигрант"),
    ("  Мигрант  ", "мигрант"),
    ("МИГРЁНТ", "мигрент"),
    ("мигрaнт", "мигрант"),  # Latin 'a' folded into the Cyrillic word
    ("мигрант беженец", "мигрант беженец"),
    ("мигрант AND беженец", "мигрант беженец"),
    ("мигрант OR беженец", "мигрант OR беженец"),
    ("мигрант or беженец", "мигрант or беженец"),  # lowercase 'or' is a word
    ("a b OR c", "a b OR c"),
    ("a (b OR c)", "a (b OR c)"),
    ("(a OR b) (c OR d)", "(a OR b) (c OR d)"),
    ("((a))", "a"),
    ("(a b) c", "a b c"),
    ("a OR (b OR c)", "a OR b OR c"),
    ('"Milli Məclis"', '"milli məclis"'),
    ("“Milli Məclis”", '"milli məclis"'),  # phone keyboards' smart quotes
    ("«выслать мигрантов»", '"выслать мигрантов"'),
    ('"мигрант"', "мигрант"),
    ('"=Дугин сказал"', '"=дугин сказал"'),
    ('"выслать мигра*"', '"выслать мигра*"'),
    ("северо-запад", '"северо запад"'),
    ("=Дугин", "=дугин"),
    ("=Аль-Каида", '"=аль =каида"'),
    ("мигра*", "мигра*"),
    ("Ermənistan*", "ermənistan*"),
    ("/выс[ыe]лить/", "/выс[ыe]лить/"),
    (r"/a\/b/", r"/a\/b/"),
    ("мигрант -беженец", "мигрант -беженец"),
    ("мигрант NOT беженец", "мигрант -беженец"),
    ("мигрант -(a OR b)", "мигрант -(a OR b)"),
    ("мигрант -(a b)", "мигрант -(a b)"),
    ("мигрант NOT NOT беженец", "мигрант беженец"),
    ("мигрант -/x+/", "мигрант -/x+/"),
    ('мигрант -"a b"', 'мигрант -"a b"'),
    ("a NEAR/5 b", "a NEAR/5 b"),
    ("a NEAR b", "a NEAR/10 b"),
    ("a NEAR/5 b c", "a NEAR/5 b c"),
    ("a NEAR/5 b OR c", "a NEAR/5 b OR c"),
    ("(a OR b) NEAR/3 c", "(a OR b) NEAR/3 c"),
    ("a NEAR/3 b NEAR/2 c", "a NEAR/3 b NEAR/2 c"),
    ("a NEAR/3 (b NEAR/2 c)", "a NEAR/3 (b NEAR/2 c)"),
    ('"a b" NEAR/4 cd*', '"a b" NEAR/4 cd*'),
    ("channel:@Rybar мигрант", "channel:@rybar мигрант"),
    ("channel:rybar мигрант", "channel:@rybar мигрант"),
    ("Channel:https://t.me/Rybar мигрант", "channel:@rybar мигрант"),
    ("channel:-1001234567 мигрант", "channel:1234567 мигрант"),
    ("channel:1234567 мигрант", "channel:1234567 мигрант"),
    ("lang:RU мигрант", "lang:ru мигрант"),
    ("мигрант (lang:ru OR lang:uk)", "мигрант (lang:ru OR lang:uk)"),
    ("мигрант -channel:@foo", "мигрант -channel:@foo"),
    ("#мигранты", "мигранты"),
    ("don't", "don't"),
    ("a OR b -c", "a OR b -c"),
    ("-c a", "-c a"),
    ("a <b> &c", "a b c"),
]


@pytest.mark.parametrize(("query", "canonical"), VALID)
def test_valid_queries_print_back_canonically(query: str, canonical: str) -> None:
    parsed = parse_query(query)
    assert str(parsed) == canonical
    assert parsed.canonical() == canonical
    assert parse_query(canonical) == parsed


# (query, position, expected text of str(error))
INVALID = [
    ("", 0, "at 0: expected a word to look for, found an empty query"),
    ("   ", 0, "at 0: expected a word to look for, found an empty query"),
    ("a)", 1, "at 1: expected a term or the end of the query, found ')' with no '(' open"),
    ("(a b", 4, "at 4: expected ')' to close '(' opened at 0, found the end of the query"),
    (
        "мигрант (a OR (b c)",
        19,
        "at 19: expected ')' to close '(' opened at 8, found the end of the query",
    ),
    ("a OR", 4, "at 4: expected a word, phrase or '(' after OR, found the end of the query"),
    ("a OR OR b", 5, "at 5: expected a word, phrase or '(' after OR, found 'OR'"),
    ("OR a", 0, "at 0: expected a word, phrase or '(' to start the query, found 'OR'"),
    ("a AND", 5, "at 5: expected a word, phrase or '(' after AND, found the end of the query"),
    ("NOT", 3, "at 3: expected a word, phrase or '(' after NOT, found the end of the query"),
    ("a () b", 3, "at 3: expected a word, phrase or '(' inside the parentheses"),
    ("a - b", 3, "at 3: expected a term right after '-'"),
    ("a NEAR/0 b", 7, "at 7: expected a distance from 1 to 50 after NEAR/, found '0'"),
    ("a NEAR/x b", 7, "at 7: expected a distance from 1 to 50 after NEAR/, found 'x'"),
    ("a NEAR/51 b", 7, "at 7: expected a distance from 1 to 50 after NEAR/, found '51'"),
    ("a NEAR", 6, "at 6: expected a word, phrase or '(' after NEAR, found the end of the query"),
    ("a NEAR/3 -b", 9, "at 9: expected a word, phrase, prefix or OR of those after NEAR"),
    ("/x/ NEAR/3 b", 0, "at 0: expected a word, phrase, prefix or OR of those before NEAR"),
    ("(a b) NEAR/3 c", 0, "at 0: expected a word, phrase, prefix or OR of those before NEAR"),
    ('"a b', 4, "at 4: expected '\"' to close the phrase opened at 0"),
    ("«a b", 4, "at 4: expected '»' to close the phrase opened at 0"),
    ('a ""', 3, "at 3: expected words inside the quotes"),
    ("/abc", 4, "at 4: expected '/' to close the regex opened at 0"),
    ("a //", 3, "at 3: expected a pattern between '/' and '/'"),
    (
        r"/(a)\1/",
        0,
        r"at 0: expected a regular expression RE2 accepts (invalid escape sequence: \1)",
    ),
    (
        "x /(?=a)b/",
        2,
        "at 2: expected a regular expression RE2 accepts (invalid perl operator: (?=)",
    ),
    (
        "/a*/",
        0,
        "at 0: expected a regex that needs at least one character (this one matches any post)",
    ),
    ("=", 1, "at 1: expected a word after '='"),
    ("=мигра*", 0, "at 0: expected either '=' (exact form) or '*' (prefix), not both"),
    ("м*", 0, "at 0: expected at least 2 letters before '*', found 'м*'"),
    ("северо-за*", 0, "at 0: expected a single word before '*', found 'северо-за*'"),
    ("*", 0, "at 0: expected a word, found '*'"),
    ("мигрант !!!", 8, "at 8: expected a word, found '!!!'"),
    ("мигрант 🇷🇺", 8, "at 8: expected a word, found '🇷🇺'"),
    (
        "@rybar",
        0,
        "at 0: expected a word (for a channel write channel:@name), found '@rybar'",
    ),
    ("channel: x", 8, "at 8: expected a channel after 'channel:' (like channel:@name), found ''"),
    (
        "channel:@a-b x",
        8,
        "at 8: expected a channel after 'channel:' (like channel:@name), found '@a-b'",
    ),
    ("lang:russian x", 5, "at 5: expected a language code after 'lang:' (like lang:ru)"),
]

_NEGATIVE = (
    "at 0: expected a word, phrase, prefix or regex to look for "
    "(this query would match posts that contain none of its terms)"
)
INVALID += [
    ("-мигрант", 0, _NEGATIVE),
    ("NOT мигрант", 0, _NEGATIVE),
    ("-a -b", 0, _NEGATIVE),
    ("channel:@rybar", 0, _NEGATIVE),
    ("lang:ru -a", 0, _NEGATIVE),
    ("a OR -b", 0, _NEGATIVE),
    ("a OR lang:ru", 0, _NEGATIVE),
    ("-(a b)", 0, _NEGATIVE),
]


@pytest.mark.parametrize(("query", "position", "message"), INVALID)
def test_invalid_queries_are_refused_with_position_and_expectation(
    query: str, position: int, message: str
) -> None:
    with pytest.raises(QueryError) as caught:
        parse_query(query)
    assert caught.value.position == position
    assert str(caught.value) == message
    assert caught.value.expected in message


def test_limits() -> None:
    longest = "a" * MAX_QUERY_CHARS
    assert str(parse_query(longest)) == longest
    with pytest.raises(QueryError) as caught:
        parse_query("a" * (MAX_QUERY_CHARS + 1))
    assert str(caught.value) == "at 500: expected at most 500 characters (this query has 501)"
    fifty = " ".join(f"w{i}" for i in range(50))
    assert parse_query(fifty).term_count == 50
    with pytest.raises(QueryError) as caught:
        parse_query(fifty + " w50")
    assert caught.value.position == len(fifty) + 1
    assert caught.value.expected == "at most 50 terms"
    with pytest.raises(QueryError):  # phrase words count one each
        parse_query(" ".join(f"w{i}" for i in range(40)) + ' "a b c d e f g h i j k"')


def test_ast_shapes_and_precedence() -> None:
    root = parse_query("a b OR c NEAR/2 d -e").root
    assert isinstance(root, Or)
    left, right = root.children
    assert isinstance(left, And) and [str(c) for c in left.children] == ["a", "b"]
    assert isinstance(right, And)
    near, negated = right.children
    assert near == Near(parse_query("c").root, parse_query("d").root, 2)
    assert isinstance(negated, Not) and str(negated.child) == "e"
    phrase = parse_query('"Milli Məclis"').root
    assert isinstance(phrase, Phrase) and all(isinstance(u, Word) for u in phrase.units)
    assert isinstance(parse_query("=x").root, Exact)
    assert isinstance(parse_query("xy*").root, Prefix)
    assert isinstance(parse_query("/x/").root, Regex)


def test_filters_and_term_count() -> None:
    query = parse_query('channel:@Rybar lang:ru "a b" cd*')
    assert query.channels == (Channel(username="rybar"),)
    assert query.languages == ("ru",)
    assert query.term_count == 5
    assert [str(t) for t in query.terms] == ['"a b"', "cd*"]
    root = parse_query("x lang:ru").root
    assert isinstance(root, And) and Lang("ru") in root.children


def test_word_keys_make_inflections_equal() -> None:
    a = parse_query("мигрант").root
    b = parse_query("мигрантов").root
    assert isinstance(a, Word) and isinstance(b, Word)
    assert a.keys & b.keys


def test_hostile_text_in_queries() -> None:
    parse_query("мигр\u200bант")  # zero-width space inside: folded away
    assert str(parse_query("мигр\u200bант")) == "мигрант"
    assert str(parse_query("مهاجر")) == "مهاجر"  # RTL
    assert str(parse_query("<b>мигрант</b>")) == '"b мигрант b"'
    with pytest.raises(QueryError):
        parse_query("\u200b\u200b")


# --- property: canonical form round-trips ------------------------------------------------------

_ATOMS = st.sampled_from(
    [
        "мигрант",
        "Мигрантов",
        "біженці",
        "war",
        "Ermənistan",
        "=Дугин",
        "мигра*",
        '"Milli Məclis"',
        '"выслать мигрантов"',
        "/ми[гк]рант/",
        "channel:@rybar",
        "lang:ru",
        "северо-запад",
        "don't",
        "#мигранты",
    ]
)


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, children).map(lambda t: f"{t[0]} {t[1]}"),
        st.tuples(children, children).map(lambda t: f"{t[0]} OR {t[1]}"),
        st.tuples(children, children).map(lambda t: f"{t[0]} AND {t[1]}"),
        children.map(lambda c: f"({c})"),
        children.map(lambda c: f"-{c}"),
        children.map(lambda c: f"NOT {c}"),
        st.tuples(children, st.integers(1, 50), children).map(
            lambda t: f"{t[0]} NEAR/{t[1]} {t[2]}"
        ),
    )


QUERIES = st.recursive(_ATOMS, _combine, max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(QUERIES)
def test_canonical_form_parses_to_the_same_query(text: str) -> None:
    try:
        parsed = parse_query(text)
    except QueryError as exc:
        assert 0 <= exc.position <= len(text)
        return
    canonical = parsed.canonical()
    assert parse_query(canonical) == parsed
    assert parse_query(canonical).canonical() == canonical


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from('ab "()/-*=:OR NEAR/3 мё\u200b<&'), max_size=40))
def test_arbitrary_text_parses_or_fails_cleanly(text: str) -> None:
    try:
        parsed = parse_query(text)
    except QueryError as exc:
        assert 0 <= exc.position <= len(text)
        assert str(exc).startswith(f"at {exc.position}: expected ")
        return
    assert parse_query(parsed.canonical()) == parsed
