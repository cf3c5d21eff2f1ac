"""Read a .properties text the way `java.util.Properties.load` does, which is how Kafka, Kafka
Connect and Schema Registry read their config files.

A line-by-line `key=value` regex misreads what the program's writer (`components/quoting.py`)
legitimately produces: escaped separators in keys (`a\\:b=c`), a key ended by whitespace
(`key value`), continuation lines, `!` comments and `\\uXXXX` escapes. A rule that misreads a
setting either misses a violation or reports one that is not there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_WHITESPACE = " \t\f"
_SEPARATORS = "=:"
_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}
_NATURAL_LINE_END = re.compile(r"\r\n|\r|\n")


def _logical_lines(text: str) -> Iterator[str]:
    """Lines after comments, blank lines and continuations (an odd number of trailing
    backslashes joins the next line, whose leading whitespace is dropped)."""
    pending: str | None = None
    for natural in _NATURAL_LINE_END.split(text):
        line = natural.lstrip(_WHITESPACE)
        if pending is None:
            if not line or line[0] in "#!":
                continue  # a comment line never continues, even when it ends in a backslash
            pending = ""
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2 == 1:
            pending += line[:-1]
            continue
        yield pending + line
        pending = None
    if pending:
        yield pending


def _split(line: str) -> tuple[str, str]:
    """(raw key, raw value): the key ends at the first unescaped separator or whitespace; one
    `=` or `:` and the whitespace around it separate it from the value."""
    end = 0
    escaped = False
    while end < len(line):
        char = line[end]
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in _SEPARATORS or char in _WHITESPACE:
            break
        end += 1
    start = end
    has_separator = False
    while start < len(line):
        char = line[start]
        if char in _SEPARATORS and not has_separator:
            has_separator = True
        elif char not in _WHITESPACE:
            break
        start += 1
    return line[:end], line[start:]


def _unescape(text: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        index += 1
        if char != "\\":
            out.append(char)
            continue
        if index >= len(text):
            break
        char = text[index]
        index += 1
        code = text[index : index + 4]
        if char == "u" and len(code) == 4 and all(c in "0123456789abcdefABCDEF" for c in code):
            out.append(chr(int(code, 16)))
            index += 4
        else:
            out.append(_ESCAPES.get(char, char))
    joined = "".join(out)
    try:  # \uXXXX escapes are UTF-16 units: join surrogate pairs into one character
        return joined.encode("utf-16", "surrogatepass").decode("utf-16")
    except UnicodeError:
        return joined


def property_entries(text: str) -> list[tuple[str, str]]:
    """(key, value) of a .properties text in file order, repeated keys included."""
    return [(_unescape(key), _unescape(value)) for key, value in map(_split, _logical_lines(text))]


def parse_properties(text: str) -> dict[str, str]:
    """Key -> value of a .properties text; a repeated key keeps its last value, as in Java."""
    return dict(property_entries(text))
