"""One quoting function per language a config value is written into.

The config models check every value against its grammar first (components/config*.py), so
for a valid config most of these are no-ops. They are still applied at every interpolation
site: the grammar says what a value may be, the quoting says how the receiving language must
read it, and neither should rely on the other. Each function returns text that the receiving
parser reads back as exactly `value`, as one token, whatever the value holds.

  shell_word           POSIX sh: one word (shlex.quote), for the scripts in ConfigMaps
  sql_identifier       PostgreSQL: a quoted identifier ("name")
  sql_literal          PostgreSQL: a string constant ('text')
  properties_line      java.util.Properties: one `key=value` (or `key value`) line
  jvm_option           a JVM option string that Spark's launcher splits (SPARK_HISTORY_OPTS)
  url_path_segment     one segment of a URL path (percent-encoding)
  xml_text             XML character data and attribute values

Pure: the standard library only (the config models and tests import it without Pulumi).
"""

from __future__ import annotations

import re
import shlex
import urllib.parse
from typing import Any
from xml.sax.saxutils import escape as _xml_escape

__all__ = ["shell_word", "sql_identifier", "sql_literal", "properties_line", "jvm_option", "url_path_segment",
           "xml_text"]


def _no_nul(value: str, language: str) -> str:
    if "\x00" in value:
        # No quoting can carry NUL: C strings (argv, libpq) end there.
        raise ValueError(f"{value!r} contains a NUL character, which {language} cannot carry")
    return value


def shell_word(value: Any) -> str:
    """`value` as one POSIX sh word, never expanded: unchanged when it holds only characters sh
    reads literally (letters, digits, `@%+=:,./-_`), else single-quoted."""
    return shlex.quote(_no_nul(str(value), "a shell word"))


def sql_identifier(name: str) -> str:
    """A PostgreSQL quoted identifier: always double-quoted, embedded `"` doubled. Quoted, a name
    is never read as a keyword and keeps its case (the config models allow only lower case, so
    the quoted name is the one an unquoted reference folds to)."""
    return '"' + _no_nul(name, "SQL").replace('"', '""') + '"'


def sql_literal(value: str) -> str:
    """A PostgreSQL string constant: single-quoted, embedded `'` doubled. With
    standard_conforming_strings (on since PostgreSQL 9.1) backslashes are literal."""
    return "'" + _no_nul(value, "SQL").replace("'", "''") + "'"


_PROPERTIES_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f"}


def _properties_escape(text: str, specials: str, leading: str) -> str:
    out = []
    for index, char in enumerate(text):
        if char in _PROPERTIES_ESCAPES:
            out.append(_PROPERTIES_ESCAPES[char])
        elif char in specials or (index == 0 and char in leading):
            out.append("\\" + char)
        elif " " <= char <= "~":
            out.append(char)
        else:
            # \uXXXX (UTF-16 units): read the same by Properties.load(InputStream), which Kafka
            # uses (ISO 8859-1), and by load(Reader), which Spark uses (UTF-8).
            encoded = char.encode("utf-16-be")
            out.extend(f"\\u{int.from_bytes(encoded[i:i + 2], 'big'):04x}" for i in range(0, len(encoded), 2))
    return "".join(out)


def properties_line(key: Any, value: Any, separator: str = "=") -> str:
    """One line of a java.util.Properties file (no newline), read back as exactly (key, value).

    Keys escape what ends a key (whitespace, `=`, `:`) and what starts a comment (`#`, `!`);
    values escape a leading space, `=` or `:` (the loader would skip it as a separator). Both
    escape backslash, line breaks and every character outside printable ASCII, so a value can
    neither continue onto nor start another line. Printable values without a leading
    separator character are written as they are. `separator` is `=` (Kafka's server.properties)
    or a space (spark-defaults.conf)."""
    if separator not in ("=", " ", ":"):
        raise ValueError(f"separator {separator!r} is not one java.util.Properties reads")
    key_text = _properties_escape(str(key), " =:#!", "")
    # An empty key before a space would read as the line's leading whitespace.
    return (key_text + (separator if key_text else "=")
            + _properties_escape(str(value), "", " =:#!"))


def jvm_option(key: str, value: Any) -> str:
    """`-D<key>=<value>` as one word of a JVM option string such as SPARK_HISTORY_OPTS. Spark's
    launcher splits those strings like sh does (CommandBuilderUtils.parseOptionString: single
    quotes literal, double quotes with backslash escapes), so sh's quoting is its quoting."""
    return shell_word(f"-D{key}={value}")


def url_path_segment(value: Any) -> str:
    """`value` as one URL path segment: everything but RFC 3986's unreserved characters is
    percent-encoded, `/` included, so a value cannot add segments or a query."""
    return urllib.parse.quote(_no_nul(str(value), "a URL"), safe="")


_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: Any) -> str:
    """`value` as XML character data or a double-quoted attribute value. Tabs and line breaks are
    character references, so that neither attribute-value nor line-end normalisation alters them."""
    text = str(value)
    if _XML_ILLEGAL.search(text):
        raise ValueError(f"{text!r} has a character XML 1.0 cannot hold")
    return _xml_escape(text, {'"': "&quot;", "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"})
