"""Part of speedup ``webhooks``: fields of a protobuf message in its JSON mapping, read straight from the
parsed JSON.

protobuf's ``json_format.Parse`` walks the whole message in Python (~100 µs for one webhook event), while
the service reads a dozen fields. These readers take a field's value the way ``Parse`` would (JSON name or
proto name, 64-bit integers as numbers or digit strings, enums as names or numbers, ``null`` as the
default) and raise :class:`NotCanonicalError` for anything else, so that the caller can hand the document to
protobuf instead of guessing. A reader never returns a value ``Parse`` would not give.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson
from google.protobuf.message import Message

_INT64 = (-(2**63), 2**63 - 1)
# Deeper than any WebhookEvent; protobuf's parser (Python's json module underneath) fails on very deep
# documents where orjson does not, so those go to it.
MAX_DEPTH = 64
_ALL_BUT_STRUCTURE = bytes(sorted(set(range(256)) - set(b"{[:")))  # translate() deletes these
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"(\s*:)?')  # a string token, and whether a key (a colon follows)


class NotCanonicalError(ValueError):
    """A value in a form these readers do not take (or would read differently from protobuf)."""


class Field:
    """One field of a message type: its value in a JSON object of that type (``message``, ``string``,
    ``int64``, ``enum``), or the value already taken from the object under :attr:`json_name` (the ``*_of``
    readers: what a caller that knows the object has no :attr:`proto_name` key uses)."""

    __slots__ = ("_enum_names", "json_name", "proto_name")

    proto_name: str | None

    def __init__(self, message: type[Message], name: str) -> None:
        field = message.DESCRIPTOR.fields_by_name[name]
        self.json_name = field.json_name
        # The other name protobuf takes, if any.
        self.proto_name = field.name if field.name != field.json_name else None
        self._enum_names = (
            {value.name: value.number for value in field.enum_type.values} if field.enum_type else None
        )

    def _raw(self, obj: Mapping[str, Any]) -> Any:
        if self.proto_name is not None and self.proto_name in obj:
            if self.json_name in obj:
                raise NotCanonicalError(self.json_name)  # protobuf refuses a field given under both names
            return obj[self.proto_name]
        return obj.get(self.json_name)

    def message(self, obj: Mapping[str, Any]) -> Mapping[str, Any]:
        return self.message_of(self._raw(obj))

    def string(self, obj: Mapping[str, Any]) -> str:
        return self.string_of(self._raw(obj))

    def int64(self, obj: Mapping[str, Any]) -> int:
        return self.int64_of(self._raw(obj))

    def enum(self, obj: Mapping[str, Any]) -> int:
        """The enum's number (any number: proto3 enums are open, as protobuf keeps unknown numbers)."""
        return self.enum_of(self._raw(obj))

    def message_of(self, value: Any) -> Mapping[str, Any]:
        if type(value) is dict:
            return value
        if value is None:
            return {}
        raise NotCanonicalError(self.json_name)

    def string_of(self, value: Any) -> str:
        if type(value) is str:
            return value
        if value is None:
            return ""
        raise NotCanonicalError(self.json_name)

    def int64_of(self, value: Any) -> int:
        if type(value) is str:
            if value.isdigit() and value.isascii() and len(value) <= 18:
                return int(value)  # the usual form: at most 18 digits, always in range
            digits = value[1:] if value[:1] == "-" else value
            if digits.isascii() and digits.isdigit():  # what protobuf reads as a number: -?[0-9]+
                value = int(value)
        elif value is None:
            return 0
        if type(value) is not int or not _INT64[0] <= value <= _INT64[1]:
            raise NotCanonicalError(self.json_name)
        return value

    def enum_of(self, value: Any) -> int:
        assert self._enum_names is not None, self.json_name
        if value is None:
            return 0
        if type(value) is str:
            number = self._enum_names.get(value)
            if number is None:
                # protobuf would drop an unknown name, or read a digit string as the number
                raise NotCanonicalError(self.json_name)
            return number
        if type(value) is not int or not -(2**31) <= value < 2**31:
            raise NotCanonicalError(self.json_name)
        return value


def keys_unique(body: bytes, document: Any) -> bool:
    """Whether ``document`` (``body`` as parsed) kept every key the text has, none nested past
    :data:`MAX_DEPTH`: protobuf's parser refuses a key repeated in one object, where orjson keeps the last.

    Outside strings, a colon follows each key and nothing else, so the text has as many colons as keys plus
    the colons written inside strings. Without ``\\u`` escapes (the only way to write a colon other than as
    itself), the parsed strings hold exactly the colons written inside the text's strings that survived
    parsing, and orjson writes the document back with one colon per key it kept plus those: the counts agree
    only when no key repeats (a dropped copy takes at least its own colon with it). Each array and object
    is one ``{`` or ``[`` in the text, so a text with at most :data:`MAX_DEPTH` of them cannot nest deeper;
    any other text (rare) is walked: :func:`keys_walked`."""
    # (a backslash first: one byte is found much faster than two; find(), since `bytes in bytes` first tries
    # the needle as an integer and builds a TypeError each time)
    if body.find(b"\\") >= 0 and body.find(b"\\u") >= 0:
        return keys_walked(body, document)
    # The brackets and colons, in one pass over the body (three counts took three)
    structure = body.translate(None, _ALL_BUT_STRUCTURE)
    colons = structure.count(b":")
    if len(structure) - colons > MAX_DEPTH:
        return keys_walked(body, document)
    return colons == orjson.dumps(document).count(b":")


def keys_walked(body: bytes, document: Any) -> bool:
    """:func:`keys_unique` for any text: the parsed keys counted (and their depth checked) in a walk, the
    key tokens themselves counted when the text escapes characters with ``\\u``."""
    parsed = _count_keys(document, 0)
    if parsed < 0:
        return False
    colons = body.count(b":")
    if colons == parsed:
        return True
    if b"\\u" not in body:
        # orjson writes each key's colon and every colon inside a string as itself: K + C in one C call.
        return colons == orjson.dumps(document).count(b":")
    return sum(1 for match in _STRING.finditer(body) if match.group(1)) == parsed


def _count_keys(value: Any, depth: int) -> int:
    """Keys in all objects inside ``value``; -1 past :data:`MAX_DEPTH`."""
    if type(value) is dict:
        if depth >= MAX_DEPTH:
            return -1
        total = len(value)
        for item in value.values():
            if type(item) is dict or type(item) is list:
                inner = _count_keys(item, depth + 1)
                if inner < 0:
                    return -1
                total += inner
        return total
    if type(value) is list:
        if depth >= MAX_DEPTH:
            return -1
        total = 0
        for item in value:
            if type(item) is dict or type(item) is list:
                inner = _count_keys(item, depth + 1)
                if inner < 0:
                    return -1
                total += inner
        return total
    return 0
