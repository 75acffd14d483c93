"""Telegram's HTML parse mode, checked the way the Bot API checks it.

`parse_html` turns the HTML a bot sends into plain text plus message entities (offsets and
lengths in UTF-16 code units, as the Bot API reports them), or raises `EntityParseError` whose
message mimics Telegram's ("Unsupported start tag \"foo\" at byte offset 12", ...). Byte
offsets are UTF-8 offsets into the original string, as in Telegram's errors.

Supported: b, strong, i, em, u, ins, s, strike, del, span class="tg-spoiler", tg-spoiler,
a href, code, pre (with an inner code class="language-x"), blockquote (optionally
expandable), tg-emoji emoji-id, tg-time unix/format; the named entities &lt; &gt; &amp; &quot;
and numeric entities (&#NNN; and &#xHH;).

One deliberate strictness: Telegram tolerates a bare `&` that does not start an entity; we
refuse it (`strict_ampersand=True`), because in Vigil a bare `&` in rendered HTML always means
an escaping bug.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "EntityParseError",
    "MessageEntity",
    "ParsedText",
    "entity_text",
    "parse_html",
    "strip_text",
    "utf16_len",
]

_SIMPLE_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
}
_SUPPORTED_TAGS = frozenset(
    {*_SIMPLE_TAGS, "span", "a", "code", "pre", "blockquote", "tg-emoji", "tg-time"}
)
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_SPACES = " \t\n\r\f\v"


class EntityParseError(ValueError):
    """The text is not valid Telegram HTML; str() is Telegram's wording after the prefix."""


@dataclass(frozen=True, slots=True)
class MessageEntity:
    type: str
    offset: int  # UTF-16 code units
    length: int  # UTF-16 code units
    url: str | None = None
    language: str | None = None
    custom_emoji_id: str | None = None
    unix_time: int | None = None
    date_time_format: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.type, "offset": self.offset, "length": self.length}
        for name in ("url", "language", "custom_emoji_id", "unix_time", "date_time_format"):
            value = getattr(self, name)
            if value is not None:
                data[name] = value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MessageEntity:
        return cls(
            type=str(data["type"]),
            offset=int(data["offset"]),
            length=int(data["length"]),
            url=data.get("url"),
            language=data.get("language"),
            custom_emoji_id=data.get("custom_emoji_id"),
            unix_time=data.get("unix_time"),
            date_time_format=data.get("date_time_format"),
        )


@dataclass(frozen=True, slots=True)
class ParsedText:
    text: str
    entities: tuple[MessageEntity, ...]


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units (how Telegram counts message length and entity offsets)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def entity_text(text: str, entity: MessageEntity) -> str:
    """The substring of `text` an entity covers (converting UTF-16 offsets back)."""
    encoded = text.encode("utf-16-le")
    start = entity.offset * 2
    return encoded[start : start + entity.length * 2].decode("utf-16-le", errors="replace")


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8", errors="surrogatepass"))


def _decode_entity(text: str, i: int) -> tuple[str, int] | None:
    """Decode the entity starting at text[i] == '&'; return (char, index after ';')."""
    end = text.find(";", i + 1, i + 12)
    if end == -1:
        return None
    body = text[i + 1 : end]
    if body in _NAMED_ENTITIES:
        return _NAMED_ENTITIES[body], end + 1
    if body.startswith("#") and len(body) > 1:
        digits = body[1:]
        try:
            code = int(digits[1:], 16) if digits[0] in "xX" else int(digits, 10)
        except ValueError:
            return None
        if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
            return chr(code), end + 1
    return None


@dataclass(slots=True)
class _Open:
    tag: str
    attrs: dict[str, str]
    start: int  # UTF-16 offset in the output


