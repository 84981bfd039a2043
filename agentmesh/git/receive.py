"""A bare repository as its pre-receive hook sees it, and where its hooks live.

While a push is checked, git keeps the pushed objects in a quarantine directory that it names in
GIT_OBJECT_DIRECTORY, GIT_ALTERNATE_OBJECT_DIRECTORIES and GIT_QUARANTINE_PATH, and the refs still
hold their values from before the push. `Git.env` drops every GIT_* variable, so the hook's runner
passes exactly those three on (`receiving_git`); everything else the hook reads (the roster, the
policy, the default branch) comes from the refs as they were.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from agentmesh.core.errors import UserError
from agentmesh.core.receive import Commit
from agentmesh.git.cache import CacheClone
from agentmesh.git.run import Git

QUARANTINE_ENV = ("GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_QUARANTINE_PATH")


def receiving_git(repo: Path, env: Mapping[str, str], *, ssh_keygen: str | None = None) -> Git:
    """The runner for a hook of `repo`: the push's quarantine passed on, the repository trusted whoever
    owns it (the server runs us inside it), and signatures verified with `ssh_keygen` when given."""
    forced = [("safe.directory", str(repo))] + ([("gpg.ssh.program", ssh_keygen)] if ssh_keygen else [])
    return Git(forced=tuple(forced), environment=tuple((k, env[k]) for k in QUARANTINE_ENV if env.get(k)))


@dataclass(frozen=True)
class Walk:
    commits: tuple[Commit, ...]  # reachable from new and not from old, parents before children
    fast_forward: bool  # old is an ancestor of new (or there is no old)


def parse_commit(sha: str, data: bytes) -> Commit:
    """A commit object's parents and message (`cat-file` text: headers, a blank line, the message)."""
    text = data.decode("utf-8", "replace")
    headers, _, message = text.partition("\n\n")
    parents = tuple(line[len("parent "):] for line in headers.splitlines() if line.startswith("parent "))
    return Commit(sha, parents, message)


class Receiving:
    """The bare repository during a push. Reads only: its refs are git's to update."""

    def __init__(self, git: Git, repo: Path, *, ssh_keygen: str | None = None):
        self.git = git
        self.path = repo
        self.ssh_keygen = ssh_keygen or "ssh-keygen"  # what checks the push's signatures
        # for its readers (cat-file batches, merge-tree, last writers); never fetched into nor rebuilt
        self.objects = CacheClone(git, repo, str(repo))

    def close(self) -> None:
        """Stop the repository's `cat-file` process (the hook's end)."""
        self.objects.close()

    def run(self, *args: str, check: bool = True, input: str | None = None):
        return self.git.run(f"--git-dir={self.path}", *args, cwd=self.path, check=check, input=input)

    def head_ref(self) -> str | None:
        """The default branch: what HEAD points at (refs/heads/main), even while unborn."""
        target = self.run("symbolic-ref", "--quiet", "HEAD", check=False).stdout.strip()
        return target if target.startswith("refs/heads/") else None

    def resolve(self, ref: str) -> str | None:
        return self.objects.resolve(ref)

    def walk(self, old: str | None, new: str) -> Walk:
        """The commits `new` brings over `old`, oldest first, and whether it is a fast-forward."""
        args = [new] if old is None else ["--left-right", f"{old}...{new}"]
        out = self.run("rev-list", "--topo-order", "--reverse", "--parents", *args).stdout
        commits, fast_forward = [], True
        for line in out.splitlines():
            if line.startswith("<"):
                fast_forward = False
                continue
            sha, *parents = line.lstrip(">").split()
            commits.append(Commit(sha, tuple(parents)))
        return Walk(tuple(commits), fast_forward)

    def types(self, shas: Iterable[str]) -> dict[str, str]:
        """sha -> its object type (commit, tree, blob, tag), in one request to the repository's `cat-file`."""
        wanted = list(dict.fromkeys(shas))
        return {sha: info.type for sha, info in zip(wanted, self.objects.object_info(wanted), strict=True)
                if info is not None}

    def fresh(self, new: str) -> set[str]:
        """The commits of `new`'s history that no ref held before this push."""
        return set(self.run("rev-list", new, "--not", "--all").stdout.split())

    def commits(self, shas: Sequence[str]) -> dict[str, Commit]:
        """Parents and message of each commit, in one `cat-file --batch`."""
        objects = self.objects.cat_objects(list(shas))
        return {sha: parse_commit(sha, obj.data) for sha, obj in zip(shas, objects)
                if obj is not None and obj.type == "commit"}

    def changed_paths(self, old: str | None, new: str) -> dict[str, tuple[str, ...]]:
        """sha -> the paths each commit of old..new changes against its parent (every path, for a root
        commit; none for a merge). Unusual names stay C-quoted, so they never look like plain paths."""
        revisions = [new] if old is None else [f"{old}..{new}"]
        return dict(self.objects.paths_by_commit("--root", *revisions))

    def files(self, specs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], str | None]:
        """(commit, path) -> the file's text there, or None, in one `cat-file --batch`."""
        wanted = list(dict.fromkeys(specs))
        objects = self.objects.cat_objects([f"{sha}:{path}" for sha, path in wanted])
        return {spec: obj.data.decode("utf-8", "replace") if obj is not None and obj.type == "blob" else None
                for spec, obj in zip(wanted, objects)}

    def first_commit(self, sha: str) -> str:
        """The root commit of `sha`'s history (an item's history has one)."""
        return self.run("rev-list", "--max-parents=0", sha).stdout.split()[-1]


# --- installing hooks ---------------------------------------------------------------------------


def bare_hooks_dir(path: Path) -> Path:
    """`path`/hooks, after checking that `path` is a bare repository whose own config leaves its hooks
    there; UserError otherwise."""
    if (path / ".git").exists():
        raise UserError(f"{path} is a working tree, not a bare repository: give the server's bare repository")
    run = Git(forced=(("safe.directory", str(path)),))
    found = run.run(f"--git-dir={path}", "rev-parse", "--is-bare-repository", cwd=path if path.is_dir() else None,
                    check=False)
    if found.returncode != 0:
        raise UserError(f"{path} is not a git repository")
    if found.stdout.strip() != "true":
        raise UserError(f"{path} is not a bare repository: give the server's bare repository")
    moved = run.run("config", "--file", str(path / "config"), "--get", "core.hooksPath", cwd=path, check=False)
    if moved.stdout.strip():
        raise UserError(f"{path} sets core.hooksPath={moved.stdout.strip()}: git runs no hook from {path / 'hooks'}; "
                        "unset it (git config --unset core.hooksPath) or install the hook there by hand")
    return path / "hooks"
