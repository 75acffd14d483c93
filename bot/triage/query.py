"""The watch query language (SPEC §3): lexer, parser, AST and canonical printing.

Grammar, loosest binding first (NOT > NEAR > AND > OR)::

    query    := or_expr
    or_expr  := and_expr ("OR" and_expr)*
    and_expr := near_expr (["AND"] near_expr)*        # juxtaposition is AND
    near_expr:= unary ("NEAR" ["/" n] unary)*
    unary    := ("NOT" | "-") unary | primary
    primary  := "(" or_expr ")" | term | "channel:" name | "lang:" code
    term     := word | "=" word | word "*" | '"' phrase '"' | "/" regex "/"

Words are read the way post text is read (`normalise`): case, `ё/е`, homoglyphs and invisible
characters do not matter, and a word with inner punctuation (`северо-запад`) is the phrase of
its parts. A plain word matches any inflection (`query_word_keys`), `=word` only that form, `word*`
any word starting so. `a NEAR/5 b`: an occurrence of each, at most 5 word positions apart
(adjacent words are 1 apart). Regexes run in RE2 (linear time) over the normalised text,
ignoring case.

The AST is made of frozen dataclasses; `str(query)` prints the canonical form, and parsing the
canonical form gives an equal AST.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import re2

from bot.triage.inflection import query_word_keys
from bot.triage.normalise import normalise

MAX_QUERY_CHARS = 500
MAX_TERMS = 50
DEFAULT_NEAR = 10
MAX_NEAR = 50

_OPEN_QUOTES = '"“”„«»'
_CLOSE_QUOTES = {'"': '"', "“": "”", "”": "”", "„": "“", "«": "»", "»": "«"}
_SPECIAL = set("()") | set(_OPEN_QUOTES)
_NEAR_RE = re.compile(r"NEAR(?:/(.*))?")
_USERNAME_RE = re.compile(r"[a-z][a-z0-9_]{0,31}")
_CHANNEL_ID_RE = re.compile(r"-?\d{1,20}")
_LANG_RE = re.compile(r"[a-z]{2,3}")


class QueryError(ValueError):
    """A query that cannot be used, with where (0-based character offset) and what was expected."""

    def __init__(self, position: int, expected: str, found: str | None = None) -> None:
        self.position = position
        self.expected = expected
        self.found = found
        super().__init__(position, expected, found)

    def __str__(self) -> str:
        text = f"at {self.position}: expected {self.expected}"
        if self.found is not None:
            text += f", found {self.found}"
        return text


# --- AST ---------------------------------------------------------------------------------------


class Node:
    """Base of every query node. `str(node)` is its canonical text."""

    __slots__ = ()

    def canonical(self) -> str:
        return str(self)


@dataclass(frozen=True, slots=True)
class Word(Node):
    """A word in any inflection: matches a token whose `post_word_keys` meet `keys`."""

    text: str
    keys: frozenset[str] = field(compare=False, repr=False)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class Exact(Node):
    """Exactly this normalised word form."""

    text: str

    def __str__(self) -> str:
        return f"={self.text}"


@dataclass(frozen=True, slots=True)
class Prefix(Node):
    """Any normalised word starting with `text`."""

    text: str

    def __str__(self) -> str:
        return f"{self.text}*"


Unit = Word | Exact | Prefix


@dataclass(frozen=True, slots=True)
class Phrase(Node):
    """Two or more units on adjacent words, in order."""

    units: tuple[Unit, ...]

    def __str__(self) -> str:
        return '"' + " ".join(str(u) for u in self.units) + '"'


@dataclass(frozen=True, slots=True)
class Regex(Node):
    """An RE2 pattern searched in the normalised text, ignoring case."""

    pattern: str
    compiled: Any = field(compare=False, repr=False, hash=False)

    def __str__(self) -> str:
        return f"/{self.pattern}/"


@dataclass(frozen=True, slots=True)
class Channel(Node):
    """Only posts of one channel, by username (lowercase, no '@') or by id."""

    username: str | None = None
    channel_id: int | None = None

    def __str__(self) -> str:
        if self.username is not None:
            return f"channel:@{self.username}"
        return f"channel:{self.channel_id}"


@dataclass(frozen=True, slots=True)
class Lang(Node):
    """Only posts detected in this language (ISO 639-1 code)."""

    code: str

    def __str__(self) -> str:
        return f"lang:{self.code}"


@dataclass(frozen=True, slots=True)
class Not(Node):
    child: Node

    def __str__(self) -> str:
        if isinstance(self.child, And | Or | Near):
            return f"-({self.child})"
        return f"-{self.child}"


@dataclass(frozen=True, slots=True)
class Near(Node):
    """An occurrence of `left` and one of `right` at most `distance` word positions apart."""

    left: Node
    right: Node
    distance: int

    def __str__(self) -> str:
        left = f"({self.left})" if isinstance(self.left, Or) else str(self.left)
        right = f"({self.right})" if isinstance(self.right, Or | Near) else str(self.right)
        return f"{left} NEAR/{self.distance} {right}"


@dataclass(frozen=True, slots=True)
class And(Node):
    children: tuple[Node, ...]

    def __str__(self) -> str:
        return " ".join(f"({c})" if isinstance(c, Or) else str(c) for c in self.children)


@dataclass(frozen=True, slots=True)
class Or(Node):
    children: tuple[Node, ...]

    def __str__(self) -> str:
        return " OR ".join(str(c) for c in self.children)


Term = Unit | Phrase | Regex
Filter = Channel | Lang


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed watch query."""

    root: Node

    def __str__(self) -> str:
        return str(self.root)

    def canonical(self) -> str:
        return str(self.root)

    @property
    def channels(self) -> tuple[Channel, ...]:
        return tuple(n for n in walk(self.root) if isinstance(n, Channel))

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(n.code for n in walk(self.root) if isinstance(n, Lang))

    @property
    def term_count(self) -> int:
        return _term_count(self.root)

    @property
    def terms(self) -> tuple[Term, ...]:
        """Every word, phrase, prefix and regex of the query, in order."""
        return tuple(
            n for n in walk(self.root) if isinstance(n, Word | Exact | Prefix | Phrase | Regex)
        )


