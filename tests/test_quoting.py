"""components/quoting.py: each language's quoting reads back, in that language, as exactly the
value, one token, whatever the value holds. Checked against real sh and Java where the machine has
them, and against readers written from each language's rules (tests/languages.py)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import urllib.parse
import xml.etree.ElementTree as ElementTree

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from components import kube, quoting
from tests.languages import (SH_LITERAL, SqlToken, parse_option_string, read_properties, single_quoted_spans,
                             sql_tokens)

# Text without NUL (which no quoting can carry) and without lone surrogates (not encodable).
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
# Weighted towards what each language treats specially.
SPECIALS = "'\"`$\\;|&<>(){}[]*?!#~=:,%@^ \t\n\r\f\x0b\x1b\x7f\u00a0\u2028\u00e9\U0001f600-/."
HOSTILE_TEXT = st.one_of(TEXT, st.text(st.sampled_from(SPECIALS + "ab"), max_size=20))
FAST = settings(max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=40, deadline=None, database=None)


# --- sh ---------------------------------------------------------------------------------------------

@SLOW
@given(st.lists(HOSTILE_TEXT, min_size=1, max_size=6))
def test_shell_words_read_back_as_themselves_in_a_real_sh(words):
    script = "printf '%s\\0' " + " ".join(quoting.shell_word(word) for word in words)
    result = subprocess.run(["sh", "-c", script], capture_output=True, timeout=10)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().split("\0")[:-1] == words


@FAST
@given(HOSTILE_TEXT)
def test_a_shell_word_is_one_word_and_special_characters_sit_inside_single_quotes(value):
    word = quoting.shell_word(value)
    assert shlex.split(word) == [value]
    if not SH_LITERAL.fullmatch(value):
        # Outside single quotes there is nothing but quote characters (the '"'"' of a ' in the value).
        line = f"echo {word}"
        spans = single_quoted_spans(line)
        assert all(line[i] in "'\"" for i in range(5, len(line)) if not any(s <= i < e for s, e in spans))


def test_shell_words_leave_plain_values_as_they_are():
    for plain in ("datapipe-raw", "confluentinc/kafka-connect-s3:10.6.7", "retention.ms=604800000",
                  "https://repo1.maven.org/maven2/x/1.0/x-1.0.jar", "-Dspark.ui.port=4040"):
        assert quoting.shell_word(plain) == plain
    assert quoting.shell_word("") == "''"
    assert quoting.shell_word(6) == "6"


def test_nul_cannot_be_quoted_and_is_refused():
    for quote in (quoting.shell_word, quoting.sql_identifier, quoting.sql_literal, quoting.url_path_segment):
        with pytest.raises(ValueError, match="NUL"):
            quote("a\x00b")


# --- SQL --------------------------------------------------------------------------------------------

@FAST
@given(HOSTILE_TEXT)
def test_sql_identifiers_and_literals_are_one_token_each(value):
    sql = (f"CREATE ROLE {quoting.sql_identifier(value)} LOGIN; -- {value.splitlines()[0] if value else ''}\n"
           f"SELECT {quoting.sql_literal(value)}, :'cdc_password';")
    tokens = sql_tokens(sql)
    assert tokens == [SqlToken("word", "create"), SqlToken("word", "role"), SqlToken("ident", value),
                      SqlToken("word", "login"), SqlToken("op", ";"), SqlToken("word", "select"),
                      SqlToken("string", value), SqlToken("op", ","), SqlToken("psql-var", "cdc_password"),
                      SqlToken("op", ";")]


def test_sql_quoting_of_injection_attempts():
    assert quoting.sql_identifier('x"; DROP TABLE users; --') == '"x""; DROP TABLE users; --"'
    assert quoting.sql_literal("it's") == "'it''s'"
    assert quoting.sql_identifier("cdc_user") == '"cdc_user"'


# --- java.util.Properties ----------------------------------------------------------------------------

@FAST
@given(HOSTILE_TEXT, HOSTILE_TEXT, st.sampled_from(["=", " ", ":"]))
def test_a_properties_line_reads_back_as_exactly_its_key_and_value(key, value, separator):
    line = quoting.properties_line(key, value, separator)
    assert "\n" not in line and "\r" not in line
    assert all(" " <= c <= "~" for c in line)  # ISO 8859-1 readers (Kafka) see the same as UTF-8 ones
    assert read_properties(line + "\n") == [(key, value)]


@FAST
@given(st.dictionaries(HOSTILE_TEXT, HOSTILE_TEXT, max_size=6))
def test_a_properties_file_holds_exactly_its_entries(entries):
    assert dict(read_properties(kube.properties_text(entries))) == entries
    assert len(read_properties(kube.properties_text(entries))) == len(entries)


def test_properties_leave_plain_entries_as_they_are():
    assert quoting.properties_line("listeners", "INTERNAL://:9092,EXTERNAL://:9094") == \
        "listeners=INTERNAL://:9092,EXTERNAL://:9094"
    assert quoting.properties_line("spark.jars.packages", "a:b:1,c:d:2", " ") == "spark.jars.packages a:b:1,c:d:2"
    assert quoting.properties_line("k", "x\ny=1") == "k=x\\ny=1"
    assert quoting.properties_line("k", "=v", " ") == "k \\=v"


JAVA_READER = r"""
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.util.*;

