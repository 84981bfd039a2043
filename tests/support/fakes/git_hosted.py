"""A fake forge that hosts a real bare git repository, as Gitea and GitHub host theirs.

Agents push to the repository with real git; the fake reads branch heads from it (a PR's head is
its branch's head there, so a push moves it), and a merge through the API writes a real merge
commit onto the base branch. Mix in before the forge's fake: `class Hosted(GitHosted, GiteaFake)`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.support import git


class GitHosted:
    repo: Path  # the bare repository, set by the test

    def branch_head(self, name: str) -> str | None:
        found = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"refs/heads/{name}^{{commit}}"],
                               cwd=self.repo, capture_output=True, text=True, check=False)
        return found.stdout.strip() or None

    def merge_commit(self, base: str, head: str, method: str, number: int) -> str:
        old = self.branch_head(base)
        assert old is not None, f"no base branch {base}"
        tree = git("merge-tree", "--write-tree", old, head, cwd=self.repo)  # fails on a conflict
        parents = ["-p", old] + (["-p", head] if method == "merge" else [])
        sha = git("commit-tree", tree, *parents, "-m", f"Merge pull request #{number}", cwd=self.repo)
        git("update-ref", f"refs/heads/{base}", sha, old, cwd=self.repo)
        return sha