def walk(node: Node) -> Iterator[Node]:
    """The node and all its descendants, depth first, left to right (phrase units excluded)."""
    yield node
    if isinstance(node, And | Or):
        for child in node.children:
            yield from walk(child)
    elif isinstance(node, Not):
        yield from walk(node.child)
    elif isinstance(node, Near):
        yield from walk(node.left)
        yield from walk(node.right)


def _term_count(node: Node) -> int:
    if isinstance(node, Phrase):
        return len(node.units)
    if isinstance(node, And | Or):
        return sum(_term_count(c) for c in node.children)
    if isinstance(node, Not):
        return _term_count(node.child)
    if isinstance(node, Near):
        return _term_count(node.left) + _term_count(node.right)
    return 1


def needs_positive(node: Node) -> bool:
    """True when every post this node matches contains one of its non-negated terms."""
    if isinstance(node, Not | Channel | Lang):
        return False
    if isinstance(node, And):
        return any(needs_positive(c) for c in node.children)
    if isinstance(node, Or):
        return all(needs_positive(c) for c in node.children)
    return True


def is_positional(node: Node) -> bool:
    """Nodes that occupy word positions, so NEAR can measure distance between them."""
    if isinstance(node, Word | Exact | Prefix | Phrase | Near):
        return True
    if isinstance(node, Or):
        return all(is_positional(c) for c in node.children)
    return False


# --- lexer -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Lexeme:
    kind: str  # lparen rparen or and not minus near word phrase regex
    text: str  # raw text (for words, phrases and regexes: the content)
    start: int
    end: int
    distance: int = 0


def _lex(query: str) -> list[_Lexeme]:
    out: list[_Lexeme] = []
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch.isspace():
            i += 1
        elif ch == "(":
            out.append(_Lexeme("lparen", ch, i, i + 1))
            i += 1
        elif ch == ")":
            out.append(_Lexeme("rparen", ch, i, i + 1))
            i += 1
        elif ch in _OPEN_QUOTES:
            close = _CLOSE_QUOTES[ch]
            j = i + 1
            while j < n and query[j] != close and not (close != '"' and query[j] == '"'):
                j += 1
            if j >= n:
                raise QueryError(n, f"'{close}' to close the phrase opened at {i}")
            out.append(_Lexeme("phrase", query[i + 1 : j], i, j + 1))
            i = j + 1
        elif ch == "/":
            j = i + 1
            while j < n and query[j] != "/":
                j += 2 if query[j] == "\\" else 1
            if j >= n:
                raise QueryError(n, f"'/' to close the regex opened at {i}")
            out.append(_Lexeme("regex", query[i + 1 : j], i, j + 1))
            i = j + 1
        elif ch == "-":
            if i + 1 >= n or query[i + 1].isspace() or query[i + 1] == ")":
                raise QueryError(i + 1, "a term right after '-'")
            out.append(_Lexeme("minus", ch, i, i + 1))
            i += 1
        else:
            j = i
            while j < n and not query[j].isspace() and query[j] not in _SPECIAL:
                j += 1
            out.append(_classify(query[i:j], i, j))
            i = j
    return out


