"""Which journal lines count once the mesh has a roster: the ones their own writer signed.

A line of `ai-memory/agents/<writer>/journal/` counts only if the commit that wrote it is signed by
<writer>'s roster key: the agent of that name, or for `maintainer.<login>` that maintainer (journal.py
also drops an entry whose `agent` field names someone else). Anyone who can push a journal branch could
otherwise add spend to an agent's ledger, and stop the fleet on its budget, or put text into the
context every executor reads.

Cheap in the common case: one `git log` over every journal branch lists the commits that changed each
file, back to where the files did not exist yet (about a month of history), and one batch verifies
them, with verdicts kept across runs per roster. A file whose every commit is its agent's counts whole; only a file that
another commit touched (or a history with merges) is blamed line by line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from agentmesh.core.memory import MAINTAINER_WRITER, journal_writer
from agentmesh.core.slug import AGENT_NAME
from agentmesh.git.cache import CacheClone

# commit shas -> the roster principal that signed each (an agent's name), or None
Verify = Callable[[Sequence[str]], Mapping[str, str | None]]


@dataclass(frozen=True)
class Lines:
    counted: str  # the file's lines that count, as text
    foreign: tuple[str, ...] = ()  # its non-blank lines that do not


def owner(path: str) -> str:
    """The writer whose directory holds the journal file `ai-memory/agents/<writer>/journal/<name>`."""
    return path.split("/")[2]


def writes(principal: str | None, writer: str) -> bool:
    """Whether the roster principal `principal` is the writer `writer` (an agent, or a maintainer)."""
    return principal is not None and journal_writer(principal) == writer


def _named(writer: str) -> bool:
    login = writer.removeprefix(MAINTAINER_WRITER)
    return AGENT_NAME.fullmatch(writer) is not None or (writer.startswith(MAINTAINER_WRITER) and bool(login))


def signed_lines(cache: CacheClone, texts: Mapping[tuple[str, str], str],
                 verify: Verify) -> dict[tuple[str, str], Lines]:
    """(head, path) -> the lines of its text (at `head`) that the writer of its directory wrote. One `git log`
    over every head: a file counts whole when every commit of any head that touched its path is its writer's
    (a superset of the commits that wrote it at its own head), and is blamed at its head otherwise."""
    named = [key for key in texts if _named(owner(key[1]))]
    found = {key: Lines("", _nonblank(text.split("\n"))) for key, text in texts.items() if key not in named}
    history = cache.path_history(list(dict.fromkeys(head for head, _ in named)),
                                 list(dict.fromkeys(path for _, path in named)))
    signer = verify(list(dict.fromkeys(sha for shas in history.touched.values() for sha in shas)))
    for head, path in named:
        commits = history.touched[path]
        if not history.merges and commits and all(writes(signer.get(sha), owner(path)) for sha in commits):
            found[(head, path)] = Lines(texts[(head, path)])
    blamed = {key: cache.blame(*key) for key in named if key not in found}
    signer = verify(list(dict.fromkeys(sha for lines in blamed.values() for sha, _ in lines)))  # known by now
    for key, lines in blamed.items():
        counted: list[str] = []
        foreign: list[str] = []
        for sha, line in lines:
            (counted if writes(signer.get(sha), owner(key[1])) else foreign).append(line.decode("utf-8", "replace"))
        found[key] = Lines("".join(f"{line}\n" for line in counted), _nonblank(foreign))
    return found


def _nonblank(lines: Sequence[str]) -> tuple[str, ...]:
    return tuple(line for line in lines if line.strip())
