"""Journal writers as keys of what `status`, `budget` and `report` show. Pure.

A writer's name is journal text, and anyone who can get a line into a journal file can write any number
of them. Only an agent's name (or a maintainer's journal, `maintainer.<login>`) becomes a key of its own,
and at most MAX_AGENTS of them (the given ones first: agents with a presence, this host's own, then the
writers of the most lines); every other writer is counted under OTHER, so the rows still add up to the
fleet and their number stays bounded whatever a branch names.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from agentmesh.core.memory import MAINTAINER_WRITER, JournalEntry
from agentmesh.core.pattern import LazyPattern
from agentmesh.core.slug import is_agent_name

MAX_AGENTS = 200  # writers with figures of their own, as many as the report's page shows
OTHER = "(other)"  # the key of every other writer: never a valid agent name
_LOGIN = LazyPattern(r"[a-z0-9][a-z0-9-]{0,38}")


def writer_key(name: str) -> str:
    """`name` as a key: an agent's name or a maintainer's journal writer, else OTHER."""
    if is_agent_name(name):
        return name
    login = name[len(MAINTAINER_WRITER):] if name.startswith(MAINTAINER_WRITER) else ""
    return name if _LOGIN.fullmatch(login) else OTHER


def writer_keys(entries: Iterable[JournalEntry], agents: Iterable[str] = (), limit: int = MAX_AGENTS) -> dict[str, str]:
    """name -> key of every name in `agents` and every writer of `entries`. Past `limit` names (those of
    `agents` first, then the writers of the most lines) the rest are OTHER: a pushed branch can name any
    number of agents, and each would be a row, or a series as long as the report's window."""
    lines = Counter(e.agent for e in entries)
    given = set(agents)
    keys = {name: writer_key(name) for name in given | set(lines)}
    writers = sorted((n for n in lines if n not in given), key=lambda n: (-lines[n], n))
    kept = set([n for n in [*sorted(given), *writers] if keys[n] != OTHER][:limit])
    return {name: key if key in kept else OTHER for name, key in keys.items()}