def _decode_attr_value(value: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(value):
        if value[i] == "&":
            decoded = _decode_entity(value, i)
            if decoded is not None:
                out.append(decoded[0])
                i = decoded[1]
                continue
        out.append(value[i])
        i += 1
    return "".join(out)


def _parse_start_tag(text: str, begin: int) -> tuple[str, dict[str, str], int]:
    """Parse `<name attr="v" ...>` at text[begin]; return (name, attrs, index after '>')."""
    n = len(text)
    i = begin + 1
    while i < n and text[i] not in _SPACES and text[i] != ">":
        i += 1
    if i >= n:
        raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
    name = text[begin + 1 : i].lower()
    if name not in _SUPPORTED_TAGS:
        raise EntityParseError(
            f'Unsupported start tag "{name}" at byte offset {_byte_offset(text, begin)}'
        )
    attrs: dict[str, str] = {}
    while True:
        while i < n and text[i] in _SPACES:
            i += 1
        if i >= n:
            raise EntityParseError(
                f'Unclosed start tag "{name}" at byte offset {_byte_offset(text, begin)}'
            )
        if text[i] == ">":
            return name, attrs, i + 1
        attr_begin = i
        while i < n and text[i] not in _SPACES and text[i] not in "=>":
            i += 1
        attr = text[attr_begin:i].lower()
        while i < n and text[i] in _SPACES:
            i += 1
        if i < n and text[i] == "=":
            i += 1
            while i < n and text[i] in _SPACES:
                i += 1
            if i >= n:
                break
            if text[i] in "\"'":
                quote = text[i]
                close = text.find(quote, i + 1)
                if close == -1:
                    break
                value = text[i + 1 : close]
                i = close + 1
            else:
                value_begin = i
                while i < n and text[i] not in _SPACES and text[i] != ">":
                    i += 1
                value = text[value_begin:i]
            attrs[attr] = _decode_attr_value(value)
        else:
            attrs[attr] = ""
    raise EntityParseError(
        f'Unclosed start tag "{name}" at byte offset {_byte_offset(text, begin)}'
    )


def _check_start_tag(name: str, attrs: dict[str, str], stack: list[_Open]) -> None:
    if name == "span" and attrs.get("class") != "tg-spoiler":
        raise EntityParseError('Tag "span" must have class "tg-spoiler"')
    if name == "tg-emoji" and not attrs.get("emoji-id", "").isdigit():
        raise EntityParseError('Custom emoji entity must contain a valid "emoji-id" attribute')
    if name == "tg-time" and not attrs.get("unix", "").lstrip("-").isdigit():
        raise EntityParseError('Tag "tg-time" must have a valid "unix" attribute')
    if name == "blockquote" and any(o.tag == "blockquote" for o in stack):
        raise EntityParseError("Blockquote entities can't be nested")


def _close(open_tag: _Open, end: int, stack: list[_Open]) -> MessageEntity | None:
    length = end - open_tag.start
    name, attrs = open_tag.tag, open_tag.attrs
    if length <= 0:
        return None
    if name in _SIMPLE_TAGS:
        return MessageEntity(_SIMPLE_TAGS[name], open_tag.start, length)
    if name == "span":
        return MessageEntity("spoiler", open_tag.start, length)
    if name == "a":
        href = attrs.get("href", "")
        return MessageEntity("text_link", open_tag.start, length, url=href) if href else None
    if name == "code":
        if stack and stack[-1].tag == "pre":
            language = attrs.get("class", "")
            if language.startswith("language-") and len(language) > len("language-"):
                stack[-1].attrs.setdefault("_language", language[len("language-") :])
            return None  # <pre><code> is one pre entity
        return MessageEntity("code", open_tag.start, length)
    if name == "pre":
        return MessageEntity("pre", open_tag.start, length, language=attrs.get("_language"))
    if name == "blockquote":
        kind = "expandable_blockquote" if "expandable" in attrs else "blockquote"
        return MessageEntity(kind, open_tag.start, length)
    if name == "tg-emoji":
        return MessageEntity(
            "custom_emoji", open_tag.start, length, custom_emoji_id=attrs["emoji-id"]
        )
    # tg-time
    return MessageEntity(
        "date_time",
        open_tag.start,
        length,
        unix_time=int(attrs["unix"]),
        date_time_format=attrs.get("format") or None,
    )


def parse_html(text: str, *, strict_ampersand: bool = True) -> ParsedText:
    """Parse Telegram HTML into plain text + entities; raise EntityParseError."""
    out: list[str] = []
    out_len = 0  # UTF-16 units emitted so far
    stack: list[_Open] = []
    entities: list[MessageEntity] = []
    n = len(text)
    i = 0
    while i < n:
        ch = text[i]
        if ch == "&":
            decoded = _decode_entity(text, i)
            if decoded is None:
                if strict_ampersand:
                    raise EntityParseError(
                        "Unsupported HTML entity or bare '&' at byte offset "
                        f"{_byte_offset(text, i)}"
                    )
                decoded = ("&", i + 1)
            out.append(decoded[0])
            out_len += utf16_len(decoded[0])
            i = decoded[1]
            continue
        if ch != "<":
            j = i + 1
            while j < n and text[j] not in "&<":
                j += 1
            chunk = text[i:j]
            out.append(chunk)
            out_len += utf16_len(chunk)
            i = j
            continue
        if i + 1 < n and text[i + 1] == "/":
            close = text.find(">", i + 2)
            if close == -1:
                raise EntityParseError(f"Unclosed end tag at byte offset {_byte_offset(text, i)}")
            name = text[i + 2 : close].strip(_SPACES).lower()
            if not stack:
                raise EntityParseError(
                    f"Unexpected end tag at byte offset {_byte_offset(text, i)}"
                )
            if name != stack[-1].tag:
                raise EntityParseError(
                    f"Unmatched end tag at byte offset {_byte_offset(text, i)}, expected "
                    f'"</{stack[-1].tag}>", found "</{name}>"'
                )
            open_tag = stack.pop()
            entity = _close(open_tag, out_len, stack)
            if entity is not None:
                entities.append(entity)
            i = close + 1
            continue
        name, attrs, after = _parse_start_tag(text, i)
        _check_start_tag(name, attrs, stack)
        stack.append(_Open(name, attrs, out_len))
        i = after
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1].tag}"')
    entities.sort(key=lambda e: (e.offset, -e.length))
    return ParsedText("".join(out), tuple(entities))


def strip_text(parsed: ParsedText) -> ParsedText:
    """Trim surrounding whitespace the way Telegram does, clipping the entities to match."""
    text = parsed.text
    stripped = text.strip()
    if stripped == text:
        return parsed
    lead = utf16_len(text[: len(text) - len(text.lstrip())])
    size = utf16_len(stripped)
    entities: list[MessageEntity] = []
    for entity in parsed.entities:
        start = max(entity.offset - lead, 0)
        end = min(entity.offset + entity.length - lead, size)
        if end > start:
            entities.append(
                MessageEntity(
                    entity.type,
                    start,
                    end - start,
                    entity.url,
                    entity.language,
                    entity.custom_emoji_id,
                    entity.unix_time,
                    entity.date_time_format,
                )
            )
    return ParsedText(stripped, tuple(entities))
