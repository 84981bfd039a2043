"""What may leave the host: text made fit for the forge, pure.

Executor logs and gate output are written by code the agent does not trust,
and go into public comments and reviews. Before they do, this host's secrets
are redacted in every form core/secrets.py knows, the command lines the agent
echoed into its logs are dropped (a sandbox's command line names the host's
directories), and the host's own paths (state dir, worktrees, HOME) become
placeholders such as `<worktree>`: where an agent keeps its files is nobody's
business, and a path names the user it runs as.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from agentmesh.core.secrets import redact

COMMAND_ECHO = "agentmesh: $ "  # how the executor log shows the command it ran
ANY_ENTRY = "/*"  # a place ending in this stands for every entry right under it (one worktree each)
# what may follow a path that ends where a place ends: anything but more of a file name (a full stop
# only at the end of a sentence)
_PATH_END = r"""(?=\.?(?:[/\s'"`:;,()\[\]{}<>|]|$))"""


def _place_pattern(path: str) -> str:
    if path.endswith(ANY_ENTRY):
        return re.escape(path[:-len(ANY_ENTRY)]) + r"""/[^/\s'"`:;,()\[\]{}<>|]+""" + _PATH_END
    return re.escape(path) + _PATH_END


def replace_places(text: str, places: Sequence[tuple[str, str]]) -> str:
    """`text` with each host path in `places` (path, placeholder) replaced, the longest first; a path
    counts only as a whole (`/home/al` is not in `/home/alice`). The root and empty paths are ignored."""
    usable = sorted({(p.rstrip("/") if not p.endswith(ANY_ENTRY) else p, name) for p, name in places
                     if p.rstrip("/*")}, key=lambda place: -len(place[0]))
    if not usable:
        return text
    pattern = re.compile("|".join(f"({_place_pattern(path)})" for path, _ in usable))
    return pattern.sub(lambda m: usable[(m.lastindex or 1) - 1][1], text)


def without_command_echo(text: str) -> str:
    """`text` without the lines the agent wrote to show a command line."""
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith(COMMAND_ECHO))


def public_text(text: str, *, known_secrets: Sequence[str], places: Sequence[tuple[str, str]]) -> str:
    """Untrusted output made fit to post: no echoed command line, no secret, no host path."""
    return replace_places(redact(without_command_echo(text), known_secrets=known_secrets), places)