def _classify(raw: str, start: int, end: int) -> _Lexeme:
    if raw in ("OR", "AND", "NOT"):
        return _Lexeme(raw.lower(), raw, start, end)
    near = _NEAR_RE.fullmatch(raw)
    if near:
        distance = DEFAULT_NEAR
        if near.group(1) is not None:
            digits = near.group(1)
            if not digits.isdigit() or not 1 <= int(digits) <= MAX_NEAR:
                raise QueryError(
                    start + 5, f"a distance from 1 to {MAX_NEAR} after NEAR/", repr(digits)
                )
            distance = int(digits)
        return _Lexeme("near", raw, start, end, distance)
    return _Lexeme("word", raw, start, end)


# --- parser ------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.lexemes = _lex(text)
        self.pos = 0
        self.terms = 0

    def peek(self) -> _Lexeme | None:
        return self.lexemes[self.pos] if self.pos < len(self.lexemes) else None

    def at(self) -> int:
        lex = self.peek()
        return lex.start if lex else len(self.text)

    def found(self) -> str:
        lex = self.peek()
        return "the end of the query" if lex is None else f"{lex.text!r}"

    def parse(self) -> Node:
        node = self.or_expr(context="a word, phrase or '(' to start the query")
        lex = self.peek()
        if lex is not None:
            if lex.kind == "rparen":
                raise QueryError(
                    lex.start, "a term or the end of the query", "')' with no '(' open"
                )
            raise QueryError(lex.start, "a term or the end of the query", self.found())
        return node

    def or_expr(self, context: str) -> Node:
        children = [self.and_expr(context)]
        while (lex := self.peek()) is not None and lex.kind == "or":
            self.pos += 1
            children.append(self.and_expr("a word, phrase or '(' after OR"))
        return _make(Or, children)

    def and_expr(self, context: str) -> Node:
        children = [self.near_expr(context)]
        while (lex := self.peek()) is not None and lex.kind not in ("or", "rparen"):
            if lex.kind == "and":
                self.pos += 1
                children.append(self.near_expr("a word, phrase or '(' after AND"))
            else:
                children.append(self.near_expr(context))
        return _make(And, children)

    def near_expr(self, context: str) -> Node:
        start = self.at()
        node = self.unary(context)
        while (lex := self.peek()) is not None and lex.kind == "near":
            self.pos += 1
            right_start = self.at()
            right = self.unary("a word, phrase or '(' after NEAR")
            if not is_positional(node):
                raise QueryError(start, "a word, phrase, prefix or OR of those before NEAR")
            if not is_positional(right):
                raise QueryError(right_start, "a word, phrase, prefix or OR of those after NEAR")
            node = Near(node, right, lex.distance)
        return node

    def unary(self, context: str) -> Node:
        lex = self.peek()
        if lex is not None and lex.kind in ("not", "minus"):
            self.pos += 1
            what = "NOT" if lex.kind == "not" else "'-'"
            child = self.unary(f"a word, phrase or '(' after {what}")
            return child.child if isinstance(child, Not) else Not(child)
        return self.primary(context)

    def primary(self, context: str) -> Node:
        lex = self.peek()
        if lex is None or lex.kind in ("or", "and", "near", "rparen"):
            if lex is not None and lex.kind == "rparen" and self.pos > 0:
                prev = self.lexemes[self.pos - 1]
                if prev.kind == "lparen":
                    raise QueryError(lex.start, "a word, phrase or '(' inside the parentheses")
            raise QueryError(self.at(), context, self.found())
        self.pos += 1
        if lex.kind == "lparen":
            inner = self.or_expr("a word, phrase or '(' after '('")
            close = self.peek()
            if close is None or close.kind != "rparen":
                raise QueryError(
                    self.at(), f"')' to close '(' opened at {lex.start}", self.found()
                )
            self.pos += 1
            return inner
        if lex.kind == "phrase":
            return self.phrase(lex)
        if lex.kind == "regex":
            return self.regex(lex)
        return self.word(lex)

    def count(self, n: int, at: int) -> None:
        self.terms += n
        if self.terms > MAX_TERMS:
            raise QueryError(at, f"at most {MAX_TERMS} terms")

    def word(self, lex: _Lexeme) -> Node:
        raw = lex.text
        lowered = raw.casefold()
        if lowered.startswith("channel:"):
            self.count(1, lex.start)
            return _channel(raw[8:], lex.start + 8)
        if lowered.startswith("lang:"):
            self.count(1, lex.start)
            code = raw[5:].casefold()
            if not _LANG_RE.fullmatch(code):
                raise QueryError(lex.start + 5, "a language code after 'lang:' (like lang:ru)")
            return Lang(code)
        units = self.units(raw, lex.start)
        self.count(len(units), lex.start)
        return units[0] if len(units) == 1 else Phrase(tuple(units))

    def units(self, raw: str, start: int) -> list[Unit]:
        """One query chunk (no spaces) as units: `=x`, `x*`, `x`, or several for `a-b`."""
        exact = raw.startswith("=")
        prefix = raw.endswith("*") and len(raw) > 1
        body = raw[1 if exact else 0 : len(raw) - 1 if prefix else len(raw)]
        if exact and prefix:
            raise QueryError(start, "either '=' (exact form) or '*' (prefix), not both")
        words = [t.text for t in normalise(body).tokens]
        if not words:
            if exact and not body:
                raise QueryError(start + 1, "a word after '='")
            if raw.startswith("@"):
                raise QueryError(start, "a word (for a channel write channel:@name)", repr(raw))
            raise QueryError(start, "a word", repr(raw))
        if prefix:
            if len(words) != 1:
                raise QueryError(start, "a single word before '*'", repr(raw))
            if len(words[0]) < 2:
                raise QueryError(start, "at least 2 letters before '*'", repr(raw))
            return [Prefix(words[0])]
        if exact:
            return [Exact(w) for w in words]
        return [Word(w, query_word_keys(w)) for w in words]

    def phrase(self, lex: _Lexeme) -> Node:
        units: list[Unit] = []
        offset = lex.start + 1
        for m in re.finditer(r"\S+", lex.text):
            units.extend(self.units(m.group(), offset + m.start()))
        if not units:
            raise QueryError(lex.start + 1, "words inside the quotes")
        self.count(len(units), lex.start)
        return units[0] if len(units) == 1 else Phrase(tuple(units))

    def regex(self, lex: _Lexeme) -> Node:
        self.count(1, lex.start)
        if not lex.text:
            raise QueryError(lex.start + 1, "a pattern between '/' and '/'")
        return compile_regex(lex.text, lex.start)


