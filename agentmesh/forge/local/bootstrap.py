"""A new local-forge remote: a bare repository with a first commit, HEAD, and the label registry.

`agentmesh forge init` writes the starter files; tests and the demo pass their own.
"""

from __future__ import annotations

from pathlib import Path

from agentmesh.core.vocab import Label
from agentmesh.forge.local.schema import (
    BLOB,
    FORMAT_VERSION,
    LABELS_FILE,
    LABELS_REF,
    TREE,
    check_branch_name,
    json_bytes,
)
from agentmesh.git.cache import CacheClone, TreeEntry, init_bare
from agentmesh.git.run import Git
from agentmesh.host.config import MESH_POLICY_PATH

DEFAULT_LABELS: dict[str, tuple[str, str]] = {
    "task": ("1d76db", "A unit of work an agent may claim"),
    "bug": ("d73a4a", "Something is broken"),
    "feature": ("a2eeef", "New behaviour"),
    "refactor": ("c5def5", "Change structure, not behaviour"),
    "security": ("b60205", "Security-relevant"),
    "good-first-task-for-agent": ("7057ff", "Small and well specified"),
    Label.PR: ("ededed", "Created or managed by agentmesh"),
    Label.CLAIMED: ("fbca04", "An agent holds the claim"),
    Label.WORKING: ("fbca04", "An agent is working on it"),
    Label.REVIEW: ("0e8a16", "A PR is waiting for review"),
    Label.FAILED: ("e99695", "The last attempt failed"),
    Label.DEAD_LETTER: ("5319e7", "Failed too often; needs a human"),
    Label.BLOCKED: ("d93f0b", "Waiting on another issue"),
    Label.NEEDS_HUMAN: ("d93f0b", "Agents will not touch it"),
    Label.HALT: ("000000", "Open issue with this label stops every agent"),
    Label.MEMORY: ("c2e0c6", "Feeds the shared memory"),
    "priority:critical": ("b60205", ""),
    "priority:high": ("d93f0b", ""),
    "priority:medium": ("fbca04", ""),
    "priority:low": ("0e8a16", ""),
}

STARTER_README = """\
# A mesh repository

Agents coordinate through this repository. Issues, pull requests, reviews and
commit statuses live under `refs/agentmesh/` (see agentmesh's
docs/local-forge.md); the shared policy is `.agentmesh/mesh.yaml`.

    agentmesh --remote URL --agent NAME issue create "First task" --label task
"""


def starter_files() -> dict[str, str]:
    from agentmesh.host.starter import starter_mesh_yaml  # here: yaml, for `forge init` only

    return {"README.md": STARTER_README, MESH_POLICY_PATH: starter_mesh_yaml()}


def init_repository(git: Git, path: Path, files: dict[str, str], *, branch: str = "main",
                    labels: dict[str, tuple[str, str]] = DEFAULT_LABELS) -> str:
    """Create a bare repository at `path` with one commit of `files` on `branch` and the label registry.

    Returns the commit sha. Objects are written directly: there is nothing to race with yet.
    """
    check_branch_name(branch)
    init_bare(git, path, initial_branch=branch)
    repo = CacheClone(git, path, str(path))
    root = _tree_of(repo, files)
    commit = repo.commit_tree(root, [], "Initial commit\n")
    repo.create_ref(f"refs/heads/{branch}", commit)
    repo.set_head(f"refs/heads/{branch}")
    doc = {"version": FORMAT_VERSION,
           "labels": {name: {"color": color, "description": text} for name, (color, text) in labels.items()}}
    tree = repo.make_tree([TreeEntry(BLOB, LABELS_FILE, repo.write_blob(json_bytes(doc)))])
    repo.create_ref(LABELS_REF, repo.commit_tree(tree, [], "labels: defaults\n"))
    return commit


def _tree_of(repo: CacheClone, files: dict[str, str]) -> str:
    """A tree (with subtrees) holding `files` ({"a/b.txt": text})."""
    here: dict[str, str] = {}
    below: dict[str, dict[str, str]] = {}
    for name, text in files.items():
        top, _, rest = name.partition("/")
        if rest:
            below.setdefault(top, {})[rest] = text
        else:
            here[top] = text
    entries = [TreeEntry(BLOB, name, repo.write_blob(text.encode())) for name, text in here.items()]
    entries += [TreeEntry(TREE, name, _tree_of(repo, sub)) for name, sub in below.items()]
    return repo.make_tree(entries)
