"""`agentmesh migrate`: the switch-over from the old cron scripts (docs/migration.md).

It imports the old scripts' `MEMORY.md` and `memory/` logs into ai-memory/ as a PR (never a push to
the default branch: only merges go there), on the branch `<agent>/migrate/memory`, created or moved
with a compare-and-swap. A rerun imports only what the default branch still lacks and adopts the
open PR, so it never opens a second one. It also lists the old scripts' lock branches, which
claim-task already treats as claims (core/legacy.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from agentmesh.agent.legacy import observe_legacy, remote_branches
from agentmesh.agent.mesh import Mesh
from agentmesh.core.errors import TemporaryError, UserError
from agentmesh.core.legacy import LegacyLock
from agentmesh.core.migrate import (
    LOGS_DIR,
    MAX_FILE_BYTES,
    MEMORY_FILE,
    ImportPlan,
    migration_step,
    plan_import,
    still_missing,
)
from agentmesh.core.model import PullRequest
from agentmesh.core.vocab import Label, MigrateStep
from agentmesh.forge.base import Forge
from agentmesh.git.remote import RefUpdate, push


def import_branch(agent: str) -> str:
    return f"{agent}/migrate/memory"


@dataclass
class Migration:
    source: str
    branch: str
    plan: ImportPlan
    missing: list[str]
    step: MigrateStep
    dry_run: bool
    legacy: list[LegacyLock] = field(default_factory=list)
    pull: PullRequest | None = None

    def to_json(self) -> dict:
        return {"source": self.source, "branch": self.branch, "dry_run": self.dry_run, "step": str(self.step),
                **self.plan.to_json(), "missing": self.missing,
                "pr": self.pull.number if self.pull else None, "url": self.pull.url if self.pull else None,
                "legacy_locks": [lock.to_json() for lock in self.legacy]}


def read_sources(root: Path) -> dict[str, bytes]:
    """`MEMORY.md` and the regular files under `memory/` of the old scripts' directory (symlinks and hidden
    entries are not followed); a file too large is passed on oversized, unread beyond the limit."""
    found: dict[str, bytes] = {}
    candidates = [root / MEMORY_FILE] + (sorted((root / LOGS_DIR).rglob("*")) if (root / LOGS_DIR).is_dir() else [])
    for path in candidates:
        relative = path.relative_to(root)
        if path.is_symlink() or not path.is_file() or any(part.startswith(".") for part in relative.parts):
            continue
        with path.open("rb") as handle:
            found[relative.as_posix()] = handle.read(MAX_FILE_BYTES + 1)
    return found


def migrate(mesh: Mesh, forge: Forge, source: Path, *, dry_run: bool) -> Migration:
    if not source.is_dir():
        raise UserError(f"{source} is not a directory: give the old scripts' directory (with MEMORY.md, memory/)")
    sources = read_sources(source)
    if not sources:
        raise UserError(f"{source} has no {MEMORY_FILE} and no {LOGS_DIR}/ folder: nothing to import")
    plan = plan_import(sources, known_secrets=mesh.known_secrets)
    base = mesh.base_head
    paths = sorted(plan.files)
    on_base = {p: obj is not None for p, obj in zip(paths, mesh.cache.cat_objects([f"{base}:{p}" for p in paths]),
                                                     strict=True)}
    missing = still_missing(plan.files, on_base=on_base)
    branch = import_branch(mesh.host.agent)
    branches = remote_branches(mesh)
    head = branches.get(branch)
    on_branch = branch_texts(mesh, branch, head, sorted(missing))
    latest = forge.latest_pull_for_head(branch, base=mesh.base_branch) if missing else None
    step = migration_step(missing, on_branch=on_branch, branch_exists=head is not None,
                          pull_state=latest.state if latest else None)
    legacy = observe_legacy(mesh, forge, claimed={v.issue for v in mesh.claims().list()},
                            pulls=forge.list_pulls(state="open"), branches=branches)
    found = Migration(str(source), branch, plan, sorted(missing), step, dry_run, [legacy[n] for n in sorted(legacy)],
                      latest if latest is not None and latest.state == "open" else None)
    if step is MigrateStep.REFUSED:
        assert latest is not None
        raise UserError(f"PR #{latest.number} of {branch} was closed without merging; delete the branch {branch} "
                        "to propose the import again")
    if dry_run or step is MigrateStep.NOTHING:
        return found
    if step is not MigrateStep.ADOPT:
        changed = {p: t.encode() for p, t in missing.items() if on_branch.get(p) != t}
        parent = head if step is MigrateStep.ADD and head else base
        tree = mesh.cache.edit_tree_files(mesh.cache.tree_of(parent), changed)
        commit = mesh.cache.commit_tree(tree, [parent], f"Import the old scripts' memory into ai-memory/ "
                                        f"({len(changed)} file(s))\n\nAgentmesh-Agent: {mesh.host.agent}\n")
        result = push(mesh.git, mesh.cache.path, mesh.remote, [RefUpdate(f"refs/heads/{branch}", commit, head)])
        if not result.ok:
            raise TemporaryError(f"{branch} moved while importing; run migrate again")
    found.pull = found.pull if step is MigrateStep.ADOPT and found.pull else open_pull(mesh, forge, branch, found)
    if Label.MEMORY not in found.pull.labels:
        forge.add_labels(found.pull.number, [Label.MEMORY])
    return found


def branch_texts(mesh: Mesh, branch: str, head: str | None, paths: list[str]) -> dict[str, str | None]:
    """The text of each of `paths` on the import branch's `head` (None: absent, or no branch)."""
    if head is None or not paths:
        return dict.fromkeys(paths)
    if not mesh.cache.has_object(head):
        mesh.cache.fetch([f"refs/heads/{branch}"])
    objects = mesh.cache.cat_objects([f"{head}:{p}" for p in paths])
    return {p: obj.data.decode("utf-8", "replace") if obj is not None and obj.type == "blob" else None
            for p, obj in zip(paths, objects, strict=True)}


def open_pull(mesh: Mesh, forge: Forge, branch: str, found: Migration) -> PullRequest:
    """Open the import PR, or adopt the open one the forge names: a human's PR (no mesh marker), for a
    human to review and merge like a lesson."""
    skipped = "".join(f"- `{s.path}`: {s.why}\n" for s in found.plan.skipped[:50])
    body = ("The old cron scripts' memory, imported by `agentmesh migrate` (docs/migration.md):\n\n"
            "- `MEMORY.md` -> `ai-memory/architecture/legacy-memory.md` (executors get it when relevant);\n"
            "- `memory/*` -> `ai-memory/legacy/memory/` (history, kept verbatim).\n\n"
            "Known and recognisable secrets are redacted; read it before merging.\n"
            + (f"\nSkipped:\n\n{skipped}" if skipped else ""))
    return forge.create_pull(head=branch, base=mesh.base_branch, title="Import the old scripts' memory into ai-memory/",
                             body=body)