def _channel(raw: str, at: int) -> Channel:
    name = raw.casefold()
    for lead in ("https://", "http://"):
        name = name.removeprefix(lead)
    name = name.removeprefix("t.me/").removeprefix("@")
    if _CHANNEL_ID_RE.fullmatch(name):
        return Channel(channel_id=bare_channel_id(int(name)))
    if not _USERNAME_RE.fullmatch(name):
        raise QueryError(at, "a channel after 'channel:' (like channel:@name)", repr(raw))
    return Channel(username=name)


def bare_channel_id(channel_id: int) -> int:
    """The channel id without Telegram's '-100' marker prefix ('-1001234' -> 1234)."""
    text = str(channel_id)
    if text.startswith("-100") and len(text) > 4:
        return int(text[4:])
    return abs(channel_id)


def _regex_options() -> Any:
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False
    options.max_mem = 8 << 20
    return options


def compile_regex(pattern: str, at: int = 0) -> Regex:
    """Compile a watch's regex with RE2; RE2's refusal becomes a QueryError with its reason."""
    try:
        compiled = re2.compile(pattern, _regex_options())
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise QueryError(at, f"a regular expression RE2 accepts ({reason})") from exc
    if compiled.search("") is not None:
        raise QueryError(
            at, "a regex that needs at least one character (this one matches any post)"
        )
    return Regex(pattern, compiled)


def _make(kind: type[And] | type[Or], children: list[Node]) -> Node:
    if len(children) == 1:
        return children[0]
    flat: list[Node] = []
    for child in children:
        if isinstance(child, kind):
            flat.extend(child.children)
        else:
            flat.append(child)
    return kind(tuple(flat))


def parse_query(text: str) -> Query:
    """Parse a watch query; raises QueryError pointing at the problem."""
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(
            MAX_QUERY_CHARS, f"at most {MAX_QUERY_CHARS} characters (this query has {len(text)})"
        )
    if not text.strip():
        raise QueryError(0, "a word to look for", "an empty query")
    root = _Parser(text).parse()
    if not needs_positive(root):
        raise QueryError(
            0,
            "a word, phrase, prefix or regex to look for "
            "(this query would match posts that contain none of its terms)",
        )
    return Query(root)
