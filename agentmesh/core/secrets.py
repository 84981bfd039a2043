"""Secret scanning, pure: find credentials in text or in the added lines of a diff.

An executor works in a checkout and may write a token it saw (in its
environment, a config file, a log) into the change it produces. Before a push
the agent scans the diff, and before a log line or forge comment leaves the
host it redacts it. Both run on untrusted text, so every pattern has bounded
repetition (no quadratic backtracking on a hostile megabyte) and nothing
raises.

Format rules (GitHub, GitLab, Slack, Anthropic, OpenAI, AWS key ids, private key blocks) are
precise. Key-based rules (Gitea/Forgejo tokens, AWS secret keys, generic
`password = "..."` assignments) look at what a value is assigned to, and the
generic one also demands a mixed, high-entropy value that is not an obvious
placeholder; it favours recall, since a false alarm costs a human a glance and
a leak costs a rotation. `known_secrets` are this host's own secret values
(its forge token, an executor's API key): found whatever their shape, verbatim
and in the encodings a hostile task would ask an executor or a gate to print
them in: base64 (standard and URL-safe, at every byte offset, so a secret in
the middle of an encoded file is found too), hex, reversed, and each of these
split by whitespace (`base64` wraps its lines, `t o k e n`).

A finding's excerpt shows at most the first four characters of a secret, so
findings themselves can be logged and posted.
"""

from __future__ import annotations

import base64
import math
import re
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

from agentmesh.core.pattern import LazyPattern
from agentmesh.core.sanitize import FORBIDDEN

REDACTED = "[REDACTED]"
MIN_KNOWN_SECRET = 8
MAX_REDACT_PASSES = 64  # removal passes before redact gives up and withholds the whole text
ENTROPY_THRESHOLD = 3.0  # bits per character
MIN_GENERIC_LENGTH = 16
EXCERPT_MAX = 120
KNOWN_SECRET = "known-secret"

_PLACEHOLDER_WORDS = (
    "changeme", "change_me", "change-me", "example", "placeholder", "dummy", "redacted", "your", "sample",
    "fake", "replace", "insert", "xxxx", "****", "....", "<", ">",
)
_PLACEHOLDER_PREFIXES = ("$", "%(", "{{", "<", "env:", "secret:", "vault:")


def shannon_entropy(value: str) -> float:
    """Bits per character of `value`'s character distribution."""
    if not value:
        return 0.0
    total = len(value)
    return -sum(n / total * math.log2(n / total) for n in Counter(value).values())


def is_placeholder(value: str) -> bool:
    """`changeme`, `xxxx...`, `${VAR}`, `<token>`, `{{ secret }}` and the like."""
    lower = value.lower()
    return (
        lower.startswith(_PLACEHOLDER_PREFIXES)
        or any(word in lower for word in _PLACEHOLDER_WORDS)
        or len(set(lower)) <= 2
    )


def _looks_random(value: str) -> bool:
    return (
        not is_placeholder(value)
        and any(c.isalpha() for c in value)
        and any(c.isdigit() for c in value)
        and shannon_entropy(value) >= ENTROPY_THRESHOLD
    )


def _not_placeholder(value: str) -> bool:
    return not is_placeholder(value) and shannon_entropy(value) >= ENTROPY_THRESHOLD


def _not_example(value: str) -> bool:
    return not value.endswith("EXAMPLE")


@dataclass(frozen=True)
class _Rule:
    name: str
    pattern: LazyPattern  # the secret is the group named `s`
    accept: Callable[[str], bool] | None = None


