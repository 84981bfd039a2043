"""Signed identity: who wrote a commit, judged by its signature and the roster on the base branch.

No message, trailer, ref name or forge text says who wrote something: only a good SSH signature
by a key the roster lists. A mesh whose base branch has no roster yet verifies nothing
(`enforced` is False), and `doctor` and `status` say so plainly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from agentmesh.core.identity import PublicKey
from agentmesh.git.cache import CacheClone
from agentmesh.git.signing import (
    JOURNALS,
    VERIFIED,
    allowed_signers,
    ensure_allowed_signers,
    own_signed,
    remember_signers,
    remembered_signers,
    verified_signers,
)

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the claim path
if TYPE_CHECKING:
    from agentmesh.host.roster import Roster


class Identity:
    """`load_roster` instead of `roster`: read the roster only when a signature is first judged (a claim
    that wins never needs it)."""

    def __init__(self, cache: CacheClone, directory: Path, roster: Roster | None = None, *,
                 load_roster: Callable[[], Roster | None] | None = None):
        self.cache = cache
        self.directory = directory
        self._roster = roster
        self._load_roster = load_roster
        self._known: dict[str, str | None] = {}
        self._allowed: Path | None = None
        self._remembered: set[str] = set()  # the stores whose good signatures of earlier runs were read

    @property
    def roster(self) -> Roster | None:
        if self._load_roster is not None:
            self._roster, self._load_roster = self._load_roster(), None
        return self._roster

    @property
    def enforced(self) -> bool:
        """Whether the base branch has a roster: trust then comes from signatures only."""
        return self.roster is not None

    def key_of(self, agent: str) -> PublicKey | None:
        entry = self.roster.agent(agent) if self.roster else None
        return PublicKey.parse(entry.key) if entry else None

    def signers(self, shas: Iterable[str], *, journal: bool = False) -> Mapping[str, str | None]:
        """sha -> the roster principal that signed it (agent name, or `maintainer:<login>`), or None.
        Commits must be in the cache clone; answers are kept for this command's run, and good
        signatures for later runs too (in the state dir, per roster; journal commits, which every
        journal read checks again, in a store of their own)."""
        wanted = [sha for sha in dict.fromkeys(shas) if sha not in self._known]
        if wanted and self.roster is not None:
            store = JOURNALS if journal else VERIFIED
            allowed, principals = self._allowed_file(), [p for p, _ in self.roster.signers()]
            if store.prefix not in self._remembered:
                self._remembered.add(store.prefix)
                self._known.update(remembered_signers(allowed, principals, store))
                wanted = [sha for sha in wanted if sha not in self._known]
            good: dict[str, str] = {}
            if wanted:
                # commits this host signed: what git's check would say of them, without its two ssh-keygens
                good = self._own(wanted)
                wanted = [sha for sha in wanted if sha not in good]
            if wanted:
                found = verified_signers(self.cache.git, self.cache.commit_objects(wanted), allowed)
                self._known.update(found)
                # only good ones: a None may be an ssh-keygen that failed to start, never made permanent
                good.update((sha, who) for sha, who in found.items() if who)
            self._known.update(good)
            remember_signers(allowed, good, principals, store)
        return {sha: self._known.get(sha) for sha in shas}

    def signer(self, sha: str) -> str | None:
        return self.signers([sha])[sha]

    def signed_by(self, sha: str, agent: str) -> bool:
        return self.roster is not None and self.signer(sha) == agent

    def all_signed_by(self, shas: Iterable[str], agent: str) -> bool:
        """Whether every one of `shas` (and at least one) verifies as `agent`'s."""
        found = self.signers(list(shas))
        return bool(found) and self.roster is not None and all(who == agent for who in found.values())

    def _own(self, shas: Iterable[str]) -> dict[str, str]:
        """sha -> principal for those of `shas` this host signed with a key the roster lists: the principal git's
        check names, the first the allowed-signers file lists with that key (git/signing.py, OWN_SIGNED)."""
        signed = own_signed(self.cache.path, shas)
        if not signed:
            return {}
        assert self.roster is not None
        principals: dict[str, str] = {}
        for principal, key in self.roster.signers():
            principals.setdefault(key.fingerprint, principal)
        return {sha: principals[fingerprint] for sha, fingerprint in signed.items() if fingerprint in principals}

    def _allowed_file(self) -> Path:
        if self._allowed is None:
            assert self.roster is not None
            self._allowed = ensure_allowed_signers(self.directory, allowed_signers(self.roster.signers()))
        return self._allowed


def enforced_signers(identity: Identity | None, shas: Iterable[str]) -> Mapping[str, str | None] | None:
    """The signers of `shas`, or None when nothing is verified (no identity, or no roster yet)."""
    if identity is None or not identity.enforced:
        return None
    return identity.signers(list(shas))
