"""Who wrote a review, by the roster: the only source of trust besides verified signatures.

With a roster on the base branch, a review counts as an agent's or a maintainer's only when:
- on Gitea/GitHub, its author login is the roster's login of that agent or maintainer (the forge
  authenticated the account);
- on the local forge, where anyone who can push could write any author name, the item commit
  that last wrote it verifies as that agent's (or maintainer's) key.
Every other review is dropped before any decision. Reviewers are named by their roster principal:
the agent's name, or `maintainer:<login>`. Without a roster, nothing changes (`doctor` warns).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from agentmesh.core.model import Review
from agentmesh.host.roster import MAINTAINER_PREFIX, Roster
from agentmesh.refs.identity import Identity


def verified_reviews(reviews: Sequence[Review], *, roster: Roster | None, identity: Identity,
                     local: bool) -> list[Review]:
    """The reviews whose author the roster vouches for, each renamed to its roster principal."""
    if roster is None:
        return list(reviews)
    if local:
        signers = identity.signers([r.recorded_in for r in reviews if r.recorded_in])
        return [replace(r, author=who) for r in reviews
                if r.recorded_in and (who := signers.get(r.recorded_in)) in (r.author, MAINTAINER_PREFIX + r.author)]
    found = []
    for review in reviews:
        agent, maintainer = roster.agent_by_login(review.author), roster.maintainer(review.author)
        if agent is not None:
            found.append(replace(review, author=agent.name))
        elif maintainer is not None:
            found.append(replace(review, author=MAINTAINER_PREFIX + maintainer.login))
    return found


def maintainers(roster: Roster | None) -> list[str]:
    """The roster principals of the maintainers: their approvals count like a ring sibling's."""
    return [MAINTAINER_PREFIX + m.login for m in roster.maintainers] if roster else []


def review_logins(roster: Roster | None, names: Sequence[str]) -> list[str]:
    """The forge accounts to request reviews from: the roster's login of each agent."""
    if roster is None:
        return list(names)
    return [entry.forge_login if (entry := roster.agent(name)) else name for name in names]