_ASSIGN = r"""["']?[ \t]*(?::=|=>|[:=])[ \t]*"""
_VALUE = r"""[^\s"'`,;()\[\]{}<>]"""
_RULES: tuple[_Rule, ...] = (
    _Rule("private-key", LazyPattern(
        r"(?P<s>-----BEGIN[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----"
        r"(?s:.*?)(?:-----END[A-Z0-9 ]{0,40} PRIVATE KEY(?: BLOCK)?-----|\Z))"
    )),
    _Rule("github-token", LazyPattern(r"(?<![A-Za-z0-9_])(?P<s>gh[pousr]_[A-Za-z0-9]{36,251})(?![A-Za-z0-9_])")),
    _Rule("github-fine-grained-token", LazyPattern(
        r"(?<![A-Za-z0-9_])(?P<s>github_pat_[A-Za-z0-9_]{22,244})(?![A-Za-z0-9_])"
    )),
    _Rule("gitlab-token", LazyPattern(r"(?<![A-Za-z0-9_-])(?P<s>glpat-[A-Za-z0-9_-]{20,250})(?![A-Za-z0-9_-])")),
    _Rule("slack-token", LazyPattern(r"(?<![A-Za-z0-9_-])(?P<s>xox[baprs]-[A-Za-z0-9-]{10,250})(?![A-Za-z0-9-])")),
    # the executors' own API keys: an executor's environment holds one, so its output may too
    _Rule("anthropic-api-key", LazyPattern(
        r"(?<![A-Za-z0-9_-])(?P<s>sk-ant-(?:api|admin|oat)\d{2}-[A-Za-z0-9_-]{20,250})(?![A-Za-z0-9_-])"
    ), _not_placeholder),
    _Rule("openai-api-key", LazyPattern(
        r"(?<![A-Za-z0-9_-])(?P<s>sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{32,250})(?![A-Za-z0-9_-])"
    ), _looks_random),
    _Rule("aws-access-key-id", LazyPattern(r"(?<![A-Za-z0-9])(?P<s>(?:AKIA|ASIA)[A-Z0-9]{16})(?![A-Za-z0-9])"),
          _not_example),
    _Rule("aws-secret-access-key", LazyPattern(
        r"(?i)(?:aws[_-]?secret[_-]?(?:access[_-]?)?key|secret[_-]?access[_-]?key)" + _ASSIGN
        + r"""["']?(?P<s>[A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])"""
    ), _not_placeholder),
    _Rule("gitea-token", LazyPattern(
        r"(?i)(?:token|authorization)[A-Za-z0-9_.-]{0,40}" + _ASSIGN
        + r"""["']?(?:(?:token|bearer)[ \t]+)?(?P<s>[0-9a-f]{40})(?![0-9a-z])"""
    ), _not_placeholder),
    _Rule("generic-secret", LazyPattern(
        r"(?i)(?:password|passwd|secret|token|api[_-]?key|access[_-]?key)[A-Za-z0-9_.-]{0,40}" + _ASSIGN
        + r"""(?:(?P<q>["'`]))?(?P<s>""" + _VALUE + f"{{{MIN_GENERIC_LENGTH},512}}+)"
        # possessive value (no backtracking); quoted: the same quote closes it; bare: the value ends here
        + r"(?(q)(?P=q)|(?!" + _VALUE + "))"
    ), _looks_random),
)


@dataclass(frozen=True)
class Finding:
    """A secret found: the rule, 1-based line (new-file line for diffs), a masked excerpt of that line."""

    rule: str
    line: int
    excerpt: str
    path: str = ""


@dataclass(frozen=True)
class _Match:
    start: int
    end: int
    rule: str
    rank: int  # lower wins when matches start at the same place: known secrets, then _RULES order


def _usable_known(known_secrets: Sequence[str]) -> list[str]:
    """Known secrets worth looking for, longest first so a longer one wins an overlap."""
    return sorted({s for s in known_secrets if isinstance(s, str) and len(s) >= MIN_KNOWN_SECRET}, key=len,
                  reverse=True)


def _known_matches(text: str, known: Sequence[str]) -> Iterator[_Match]:
    for form in dict.fromkeys(form for secret in known for form, _ in encoded_forms(secret)):
        pos = text.find(form)
        while pos >= 0:
            yield _Match(pos, pos + len(form), KNOWN_SECRET, 0)
            pos = text.find(form, pos + len(form))  # non-overlapping: linear on "aaaa..." input
    for start, end in _form_spans(text, known):
        yield _Match(start, end, KNOWN_SECRET, 0)


