"""Untrusted XML in, well-formed XML text out. Standard library only.

Inbound: expat driven directly. The handler that first sees a DOCTYPE, an entity or notation
declaration, or an external reference raises at once, so a "billion laughs" or XXE body is
refused after reading its first few bytes, before any expansion or resolution. With no DTD,
expat knows only the five predefined entities and character references; any other reference
is a well-formedness error.

Outbound: ``text`` escapes a string for element content and keeps the document well-formed
even if the string holds characters XML 1.0 cannot carry.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NoReturn
from xml.parsers import expat

XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
_NIL = f"{XSI_NS} nil"
# Deeper than any DTO; a bound so a hostile body cannot make us build an absurd tree.
MAX_DEPTH = 32


class XmlError(ValueError):
    """Not well-formed, or uses a construct this parser refuses."""


class Element:
    """A parsed element: namespace URI, local name, ``i:nil``, its own text, its children.

    A plain slotted class rather than a frozen dataclass: a large request has thousands of
    elements and this is several times cheaper to build. Treat it as read-only.
    """

    __slots__ = ("children", "name", "nil", "ns", "text")

    def __init__(
        self, ns: str, name: str, nil: bool, text: str, children: tuple[Element, ...]
    ) -> None:
        self.ns = ns
        self.name = name
        self.nil = nil
        self.text = text
        self.children = children


class _TreeBuilder:
    """expat callbacks that build Elements; open elements live on a stack."""

    def __init__(self) -> None:
        # (expat name "ns local", attributes, text parts, children) of each open element
        self._open: list[tuple[str, dict[str, str], list[str], list[Element]]] = []
        self.root: Element | None = None

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        if len(self._open) >= MAX_DEPTH:
            raise XmlError(f"elements are nested deeper than {MAX_DEPTH}")
        self._open.append((tag, attrs, [], []))

    def end(self, _tag: str) -> None:
        tag, attrs, text, children = self._open.pop()
        ns, _, name = tag.rpartition(" ")
        nil = bool(attrs) and attrs.get(_NIL, "").strip() in ("true", "1")
        element = Element(ns, name, nil, "".join(text), tuple(children))
        if self._open:
            self._open[-1][3].append(element)
        else:
            self.root = element

    def chars(self, data: str) -> None:
        if self._open:
            self._open[-1][2].append(data)


def _refuse(what: str) -> Callable[..., NoReturn]:
    def handler(*_args: object) -> NoReturn:
        raise XmlError(f"{what} are not allowed")

    return handler


def parse(body: bytes) -> Element:
    """Parse an untrusted document; raises XmlError for anything but plain elements and text."""
    builder = _TreeBuilder()
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.buffer_text = True  # one text callback per run of text, not per line
    parser.StartDoctypeDeclHandler = _refuse("DTDs")
    parser.EntityDeclHandler = _refuse("entity declarations")
    parser.UnparsedEntityDeclHandler = _refuse("entity declarations")
    parser.NotationDeclHandler = _refuse("notation declarations")
    parser.ExternalEntityRefHandler = _refuse("external references")
    parser.SkippedEntityHandler = _refuse("entity references")
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.chars
    try:
        parser.Parse(body, True)
    except expat.ExpatError as exc:
        raise XmlError(f"not well-formed XML: {exc}") from None
    if builder.root is None:  # unreachable for a document expat accepted; kept for mypy
        raise XmlError("no root element")
    return builder.root


# Characters XML 1.0 cannot carry at all, not even as character references.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Anything text() must change: what XML cannot carry, and & < > CR.
_SPECIAL = re.compile(
    "[^\t\n\x20-\x25\x27-\x3b\x3d\x3f-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
# The ASCII bytes text() leaves alone: deleting them from ASCII text leaves what it changes.
_PLAIN_ASCII = bytes(c for c in range(128) if c in (9, 10) or (c >= 0x20 and chr(c) not in "&<>"))


def needs_escaping(value: str) -> bool:
    """Whether ``text(value)`` differs from ``value``; cheap, as most values need nothing."""
    if value.isascii():  # O(1); then a byte-table pass, several times faster than a regex
        return bool(value.encode("ascii").translate(None, _PLAIN_ASCII))
    return _SPECIAL.search(value) is not None


def text(value: str) -> str:
    """``value`` escaped for element content.

    Characters XML 1.0 forbids become U+FFFD, so the response always parses. CR is written as
    ``&#xD;`` (as .NET's XmlWriter does) because parsers turn a literal CR into LF.
    """
    if not needs_escaping(value):
        return value
    if _NOT_XML.search(value):
        value = _NOT_XML.sub("\ufffd", value)
    if "&" in value:
        value = value.replace("&", "&amp;")
    if "<" in value:
        value = value.replace("<", "&lt;")
    if ">" in value:
        value = value.replace(">", "&gt;")
    if "\r" in value:
        value = value.replace("\r", "&#xD;")
    return value

