"""HTML from untrusted text: the one place where the report page (ops/report_html.py) escapes.

Everything the page shows comes from forge text and journals, which anyone who can open an
issue or push a branch can write. The page is built only from `Markup` values made by `el`:
tag and attribute names are the page's own (checked against a fixed pattern, and no `on*`
handler), while every text child and attribute value is cleaned by `clean` (escape sequences,
controls, bidi overrides and isolates, zero-width and tag characters removed, as for a
terminal; one line; a length cap) and then HTML-escaped, quotes included. A string is never
trusted as markup: only `Markup` passes through, and only this module makes it.

Links come from `link_url`: an http(s) URL of a strict shape, under the forge's own web URL
when one is given, so no `javascript:` or `data:` URL, and no link to elsewhere, reaches an href.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping

from agentmesh.core.pattern import LazyPattern
from agentmesh.core.terminal import terminal_text

TEXT_MAX = 200  # characters of any one text shown; titles are cut with an ellipsis beyond
URL_MAX = 2048
_SPACES = LazyPattern(r"\s+")
# Text that clean() and escape() leave as it is (no character to remove, escape or fold): the page's own
# numbers, coordinates, classes and dates, most names. Checked with one match instead of cleaned.
_PLAIN = LazyPattern(r"[A-Za-z0-9.,:#/_%+=-]+(?: [A-Za-z0-9.,:#/_%+=-]+)*")
_NAME = LazyPattern(r"[a-z][a-z0-9]*")
_ATTRIBUTE = LazyPattern(r"[a-zA-Z][a-zA-Z0-9-]*")
# scheme, host (name, IPv4 or bracketed IPv6), optional port, then only unreserved/sub-delim path characters
_URL = LazyPattern(r"https?://(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?"
                  r"(?:[/?#][A-Za-z0-9._~%!$&'()*+,;=:@/?#-]*)?")


class Markup(str):
    """HTML made by `el`, `void` or `join`: trusted, passed through unescaped."""

    __slots__ = ()


def clean(value: object, max_len: int = TEXT_MAX) -> str:
    """`value` as one line of plain text, safe to show: no control, escape, bidi or invisible
    character, every whitespace run one space (kept at the ends: "by " + name), at most `max_len`
    characters (an ellipsis marks a cut)."""
    text = _SPACES.sub(" ", terminal_text(value))
    if len(text) > max_len:
        text = text[:max(0, max_len - 1)] + "…"
    return text


def _escaped(value: object, max_len: int) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and len(value) <= max_len and _PLAIN.fullmatch(value):
        return value
    return html.escape(clean(value, max_len), quote=True)


def escape(value: object, max_len: int = TEXT_MAX) -> Markup:
    """`clean(value)` escaped for HTML text or a quoted attribute value."""
    if isinstance(value, Markup):
        return value
    return Markup(_escaped(value, max_len))


def _attributes(attrs: Mapping[str, object]) -> str:
    out = []
    for name, value in attrs.items():
        if not _ATTRIBUTE.fullmatch(name) or name.lower().startswith("on"):
            raise ValueError(f"attribute name {name!r} is not allowed")
        if value is None or value is False:
            continue
        if value is True:
            out.append(f" {name}")
        else:
            out.append(f' {name}="{_escaped(str(value), URL_MAX)}"')  # Markup too: an attribute is never markup
    return "".join(out)


def el(tag: str, attrs: Mapping[str, object] | None = None, *children: object) -> Markup:
    """`<tag attrs>children</tag>`: `tag` and attribute names are the caller's constants; values and
    non-Markup children are untrusted text. A child may be an iterable of children (not a string)."""
    if not _NAME.fullmatch(tag) or tag in ("script", "style", "iframe", "object", "embed", "base", "meta"):
        raise ValueError(f"tag {tag!r} is not allowed")
    return Markup(f"<{tag}{_attributes(attrs or {})}>{join(children)}</{tag}>")


def void(tag: str, attrs: Mapping[str, object] | None = None) -> Markup:
    """An element with no content (`<rect .../>`, `<line .../>`, `<br>`)."""
    if not _NAME.fullmatch(tag):
        raise ValueError(f"tag {tag!r} is not allowed")
    return Markup(f"<{tag}{_attributes(attrs or {})}/>")


def join(children: Iterable[object]) -> Markup:
    parts = []
    for child in children:
        if child is None:
            continue
        if isinstance(child, str):
            parts.append(escape(child))
        elif isinstance(child, Iterable):
            parts.append(join(child))
        else:
            parts.append(escape(child))
    return Markup("".join(parts))


def http_url(value: object) -> str | None:
    """`value` when it is an http(s) URL of a strict shape (no space, quote, control or other
    character a URL does not need), else None."""
    if not isinstance(value, str) or len(value) > URL_MAX or not _URL.fullmatch(value):
        return None
    if "/.." in value.lower().replace("%2e", "."):  # a browser reads %2e as a dot: no way up out of the base
        return None
    return value


def link_url(value: object, base: object) -> str | None:
    """`value` when it is a safe http(s) URL under the forge's web URL `base` (scheme, host and path
    prefix), else None. Without a usable base there are no links: nothing free-text becomes one."""
    root = http_url(base)
    url = http_url(value)
    if root is None or url is None:
        return None
    root = root.rstrip("/")
    return url if url.startswith(root + "/") and len(url) > len(root) + 1 else None
