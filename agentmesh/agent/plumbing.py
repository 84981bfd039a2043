"""An agent's connection to its mesh: state dir, git runner, cache clone, and the default branch with the
claim rules of its policy. What `claims` commands need, and the base of `Mesh` (agent/mesh.py).

Kept free of pydantic and of the forge, the executor and the journal, which a claim from cron never
uses (ai-memory/decisions/0016-start-up-paid-once.md). Set-up costs one git process: the listing of
the remote's HEAD and switch refs. The policy is read again only when the default branch moved.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from pathlib import Path

from agentmesh.core.errors import ConfigError, UserError
from agentmesh.core.lease import Clock
from agentmesh.core.record import Record
from agentmesh.git.cache import CacheClone
from agentmesh.git.remote import RemoteRefs, local_path, ls_refs, normalize_url
from agentmesh.git.run import Git, ensure_askpass, ensure_global_config
from agentmesh.git.signing import ensure_key
from agentmesh.host.basics import (
    HALT_REF,
    LEGACY_HALT_FILE,
    MESH_POLICY_PATH,
    PAUSE_REF,
    ROSTER_PATH,
    ClaimRules,
    HostBasics,
    cached_basics,
    save_basics,
)
from agentmesh.host.files import write_atomic
from agentmesh.host.state import StateDir, system_clock
from agentmesh.refs.claims import ClaimStore, DefaultBranch
from agentmesh.refs.identity import Identity

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the claim path
if TYPE_CHECKING:
    from typing import Self

    from agentmesh.host.roster import Roster

# The baseline of benchmarks/bench_signing.py, never a setting: set to 1, an agent makes no key and signs
# nothing, as agents did before they signed (docs/benchmarks.md). It weakens no sibling's checks: with a
# roster on the base branch, such an agent's own claims, presence and reviews are foreign to the others.
UNSIGNED_BENCHMARK_ENV = "AGENTMESH_BENCHMARK_UNSIGNED"
POLICY_SNAPSHOT = "agentmesh-policy.json"  # in the cache clone: it vouches for objects only that clone holds
# The default branch's files every command may read, kept with the policy: read in one cat-file when it moves.
KEPT_FILES = (MESH_POLICY_PATH, ROSTER_PATH, LEGACY_HALT_FILE)


def signing_from_env(env: Mapping[str, str]) -> bool:
    """Whether agents sign: always, except under the unsigned benchmark baseline."""
    return env.get(UNSIGNED_BENCHMARK_ENV) != "1"


class PolicySnapshot(Record):
    """The remote's default branch as last read: the texts of KEPT_FILES on it (None: absent) and the claim
    rules a full validation of its policy gave."""

    branch: DefaultBranch
    files: dict[str, str | None]
    rules: ClaimRules | None  # None: the policy is not valid (never kept)

    @property
    def text(self) -> str | None:
        """The mesh policy's text."""
        return self.files[MESH_POLICY_PATH]

    def to_json(self) -> dict:
        b = self.branch
        rules = None if self.rules is None else self.rules.to_json()
        return {"ref": b.ref, "head": b.head, "tree": b.tree, "files": self.files, "rules": rules}

    @classmethod
    def from_json(cls, data: Mapping) -> PolicySnapshot:
        files = {path: None if data["files"][path] is None else str(data["files"][path]) for path in KEPT_FILES}
        return cls(DefaultBranch(str(data["ref"]), str(data["head"]), str(data["tree"])), files,
                   ClaimRules.from_json(data["rules"]))


def load_basics(explicit: Path | None, *, remote: str | None, agent: str | None, observer: bool,
                env: Mapping[str, str]) -> HostBasics:
    """The host config's basics: from the snapshot of an earlier full validation of the same inputs, or
    by that full validation (host/config.py, pydantic) now, whose errors are the config's errors."""
    basics, snapshot = cached_basics(explicit, remote=remote, agent=agent, observer=observer, env=env)
    if basics is not None:
        return basics
    from agentmesh.host.config import load_host_config, override_names

    config = load_host_config(explicit, remote=remote, agent=agent, env=dict(env), observer=observer)
    basics = config.basics()
    if snapshot is not None:
        save_basics(snapshot, basics, {name: env.get(name) for name in override_names()}, now=time.time())
    return basics


