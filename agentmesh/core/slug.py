"""Safe names from untrusted text: work branches and agent names.

Forge text never reaches a ref name except through `slugify`, whose output
is `[a-z0-9-]` only, so it cannot form `..`, `@{`, `.lock`, a leading dash,
control characters or anything else git or a shell would interpret.
"""

from __future__ import annotations

from agentmesh.core.pattern import LazyPattern

AGENT_NAME = LazyPattern(r"[a-z0-9][a-z0-9-]{0,39}")
SLUG_MAX = 40
_NON_SLUG = LazyPattern(r"[^a-z0-9]+")
_WORK_BRANCH = LazyPattern(r"(?P<agent>[a-z0-9][a-z0-9-]{0,39})/(?P<issue>[1-9][0-9]{0,9})-(?P<slug>[a-z0-9-]{1,40})")


def slugify(title: str, max_len: int = SLUG_MAX) -> str:
    """Lower-case ASCII words joined by '-', at most max_len characters; never empty."""
    # NFKD splits accents off letters ("é" -> "e" + U+0301) so they survive as ASCII;
    # everything else outside [a-z0-9] (bidi, zero-width, emoji, punctuation) is a separator.
    import unicodedata  # here: a claim from cron checks names but never makes a slug

    ascii_text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    slug = _NON_SLUG.sub("-", ascii_text.lower()).strip("-")
    if len(slug) > max_len:
        slug = slug[:max_len]
        cut = slug.rfind("-")
        if cut >= max_len // 2:  # prefer a word boundary when it keeps most of the text
            slug = slug[:cut]
        slug = slug.strip("-")
    return slug or "task"


def is_agent_name(name: str) -> bool:
    return AGENT_NAME.fullmatch(name) is not None


def work_branch(agent: str, issue: int, title: str, attempt: int = 1) -> str:
    """`<agent>/<issue>-<slug>`: the branch an agent pushes its work to. A later attempt gets its own
    branch (`-a2`), so the PR a human closed on attempt 1 is never mistaken for attempt 2's."""
    if not is_agent_name(agent):
        raise ValueError(f"invalid agent name {agent!r}")
    if issue < 1:
        raise ValueError(f"invalid issue number {issue!r}")
    if attempt > 1:
        suffix = f"-a{attempt}"
        return f"{agent}/{issue}-{slugify(title, SLUG_MAX - len(suffix))}{suffix}"
    return f"{agent}/{issue}-{slugify(title)}"


def is_work_branch(name: str) -> bool:
    return _WORK_BRANCH.fullmatch(name) is not None


def parse_work_branch(name: str) -> tuple[str, int] | None:
    """(agent, issue) of a work branch name, else None."""
    match = _WORK_BRANCH.fullmatch(name)
    return (match["agent"], int(match["issue"])) if match else None


def is_lesson_branch(name: str) -> bool:
    """`<agent>/lessons/<slug>` (agent/lessons.py names them)."""
    agent, _, rest = name.partition("/lessons/")
    return is_agent_name(agent) and bool(rest) and slugify(rest) == rest