public class ReadProperties {
    static String hex(String s) {
        StringBuilder b = new StringBuilder();
        for (char c : s.toCharArray()) b.append(String.format("%04x", (int) c));
        return b.toString();
    }
    public static void main(String[] args) throws Exception {
        Properties bytes = new Properties(), chars = new Properties();
        try (InputStream in = new FileInputStream(args[0])) { bytes.load(in); }  // as Kafka does
        try (Reader in = new InputStreamReader(new FileInputStream(args[0]), StandardCharsets.UTF_8)) {
            chars.load(in);  // as Spark does
        }
        if (!bytes.equals(chars)) throw new IllegalStateException("the two readers differ");
        for (String key : new TreeSet<>(bytes.stringPropertyNames()))
            System.out.println(hex(key) + "\t" + hex(bytes.getProperty(key)));
    }
}
"""


def _from_hex(text: str) -> str:
    return bytes.fromhex(text).decode("utf-16-be")


@pytest.mark.skipif(shutil.which("java") is None, reason="needs a JDK (java on PATH)")
def test_java_reads_the_properties_files_back_exactly(tmp_path):
    values = ["plain", " leading space", "trailing space ", "=starts with equals", ":colon", "#hash", "!bang",
              "back\\slash\\", "new\nline", "cr\rlf\r\n", "tab\there", "\u00e9t\u00e9", "\U0001f600 emoji",
              "x\ny=injected", "\\u0041 not an escape", "", "  ", "a=b:c d", "\x1b[31m", "\x7f\u2028"]
    entries = {f"key{i}{k}": v for i, v in enumerate(values) for k in ("", " sp", "=eq", ":co", "#h", "\n")}
    path = tmp_path / "test.properties"
    path.write_text(kube.properties_text(entries), encoding="utf-8")
    source = tmp_path / "ReadProperties.java"
    source.write_text(JAVA_READER)
    result = subprocess.run(["java", str(source), str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    read = dict(tuple(map(_from_hex, line.split("\t"))) if "\t" in line else (_from_hex(line), "")
                for line in result.stdout.splitlines())
    assert read == entries


# --- JVM option strings (SPARK_HISTORY_OPTS) ---------------------------------------------------------

@FAST
@given(st.lists(st.tuples(st.text("abcdefghijklmnopqrstuvwxyz.", min_size=1, max_size=15), HOSTILE_TEXT), max_size=5))
def test_jvm_options_split_back_into_exactly_the_flags(options):
    text = " ".join(quoting.jvm_option(key, value) for key, value in options)
    assert parse_option_string(text) == [f"-D{key}={value}" for key, value in options]


def test_jvm_options_leave_plain_flags_as_they_are():
    assert quoting.jvm_option("spark.history.fs.logDirectory", "file:///spark-events") == \
        "-Dspark.history.fs.logDirectory=file:///spark-events"
    assert parse_option_string(quoting.jvm_option("k", "a b -Dx=y")) == ["-Dk=a b -Dx=y"]


# --- URL path segments and XML -----------------------------------------------------------------------

@FAST
@given(HOSTILE_TEXT)
def test_a_url_path_segment_is_one_segment(value):
    segment = quoting.url_path_segment(value)
    assert urllib.parse.unquote(segment) == value
    url = f"https://repo.example/base/{segment}/file.jar"
    parts = urllib.parse.urlsplit(url)
    assert parts.netloc == "repo.example" and not parts.query and not parts.fragment
    assert parts.path.split("/") == ["", "base", segment, "file.jar"]
    assert quoting.url_path_segment("3.6.1.Final") == "3.6.1.Final"


XML_TEXT = st.text(st.characters(blacklist_categories=("Cs",),
                                 blacklist_characters="".join(chr(c) for c in range(32) if chr(c) not in "\t\n\r")
                                 + "\ufffe\uffff"), max_size=30)


@FAST
@given(XML_TEXT)
def test_xml_text_reads_back_in_elements_and_attributes(value):
    element = ElementTree.fromstring(f'<p a="{quoting.xml_text(value)}">{quoting.xml_text(value)}</p>')
    assert element.get("a") == value and (element.text or "") == value


def test_xml_refuses_characters_xml_cannot_hold():
    with pytest.raises(ValueError, match="XML"):
        quoting.xml_text("a\x01b")