def _full_rules(text: str | None, folder: Path) -> ClaimRules:
    """The claim rules of a policy text, by the full validation (pydantic; its errors are the policy's), or
    from the model that validation gave for the same text and code before (host/config_cache.py, kept in
    `folder`, the cache clone): a merge moves the default branch, and seldom the policy."""
    from agentmesh.host.config_cache import parse_mesh_policy

    return parse_mesh_policy(text, f"{MESH_POLICY_PATH} on the default branch", folder).claim_rules()


class Plumbing:
    def __init__(self, basics: HostBasics, *, env: Mapping[str, str] | None = None,
                 clock: Callable[[], Clock] = system_clock, signing: bool = True):
        env = os.environ if env is None else env
        self.basics = basics
        self.clock = clock
        self.remote = normalize_url(basics.remote, Path.cwd())
        self.state = StateDir(basics.state_dir, self.remote).ensure()
        self.token = env.get(basics.token_env) or None
        self.signing_key = basics.signing_key
        self.public_key = ensure_key(self.signing_key, basics.agent) if signing else None
        self.git = Git(
            askpass=ensure_askpass(self.state.bin_dir),
            global_config=ensure_global_config(self.state.bin_dir, [p for p in [local_path(self.remote)] if p]),
            token=self.token,
            author_name=basics.agent,
            author_email=f"{basics.agent}@{basics.host}.agentmesh.invalid",
            timeout=basics.git_timeout_seconds,
            signing_key=self.signing_key if signing else None,
        )
        self.cache = CacheClone(self.git, self.state.cache_path, self.remote).ensure()

    def close(self) -> None:
        """Stop the git processes this command keeps running (the cache clone's `cat-file`): a daemon runs
        many commands in one process, and none may outlive its own."""
        self.cache.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @cached_property
    def remote_refs(self) -> RemoteRefs:
        """HEAD, the kill switch's and the budget pause's refs, listed once per command: one round trip."""
        return ls_refs(self.git, self.remote, ["HEAD", HALT_REF, PAUSE_REF])

    def list_run(self, also: Sequence[str] = ()) -> RemoteRefs:
        """HEAD, every branch (the switch refs among them) and `also`, in one listing for a run that reads
        them all (agent/base.guarded_run); it is `remote_refs` too, unless that was read already."""
        listing = ls_refs(self.git, self.remote, ["HEAD", "refs/heads/", *also])
        self.use_listing(listing)
        return listing

    def use_listing(self, listing: RemoteRefs) -> None:
        """Take a listing this command made already, of prefixes that hold HEAD and the switch refs
        (`HEAD` and `refs/heads/`), instead of listing them again; once `remote_refs` was read, it stays."""
        self.__dict__.setdefault("remote_refs", listing)

    def mirror_run(self, listing: RemoteRefs, also: Sequence[str] = ()) -> None:
        """Bring the cache clone's mirror of what a run reads to `listing` (`list_run`'s, with `also`): the
        default branch, the claims, the presence refs and `also` (prefixes end in `/`), in one fetch of what
        changed; the reads after it fetch nothing. The prefixes are the policy's as the last command read it
        (no policy read here: it is on the default branch this brings in); a policy that moved them since
        leaves the new ones to their readers, which fetch what they miss as before."""
        kept = self._kept_snapshot
        rules = kept.rules if kept is not None else None
        prefixes = [rules.claims.ref_prefix, rules.presence.ref_prefix] if rules is not None else []
        default = listing.symrefs.get("HEAD")
        self.cache.mirror_listed(listing, [*prefixes, *(p for p in also if p.endswith("/"))],
                                 [*(p for p in also if not p.endswith("/")), *([default] if default else [])])

    @cached_property
    def _kept_snapshot(self) -> PolicySnapshot | None:
        """The policy snapshot the last command kept (None: none, or damaged: it is only a cache), read once a
        command (the set-up's fetch and `snapshot` both ask)."""
        try:
            return PolicySnapshot.from_json(json.loads((self.cache.path / POLICY_SNAPSHOT).read_text()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    @cached_property
    def snapshot(self) -> PolicySnapshot | None:
        """The default branch as listed now and its policy; None while the remote is unborn. Read from the
        cache clone only when the branch moved since the last command (then one fetch and one cat-file)."""
        listing = self.remote_refs
        ref, head = listing.symrefs.get("HEAD"), listing.get("HEAD")
        if ref is None or head is None:
            return None
        kept = self._kept_snapshot
        if kept is not None and kept.branch.head == head and kept.branch.ref == ref:
            return kept
        head = self.cache.fetch_default_branch(listing=listing)
        if head is None:
            return None
        # a file the clone lacks the object of must not read as absent: the policy would be the default one
        tree, blobs = self.cache.read_paths(head, KEPT_FILES)
        files = {path: blob.data.decode("utf-8", "replace") if blob is not None and blob.type == "blob" else None
                 for path, blob in blobs.items()}
        try:
            rules: ClaimRules | None = _full_rules(files[MESH_POLICY_PATH], self.cache.path)
        except ConfigError:
            rules = None  # `rules` raises it; the head and the text stay usable (doctor reports on both)
        fresh = PolicySnapshot(DefaultBranch(ref, head, tree.sha), files, rules)
        if rules is not None:  # a bad policy is read and judged anew by every command, as before
            try:
                write_atomic(self.cache.path / POLICY_SNAPSHOT, json.dumps(fresh.to_json()))
            except OSError:
                pass  # the next command reads it again
        return fresh

    @cached_property
    def rules(self) -> ClaimRules:
        """The claim rules of the policy; a ConfigError, the full validation's, when the policy is bad."""
        snapshot = self.snapshot
        if snapshot is None or snapshot.rules is None:
            return _full_rules(None if snapshot is None else snapshot.text, self.cache.path)
        return snapshot.rules

    @cached_property
    def default_branch(self) -> DefaultBranch | None:
        """Where claim commits build on: the remote's default branch as listed by this command."""
        snapshot = self.snapshot
        return None if snapshot is None else snapshot.branch

    @cached_property
    def remote_head(self) -> str | None:
        """The remote default branch's head, as listed once per command; None while unborn."""
        return None if self.default_branch is None else self.default_branch.head

    @cached_property
    def base_branch(self) -> str:
        """The branch work starts from and PRs target: the policy's `default_branch` or the remote's HEAD."""
        if self.rules.default_branch:
            return self.rules.default_branch
        if self.default_branch is None:
            raise UserError(f"the remote {self.remote} has no default branch yet; push a first commit")
        return self.default_branch.ref[len("refs/heads/"):]

    @cached_property
    def base_head(self) -> str:
        """The head of `base_branch`, fetched once per command."""
        head = self.remote_head
        if self.rules.default_branch:
            head = self.cache.fetch_default_branch(self.rules.default_branch)
        if head is None:
            raise UserError(f"branch {self.base_branch} does not exist on {self.remote}")
        return head

    def read_base_file(self, path: str) -> str | None:
        """A file's text on the base branch as fetched by this command (KEPT_FILES without a git call while
        the base branch is the default branch)."""
        snapshot = self.snapshot
        if snapshot is not None and path in snapshot.files and self.base_head == snapshot.branch.head:
            return snapshot.files[path]
        # read_paths: an object the clone lacks raises, not read as no roster, no halt file
        obj = self.cache.read_paths(self.base_head, [path])[1][path]
        return obj.data.decode("utf-8", "replace") if obj is not None and obj.type == "blob" else None

    @cached_property
    def roster(self) -> Roster | None:
        """The roster as of the base branch (never a PR head's); None while the mesh has none. pydantic is
        imported only when there is one to parse."""
        text = self.read_base_file(ROSTER_PATH)
        if text is None:
            return None
        from agentmesh.host.config_cache import parse_roster

        return parse_roster(text, f"{ROSTER_PATH} on {self.base_branch}", self.cache.path)

    @cached_property
    def identity(self) -> Identity:
        return Identity(self.cache, self.state.root / "identity", load_roster=lambda: self.roster)

    def claims(self, *, mirror: bool = False, presign: bool = False) -> ClaimStore:
        """`mirror`: the store moves the cache clone's mirror refs after its own pushes (a run that lists the
        claims again, as the agent's commands do; a lone `claims` command from cron skips the cost).
        `presign`: the ssh-keygen for the one claim commit this command writes starts now, its start-up alongside
        the listing that reads the policy (the caller calls `cache.abandon_presigned` when done)."""
        if presign:
            self.cache.presign()
        return ClaimStore(self.cache, self.state, self.rules, agent=self.basics.agent, host=self.basics.host,
                          clock=self.clock, identity=self.identity, default_branch=lambda: self.default_branch,
                          mirror=mirror)
