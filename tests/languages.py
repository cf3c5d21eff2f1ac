"""Readers of the languages config values are written into, written from each language's own rules
(not from components/quoting.py), so that tests can check that a quoted value reads back as itself.

  read_properties       java.util.Properties.load (LineReader + loadConvert, JDK 17)
  parse_option_string   Spark's launcher, CommandBuilderUtils.parseOptionString
  sql_tokens            PostgreSQL's (and psql's) lexer, for the statements init.sql uses
  single_quoted_spans   where POSIX sh reads text literally inside '...'
"""

from __future__ import annotations

import re
from typing import NamedTuple

from policy.rules._java_properties import property_entries

# --- java.util.Properties -------------------------------------------------------------------------
# The policy pack reads the rendered properties files with the same reader (java.util.Properties.load:
# LineReader + loadConvert, JDK 17), so one implementation serves both.

read_properties = property_entries


# --- Spark's launcher option strings ----------------------------------------------------------------

def _java_whitespace(char: str) -> bool:
    """Character.isWhitespace: Unicode space separators except the non-breaking ones, and
    \\t \\n \\x0b \\f \\r \\x1c-\\x1f."""
    import unicodedata

    if char in "\t\n\x0b\f\r\x1c\x1d\x1e\x1f":
        return True
    return unicodedata.category(char) in ("Zs", "Zl", "Zp") and char not in "\u00a0\u2007\u202f"


def parse_option_string(text: str) -> list[str]:
    """CommandBuilderUtils.parseOptionString, which splits SPARK_HISTORY_OPTS and the like."""
    options: list[str] = []
    option: list[str] = []
    in_option = single = double = escape_next = has_data = False
    for char in text:
        if escape_next:
            option.append(char)
            escape_next = False
        elif in_option:
            if char == "\\":
                if single:
                    option.append(char)
                else:
                    escape_next = True
            elif char == "'":
                if double:
                    option.append(char)
                else:
                    single = not single
            elif char == '"':
                if single:
                    option.append(char)
                else:
                    double = not double
            elif not _java_whitespace(char) or single or double:
                option.append(char)
            else:
                options.append("".join(option))
                option, in_option, has_data = [], False, False
        elif char == "'":
            single = in_option = has_data = True
        elif char == '"':
            double = in_option = has_data = True
        elif char == "\\":
            escape_next = in_option = has_data = True
        elif not _java_whitespace(char):
            in_option = has_data = True
            option.append(char)
    if single or double or escape_next:
        raise ValueError(f"Invalid option string: {text!r}")
    if has_data:
        options.append("".join(option))
    return options


# --- PostgreSQL / psql --------------------------------------------------------------------------------

class SqlToken(NamedTuple):
    kind: str  # word (an unquoted keyword or name, folded to lower case), ident, string, number, psql-var, op
    value: str


def _quoted(text: str, start: int, quote: str) -> tuple[str, int]:
    """A '...' or "..." token from `start` (the opening quote): the doubled quote is one quote."""
    out: list[str] = []
    index = start + 1
    while True:
        end = text.find(quote, index)
        if end < 0:
            raise ValueError(f"unterminated {quote} at {start}")
        out.append(text[index:end])
        if text.startswith(quote * 2, end):
            out.append(quote)
            index = end + 2
        else:
            return "".join(out), end + 1


def sql_tokens(text: str) -> list[SqlToken]:
    """PostgreSQL's lexer for what init.sql uses (standard_conforming_strings on), plus psql's
    `:'name'` variable. Comments are dropped; quoted identifiers and strings keep their content."""
    tokens: list[SqlToken] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char.isspace():
            index += 1
        elif text.startswith("--", index):
            end = text.find("\n", index)
            index = len(text) if end < 0 else end
        elif text.startswith("/*", index):
            end = text.find("*/", index + 2)
            if end < 0:
                raise ValueError("unterminated comment")
            index = end + 2
        elif char in "\"'":
            value, index = _quoted(text, index, char)
            tokens.append(SqlToken("ident" if char == '"' else "string", value))
        elif text.startswith(":'", index):
            value, index = _quoted(text, index + 1, "'")
            tokens.append(SqlToken("psql-var", value))
        elif re.match(r"[A-Za-z_\x80-\U0010ffff]", char):
            match = re.compile(r"[A-Za-z0-9_$\x80-\U0010ffff]+").match(text, index)
            tokens.append(SqlToken("word", match.group().lower()))
            index = match.end()
        elif char.isdigit():
            match = re.compile(r"[0-9]+(\.[0-9]+)?").match(text, index)
            tokens.append(SqlToken("number", match.group()))
            index = match.end()
        else:
            tokens.append(SqlToken("op", char))
            index += 1
    return tokens


# --- POSIX sh -----------------------------------------------------------------------------------------

def single_quoted_spans(script: str) -> list[tuple[int, int]]:
    """(start, end) of the text inside each '...' that sh reads as a literal: outside double
    quotes and comments, not after a backslash. Scripts here use no here-documents."""
    spans = []
    index, word_start = 0, True
    while index < len(script):
        char = script[index]
        if char == "\\":
            index += 2
            word_start = False
        elif char == "'":
            end = script.index("'", index + 1)
            spans.append((index + 1, end))
            index, word_start = end + 1, False
        elif char == '"':
            index += 1
            while script[index] != '"':
                index += 2 if script[index] == "\\" else 1
            index, word_start = index + 1, False
        elif char == "#" and word_start:
            end = script.find("\n", index)
            index = len(script) if end < 0 else end
        else:
            word_start = char in " \t\n;&|()<>"
            index += 1
    return spans


# Characters sh reads literally in an unquoted word (shlex's safe set).
SH_LITERAL = re.compile(r"[A-Za-z0-9_@%+=:,./-]*")
