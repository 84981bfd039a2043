"""core/terminal.py: nothing printed can drive the terminal; and the CLI prints nothing around it."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import agentmesh.cli
from agentmesh.core.terminal import _patterns, json_safe, terminal_line, terminal_text

# Independent of core/sanitize.py on purpose: ESC and every other C0 control but tab and LF, DEL, C1,
# zero-width, bidi embeddings, overrides and isolates, word joiner, BOM, tag characters.
HIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff"
                    "\U000e0000-\U000e007f]")


@pytest.mark.parametrize("raw, shown", [
    ("\x1b[31mred\x1b[0m", "red"),  # CSI (SGR): the whole sequence goes, no `[31m` is left
    ("a\x1b[2J\x1b[Hb", "ab"),  # clear the screen, cursor home
    ("\x1b[?1049h\x1b[?25lx", "x"),  # private-mode CSI
    ("\x9b31mx\x9b0m", "x"),  # 8-bit CSI
    ("\x1b]0;owned\x07title", "title"),  # OSC: window title, BEL-terminated
    ("\x1b]8;;https://evil.example/\x1b\\link\x1b]8;;\x1b\\", "link"),  # OSC 8 hyperlink, ST-terminated
    ("\x9d8;;https://evil.example/\x9clink", "link"),  # 8-bit OSC and ST
    ("\x1b]52;c;cGF5bG9hZA==\x07x", "x"),  # OSC 52: write the clipboard
    ("\x1bP+q544e\x1b\\x", "x"),  # DCS: query the terminal
    ("\x1b_apc\x1b\\x\x1b^pm\x1b\\y\x1bXsos\x1b\\z", "xyz"),  # APC, PM, SOS
    ("\x1bcreset", "reset"),  # RIS: ESC and its final byte
    ("\x1b(Bx", "x"),  # charset designation
    ("ok\x1b]0;unterminated", "ok"),  # an unterminated string swallows the rest, as the terminal would
    ("tag\U000e0041\U000e0042s", "tags"),  # Unicode tag characters: invisible ASCII
    ("\u202eexe.txt\u202c \u2066x\u2069", "exe.txt x"),  # bidi override and isolate
    ("zero\u200bwidth\u200d\ufeff", "zerowidth"),
    ("bell\x07 bs\x08 nul\x00 del\x7f", "bell bs nul del"),
    ("one\r\ntwo\rthree\x85four\u2028five", "one\ntwo\nthree\nfour\nfive"),  # a lone CR would overwrite a line
    ("tab\tand\nnewline", "tab\tand\nnewline"),
    ("[red]markup[/red] and [link=https://x]y[/link]", "[red]markup[/red] and [link=https://x]y[/link]"),
    ("Ünïcödé 日本語 🚀", "Ünïcödé 日本語 🚀"),
])
def test_terminal_text(raw, shown):
    assert terminal_text(raw) == shown


def test_terminal_line_folds_whitespace_and_never_raises():
    assert terminal_line("a\n\tb \x1b[2J  c\r\n") == "a b c"
    assert terminal_line(None) == "" and terminal_line(42) == "42"

    class Hostile:
        def __str__(self):
            raise RuntimeError("no")

    assert terminal_text(Hostile()) == "?"


@given(st.text(alphabet=st.sampled_from(["\x1b", "[", "]", "\\", "\x07", "\x9b", "\x9c", "\x9d", "\x90", "P", "0",
                                         ";", "m", "a", "\n", "\r", "\t", "\u202e", "\U000e0041", "\ud800"]),
               max_size=40))
def test_nothing_hidden_survives(raw):
    shown = terminal_text(raw)
    assert not HIDDEN.search(shown) and "\r" not in shown
    shown.encode("utf-8")  # no lone surrogate: printing it cannot raise
    assert "\n" not in terminal_line(raw)


def full_patterns(text):
    """What the patterns alone make of `text`: terminal_text without its printable-ASCII shortcut."""
    newlines, escapes, forbidden = _patterns()
    return forbidden.sub("", escapes.sub("", newlines.sub("\n", text)))


@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x7f), max_size=40))
def test_printable_ascii_is_passed_through_as_the_patterns_leave_it(raw):
    assert terminal_text(raw) == full_patterns(raw)
    if raw.isprintable():
        assert full_patterns(raw) == raw and json_safe(raw) == raw == _patterns()[2].sub("?", raw)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12))
def test_json_safe_keeps_the_data_and_hides_nothing(data):
    document = json_safe(json.dumps(data, ensure_ascii=False))
    assert json.loads(document) == data
    assert not HIDDEN.search(document)
    document.encode("utf-8")


CLI = Path(agentmesh.cli.__file__).parent
PRINTERS = {"echo", "secho", "print", "write"}
NOT_YET = {"init.py"}  # the lead's, changing in the same release: it prints only its own text for now


def _prints(source: str) -> list[int]:
    """Lines of calls that print past cli/output.py: click.echo, click.secho, print, sys.std*.write."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id == "print":
            found.append(node.lineno)
        elif isinstance(func, ast.Attribute) and func.attr in PRINTERS and isinstance(func.value, (ast.Name,
                                                                                                  ast.Attribute)):
            owner = func.value.id if isinstance(func.value, ast.Name) else func.value.attr
            if owner in ("click", "stdout", "stderr", "sys"):
                found.append(node.lineno)
    return found


def test_every_cli_output_goes_through_the_sanitizer():
    offending = {f.name: lines for f in sorted(CLI.glob("*.py"))
                 if f.name not in {"output.py", *NOT_YET} and (lines := _prints(f.read_text()))}
    assert offending == {}


def test_the_print_check_finds_prints():
    source = "import click, sys\nclick.echo('x')\nprint(1)\nsys.stderr.write('y')\necho('fine')\nclick.secho('z')\n"
    assert _prints(source) == [2, 3, 4, 6]