_URLSAFE = str.maketrans("+/", "-_")
_WHITESPACE = LazyPattern(r"\s+")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _base64_cores(raw: bytes) -> list[str]:
    """The base64 characters that depend on `raw` alone, for each byte offset (mod 3) it may sit at in
    an encoded stream: the characters shared with the bytes before and after it are left out."""
    cores = []
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode()
        cores.append(encoded[-(-offset * 8 // 6):(offset + len(raw)) * 8 // 6])
    return cores


def encoded_forms(secret: str) -> list[tuple[str, bool]]:
    """(form, case-insensitive) for each way a known secret is looked for: itself, reversed, hex, and
    base64 (standard and URL-safe). Each is found as it is, and with whitespace anywhere in it."""
    raw = secret.encode("utf-8", "surrogatepass")
    forms = [(secret, False), (secret[::-1], False), (raw.hex(), True)]
    for core in _base64_cores(raw):
        forms += [(core, False), (core.translate(_URLSAFE), False)]
    return list(dict.fromkeys(forms))


def _form_spans(text: str, known: Sequence[str]) -> list[tuple[int, int]]:
    """(start, end) in `text` of every form of every known secret, whitespace between its characters
    allowed. Searched in the text with its whitespace taken out: linear, whatever the secrets are. A
    form with fewer than MIN_KNOWN_SECRET other characters is only found as it is (_known_matches)."""
    squeezed_forms = [("".join(form.split()), fold) for secret in known for form, fold in encoded_forms(secret)]
    forms = [(form, fold) for form, fold in dict.fromkeys(squeezed_forms) if len(form) >= MIN_KNOWN_SECRET]
    if not forms:
        return []
    squeezed = _WHITESPACE.sub("", text)
    folded = squeezed.translate(_ASCII_LOWER)
    run_at, removed, total = [], [], 0  # where in `squeezed` each whitespace run was taken out, and how much so far
    for run in _WHITESPACE.finditer(text):
        run_at.append(run.start() - total)
        total += run.end() - run.start()
        removed.append(total)

    def original(pos: int) -> int:
        runs = bisect_right(run_at, pos)
        return pos + (removed[runs - 1] if runs else 0)

    spans = []
    for form, fold in forms:
        haystack, needle = (folded, form.translate(_ASCII_LOWER)) if fold else (squeezed, form)
        pos = haystack.find(needle)
        while pos >= 0:
            spans.append((original(pos), original(pos + len(needle) - 1) + 1))
            pos = haystack.find(needle, pos + len(needle))
    return spans


def _rule_matches(text: str) -> Iterator[_Match]:
    for rank, rule in enumerate(_RULES, start=1):
        for m in rule.pattern.finditer(text):
            if rule.accept is None or rule.accept(m["s"]):
                yield _Match(m.start("s"), m.end("s"), rule.name, rank)


def _all_matches(text: str, known_secrets: Sequence[str]) -> list[_Match]:
    return [*_known_matches(text, _usable_known(known_secrets)), *_rule_matches(text)]


def _first_per_span(matches: list[_Match]) -> list[_Match]:
    """One finding per secret: by position, the most precise rule at a start, overlaps dropped."""
    kept: list[_Match] = []
    for match in sorted(matches, key=lambda m: (m.start, m.rank)):
        if not kept or match.start >= kept[-1].end:
            kept.append(match)
    return kept


def _merged(matches: list[_Match]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for match in sorted(matches, key=lambda m: m.start):
        if spans and match.start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], match.end))
        else:
            spans.append((match.start, match.end))
    return spans


def _mask(secret: str) -> str:
    return secret[: min(4, len(secret) // 4)] + "…"


def _excerpt(text: str, start: int, spans: list[tuple[int, int]]) -> str:
    """The text around `start` on its line, every secret in it masked, at most EXCERPT_MAX characters.

    Only a window near `start` is looked at, so a megabyte line full of
    secrets costs each finding a bounded amount of work.
    """
    newline = text.rfind("\n", max(0, start - EXCERPT_MAX), start)
    lo = newline + 1 if newline >= 0 else max(0, start - EXCERPT_MAX)
    newline = text.find("\n", start, start + 4 * EXCERPT_MAX)
    hi = newline if newline >= 0 else min(len(text), start + 4 * EXCERPT_MAX)
    pieces, pos, focus = [], lo, 0
    i = max(0, bisect_left(spans, (lo, 0)) - 1)  # merged spans: only this one can begin before lo
    while i < len(spans) and spans[i][0] < hi:
        a, b = spans[i]
        i += 1
        if b <= lo:
            continue
        pieces.append(text[pos:max(a, lo)])
        if a <= start < b:
            focus = sum(len(p) for p in pieces)
        pieces.append(_mask(text[a:b]) if a >= lo else "…")  # a secret begun before the window shows nothing
        pos = min(b, hi)
    pieces.append(text[pos:hi])
    masked = "".join(pieces).rstrip("\r")
    begin = max(0, min(focus - EXCERPT_MAX // 3, len(masked) - EXCERPT_MAX))
    return FORBIDDEN.sub("?", masked[begin:begin + EXCERPT_MAX]).replace("\r", "?")


def scan(text: str, *, known_secrets: Sequence[str] = ()) -> list[Finding]:
    """Secrets in `text`, in order of position. Never raises on any string."""
    if not isinstance(text, str) or not text:
        return []
    matches = _all_matches(text, known_secrets)
    spans = _merged(matches)
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    return [
        Finding(m.rule, bisect_right(line_starts, m.start), _excerpt(text, m.start, spans))
        for m in _first_per_span(matches)
    ]


def redact(text: str, *, known_secrets: Sequence[str] = ()) -> str:
    """`text` with every secret scan() would find replaced by [REDACTED].

    Known secrets, in every form, are then removed outright until none is left,
    in case a replacement joined pieces into one (or a known secret resembles
    the marker). A text that still holds one after many passes is withheld.
    """
    if not isinstance(text, str):
        return ""
    pieces, pos = [], 0
    for start, end in _merged(_all_matches(text, known_secrets)):
        pieces += [text[pos:start], REDACTED]
        pos = end
    text = "".join(pieces) + text[pos:]
    known = _usable_known(known_secrets)
    for _ in range(MAX_REDACT_PASSES):
        spans = _merged(list(_known_matches(text, known)))
        if not spans:
            return text
        text = "".join(text[a:b] for a, b in zip([0] + [end for _, end in spans], [start for start, _ in spans]
                                                 + [len(text)], strict=True))
    return REDACTED


# --- diffs ----------------------------------------------------------------------

_HUNK = LazyPattern(r"@@ -[0-9]+(?:,([0-9]+))? \+([0-9]+)(?:,([0-9]+))? @@")


def _diff_path(header: str) -> str:
    path = header[4:].split("\t", 1)[0].strip()
    if len(path) >= 2 and path[0] == path[-1] == '"':
        path = path[1:-1]
    return path.removeprefix("b/")


def added_lines(diff_text: str) -> dict[str, list[tuple[int, str]]]:
    """path -> [(new-file line number, text)] of the `+` lines of a unified diff.

    Hunk line counts decide what is content, so an added line that starts with
    `++` (shown as `+++`) is not mistaken for a file header.
    """
    files: dict[str, list[tuple[int, str]]] = {}
    path, line, old_left, new_left = "", 0, 0, 0
    for raw in diff_text.split("\n"):
        tag = raw[:1]
        if (old_left > 0 or new_left > 0) and tag in ("+", "-", " ", "", "\\"):
            if tag == "+":
                files.setdefault(path, []).append((line, raw[1:]))
                line, new_left = line + 1, new_left - 1
            elif tag == "-":
                old_left -= 1
            elif tag != "\\":  # context; "\ No newline at end of file" is not a line
                line, old_left, new_left = line + 1, old_left - 1, new_left - 1
            continue
        old_left = new_left = 0
        if raw.startswith("+++ "):
            path = _diff_path(raw)
        hunk = _HUNK.match(raw)
        if hunk:
            old_left = int(hunk[1] or 1)
            line, new_left = int(hunk[2]), int(hunk[3] or 1)
    return {p: lines for p, lines in files.items() if p != "/dev/null"}


def scan_diff(diff_text: str, known_secrets: Sequence[str] = ()) -> list[Finding]:
    """Secrets on the added lines of a unified diff, with file path and new-file line."""
    if not isinstance(diff_text, str):
        return []
    findings = []
    for path, lines in added_lines(diff_text).items():
        numbers = [n for n, _ in lines]
        for finding in scan("\n".join(text for _, text in lines), known_secrets=known_secrets):
            findings.append(replace(finding, line=numbers[finding.line - 1], path=path))
    return findings
