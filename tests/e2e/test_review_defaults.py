"""Issue 15, item 3: the defaults are safe. A mesh made by `agentmesh forge init`, with only
`merge.auto` turned on (what a team does in its first week), runs real agent processes on the
local-forge remote. A PR whose change does not parse (`def broken(:`, a YAML file cut short) is
not approved and not merged; a valid change is, so the test cannot pass by the mesh doing
nothing. Required CI checks are named statuses on the head: a missing one holds the merge.
Every verdict is read from the bare remote with git plumbing.
"""

from __future__ import annotations

import json

from tests.support import DEMO_BLOCK, agent_forge, agent_mesh, demo_body, git, human_commit, remote_items, remote_refs
from tests.support.cli import run_cli, write_host_config

BROKEN = {"pkg/broken.py": "def broken(:\n    return 1\n", "conf/app.yaml": "services: [web,\n"}
VALID = {"pkg/fine.py": "def fine():\n    return 1\n", "conf/fine.yaml": "services: [web, db]\n"}


class Mesh:
    """`forge init`'s starter policy with `merge.auto: true`; ada works, bob reviews, each on its own host."""

    def __init__(self, tmp_path, policy_edit: tuple[str, str] = ("", "")):
        self.tmp = tmp_path
        self.remote = tmp_path / "remote.git"
        created = run_cli("forge", "init", str(self.remote), cwd=tmp_path)
        assert created.returncode == 0, created.stderr
        starter = git("cat-file", "blob", "main:.agentmesh/mesh.yaml", cwd=self.remote) + "\n"
        assert "  - {builtin: syntax}\n" in starter and "  auto: false" in starter
        policy = starter.replace("  auto: false", "  auto: true").replace(*policy_edit)
        human_commit(self.remote, {".agentmesh/mesh.yaml": policy}, message="mesh: merge.auto on")
        self.human = agent_forge(agent_mesh(self.remote, tmp_path / "humans", "human"))
        self.configs = {a: write_host_config(tmp_path, self.remote, a) for a in ("ada", "bob")}
        self.run("ada", "monitor-prs")
        self.run("bob", "monitor-prs")  # both present before a PR opens: bob is ada's reviewer

    def run(self, agent: str, *args: str) -> str:
        done = run_cli("--config", str(self.configs[agent]), *args, cwd=self.tmp)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    def issue(self, files: dict[str, str]) -> int:
        (first, text), *rest = files.items()
        extra = "".join(DEMO_BLOCK.format(path=p, content=c) for p, c in rest)
        return self.human.create_issue("Add code", demo_body(first, text, extra), ["task"]).number

    def worked(self, files: dict[str, str]) -> tuple[int, dict]:
        """An issue for `files`, ada's PR for it, bob's review of it, then ada's monitor-prs."""
        number = self.issue(files)
        self.run("ada", "claim-task")
        assert self.pull(number)["state"] == "open"
        self.run("bob", "monitor-prs")
        self.run("ada", "monitor-prs")
        return number, self.pull(number)

    # --- the remote, by plumbing ---------------------------------------------------------------

    def main(self) -> str:
        return remote_refs(self.remote, "refs/heads/main")["refs/heads/main"]

    def on_main(self, path: str) -> bool:
        return path in git("ls-tree", "-r", "--name-only", "main", cwd=self.remote).split()

    def pull(self, issue: int) -> dict:
        [pull] = [{**meta, "ref": f"refs/agentmesh/items/{number}"}
                  for number, meta in remote_items(self.remote).items()
                  if meta["kind"] == "pull" and meta["body"].startswith(f"Closes #{issue}\n")]
        return pull

    def reviews(self, pull: dict) -> list[dict]:
        names = git("ls-tree", "--name-only", f"{pull['ref']}:reviews", cwd=self.remote).split()
        return [json.loads(git("cat-file", "blob", f"{pull['ref']}:reviews/{n}", cwd=self.remote)) for n in names]


def test_a_change_that_does_not_parse_is_not_approved_nor_merged_under_the_starter_policy(tmp_path):
    mesh = Mesh(tmp_path)
    _, control = mesh.worked(VALID)  # the positive control: approved by bob, merged by ada
    assert control["state"] == "merged", control
    assert mesh.on_main("pkg/fine.py") and mesh.on_main("conf/fine.yaml")
    [approval] = mesh.reviews(control)
    assert approval["state"] == "APPROVED" and "✓ **syntax**" in approval["body"]

    main = mesh.main()
    number, pull = mesh.worked(BROKEN)
    assert pull["state"] == "open", pull
    assert mesh.main() == main and not mesh.on_main("pkg/broken.py") and not mesh.on_main("conf/app.yaml")
    [review] = mesh.reviews(pull)
    assert review["state"] == "CHANGES_REQUESTED" and review["author"] == "bob"
    assert "✗ **syntax**: exit 1" in review["body"]
    assert "pkg/broken.py: Python: line 1, column 12: invalid syntax" in review["body"]
    assert "conf/app.yaml: YAML: line 2, column 1: expected the node content" in review["body"]
    for _ in range(2):  # the rework (the demo executor writes the same files again), its review, give up
        mesh.run("ada", "claim-task")
        mesh.run("bob", "monitor-prs")
        mesh.run("ada", "monitor-prs")
    pull = mesh.pull(number)
    assert pull["state"] == "open" and "agentmesh:needs-human" in pull["labels"], pull
    assert {r["state"] for r in mesh.reviews(pull)} == {"CHANGES_REQUESTED"}
    assert mesh.main() == main and not mesh.on_main("pkg/broken.py")


def test_a_required_check_the_forge_does_not_report_holds_the_merge(tmp_path):
    """`review.required_checks: [ci/tests]`: bob's approval is not enough while no `ci/tests` status is
    on the head, nor while it is pending or another context stands in for it; success merges."""
    mesh = Mesh(tmp_path, ("  required_checks: []", "  required_checks: [ci/tests]"))
    number, pull = mesh.worked(VALID)
    assert pull["state"] == "open" and mesh.reviews(pull)[0]["state"] == "APPROVED", pull
    assert not mesh.on_main("pkg/fine.py")
    ci = mesh.human
    head = pull["head_sha"]
    for context, state in (("lint", "success"), ("ci/tests", "pending")):
        ci.set_status(head, context=context, state=state)
        events = json.loads(mesh.run("ada", "monitor-prs", "--json"))["events"]
        waiting = [e["detail"] for e in events if e["event"] == "waiting" and e["issue"] == number]
        assert waiting == ["required checks not green: ci/tests (missing)" if context == "lint" else
                           "CI is pending"], events
        assert mesh.pull(number)["state"] == "open" and not mesh.on_main("pkg/fine.py")
    ci.set_status(head, context="ci/tests", state="success")
    mesh.run("ada", "monitor-prs")
    assert mesh.pull(number)["state"] == "merged" and mesh.on_main("pkg/fine.py")
