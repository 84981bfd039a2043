"""Text for a person's terminal: nothing printed can drive the terminal or hide from the reader.

Issue titles, comments, branch names, journal fields and git paths are written by people and
executors agentmesh does not trust, and the CLI prints them. A terminal acts on what it reads:
escape sequences move the cursor, clear the screen, set the window title, plant hyperlinks
(OSC 8), or query the terminal and make it type an answer. Bidi overrides reorder what is
shown, and zero-width and Unicode tag characters hide text from the reader.

`terminal_text` removes all of it, whole sequences rather than just the ESC byte (so no `[2J`
is left behind): CSI, OSC, DCS, SOS, PM and APC strings in their 7-bit and 8-bit forms, every
other escape sequence, C0 and C1 controls, and the invisible characters that
`core/sanitize.py` removes from what executors read. Newlines and tabs stay; CR becomes a
newline (a lone CR would let a line overwrite itself). `terminal_line` also folds it to one
line, for table cells. `json_safe` keeps JSON output exact but writes the same characters as
`\\u` escapes. All three never raise.

Printable ASCII holds none of those characters and is passed through as it is; the patterns are
compiled on the first text that needs them (compiling them is ~9 M instructions, as much as a claim's
own work in a `claims acquire` from cron, which prints one such line; docs/benchmarks.md).
"""

from __future__ import annotations

import re
from functools import cache

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the claim path
if TYPE_CHECKING:
    from re import Pattern

# ESC [ or CSI: parameter bytes, intermediate bytes, one final byte (missing at the end of the text).
_CSI = r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
# ESC ] P X ^ _ or OSC DCS SOS PM APC: a string up to BEL or ST (ESC \ or 0x9c), or to the end of
# the text when unterminated (the terminal would swallow the rest as well).
_STRING = r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
# Any other escape sequence: intermediate bytes and a final byte (ESC c resets the terminal).
_OTHER = r"\x1b[\x20-\x2f]*[\x30-\x7e]?"
_NEWLINES = "\r\n?|[\u2028\u2029\x85]"


@cache
def _patterns() -> tuple[Pattern[str], Pattern[str], Pattern[str]]:
    """(newlines, escape sequences, forbidden characters), compiled once, when first needed."""
    from agentmesh.core.sanitize import FORBIDDEN

    return re.compile(_NEWLINES), re.compile(f"{_CSI}|{_STRING}|{_OTHER}"), FORBIDDEN.compiled


def _plain(text: str) -> bool:
    """Printable ASCII only: no control (newline and tab included), escape or invisible character."""
    return text.isascii() and text.isprintable()


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    try:
        return "" if value is None else str(value)
    except Exception:  # noqa: BLE001 -- a hostile __str__ must not stop the output
        return "?"


def terminal_text(value: object) -> str:
    """`value` as text that is safe to print: no escape sequence, control or invisible character
    but newline and tab."""
    text = _text(value)
    if _plain(text):
        return text
    newlines, escapes, forbidden = _patterns()
    text = newlines.sub("\n", text)  # before the controls go: NEL (0x85) is a C1 control
    return forbidden.sub("", escapes.sub("", text))


def terminal_line(value: object) -> str:
    """`terminal_text` on one line: every run of whitespace, newlines and tabs included, is one space."""
    return " ".join(terminal_text(value).split())


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # a UTF-16 surrogate pair, as JSON writes characters beyond the BMP
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def json_safe(document: str) -> str:
    """A JSON document (from `json.dumps(..., ensure_ascii=False)`) with every character
    `terminal_text` would remove written as a `\\u` escape: the same data for a parser, nothing a
    terminal acts on, and no lone surrogate that UTF-8 output could not encode."""
    if _plain(document):
        return document
    return _patterns()[2].sub(lambda m: _escape(m.group()), document)
