"""Issue 14's pre-receive hook: on a plain git server the REMOTE itself refuses what the roster does
not vouch for. Real agent processes, a real bare remote with the hook installed by `agentmesh hook
install`, and every verdict read from the bare repository with git plumbing, never from what an agent
reports.

The cast (tests/e2e/test_trust_attacks.py's mesh, guarded): ada and bob are the roster's agents;
`human`, who files the issues, is a maintainer with a key; eve is an outsider who can push and run
agentmesh with her own key and any agent name. A positive control shows the honest flow still runs
behind the hook, so no test passes by the mesh merely doing nothing.
"""

from __future__ import annotations

import json
import subprocess

from agentmesh.host.roster import ROSTER_PATH
from tests.e2e.test_trust_attacks import Mesh
from tests.support import agent_mesh, git, human_commit, remote_refs, roster_yaml
from tests.support.cli import run_cli, write_host_config

JOURNALS = "refs/heads/agentmesh/journals/"
HALT = "refs/heads/agentmesh/halt"
REFUSED = "pre-receive hook declined"


class Guarded(Mesh):
    def __init__(self, tmp_path, **policy):
        super().__init__(tmp_path, **policy)
        human = agent_mesh(self.remote, tmp_path / "humans", "human")  # the key the issues are filed with
        agents = [agent_mesh(self.remote, tmp_path / "hosts", a) for a in ("ada", "bob")]
        roster = roster_yaml(agents, [{"login": "human", "key": human.public_key.line}])
        human_commit(self.remote, {ROSTER_PATH: roster}, message="roster: ada and bob, maintained by human")
        self.configs["eve"] = write_host_config(tmp_path, self.remote, "eve")
        installed = run_cli("hook", "install", str(self.remote), "--json", cwd=tmp_path)
        assert installed.returncode == 0, installed.stderr
        assert json.loads(installed.stdout)["state"] == "installed"

    def attempt(self, config: str, *args: str) -> subprocess.CompletedProcess:
        """`agentmesh --config <config's> ARGS`, whatever it exits with."""
        return run_cli("--config", str(self.configs[config]), *args, cwd=self.tmp)

    def key(self, agent: str):
        return self.tmp / ("humans" if agent == "human" else "hosts") / agent / "identity" / "id_ed25519"

    def ref(self, ref: str) -> str | None:
        return remote_refs(self.remote, ref).get(ref)

    def item_files(self, number: int, folder: str) -> list[str]:
        tree = git("ls-tree", "--name-only", f"refs/agentmesh/items/{number}", cwd=self.remote).split()
        if folder not in tree:
            return []
        return git("ls-tree", "--name-only", f"refs/agentmesh/items/{number}:{folder}", cwd=self.remote).split()

    def raw_push(self, sha: str, ref: str) -> subprocess.CompletedProcess:
        """A plain `git push +SHA:REF` (or `:REF` to delete) from a clone, as anyone with push access can."""
        work = self.tmp / "outsider"
        if not work.exists():
            git("clone", "--quiet", "--mirror", str(self.remote), str(work))
        git("fetch", "--quiet", str(self.remote), "+refs/*:refs/*", cwd=work)
        return subprocess.run(["git", "push", str(self.remote), f"+{sha}:{ref}" if sha else f":{ref}"], cwd=work,
                              capture_output=True, text=True, timeout=60)

    def unsigned_commit(self, message: str, parents: tuple[str, ...] = ()) -> str:
        """A commit on the empty tree that no key signed, written straight into the remote's objects."""
        tree = git("hash-object", "-t", "tree", "-w", "--stdin", cwd=self.remote, input="")
        return git("commit-tree", tree, *(a for p in parents for a in ("-p", p)), cwd=self.remote, input=message)


def refused(output: str, ref: str) -> bool:
    """Whether the remote's hook refused `ref`, as a push or a command relays it."""
    return f"agentmesh hook: refused {ref}" in output


def test_an_outsiders_claims_are_refused_by_the_remote(tmp_path):
    mesh = Guarded(tmp_path)
    number = mesh.issue()
    ref = f"refs/heads/claim/{number}"
    own = mesh.attempt("eve", "claims", "acquire", str(number))  # signed with eve's own key
    assert own.returncode != 0 and refused(own.stderr, ref)
    as_ada = mesh.attempt("eve", "--agent", "ada", "claims", "acquire", str(number))  # ada's name, eve's key
    assert as_ada.returncode != 0 and refused(as_ada.stderr, ref)
    forged = mesh.unsigned_commit(f"claim: #{number} by ada\n\nAgentmesh-Issue: {number}\nAgentmesh-Agent: ada\n"
                                  "Agentmesh-Host: host-ada\nAgentmesh-Nonce: 0123456789abcdef\n"
                                  "Agentmesh-Lease-Seconds: 1800\n", (git("rev-parse", "main", cwd=mesh.remote),))
    pushed = mesh.raw_push(forged, ref)
    assert pushed.returncode != 0 and REFUSED in pushed.stderr and refused(pushed.stderr, ref)
    assert mesh.ref(ref) is None

    mesh.run("ada", "claims", "acquire", str(number))  # the control: ada's own claim lands
    assert mesh.ref(ref) is not None


def test_presence_that_its_agents_key_did_not_sign_is_refused(tmp_path):
    mesh = Guarded(tmp_path)
    mesh.attempt("eve", "monitor-prs")  # eve's presence, signed by a key the roster lacks
    mesh.attempt("eve", "--agent", "ada", "monitor-prs")  # ada's presence, signed by eve
    assert mesh.ref("refs/heads/agentmesh/agents/eve") is None
    assert mesh.ref("refs/heads/agentmesh/agents/ada") is None
    pushed = mesh.raw_push(mesh.unsigned_commit("presence: bob\n\nAgentmesh-Agent: bob\n"),
                           "refs/heads/agentmesh/agents/bob")
    assert pushed.returncode != 0 and refused(pushed.stderr, "refs/heads/agentmesh/agents/bob")
    assert remote_refs(mesh.remote, "refs/heads/agentmesh/agents/") == {}

    mesh.run("ada", "monitor-prs")  # the control: ada's own presence lands
    assert set(remote_refs(mesh.remote, "refs/heads/agentmesh/agents/")) == {"refs/heads/agentmesh/agents/ada"}


def test_forged_reviews_and_outsiders_label_changes_are_refused_but_comments_and_issues_are_not(tmp_path):
    mesh = Guarded(tmp_path)
    pull = mesh.opened()
    number, item = pull["number"], f"refs/agentmesh/items/{pull['number']}"
    before = mesh.ref(item)
    review = mesh.attempt("eve", "--agent", "bob", "pr", "review", str(number), "--approve")
    assert review.returncode == 1 and refused(review.stderr, item), review.stderr
    issue = pull["body"].split("#", 1)[1].split()[0]
    labels = mesh.item(int(issue))["labels"]
    relabel = mesh.attempt("eve", "issue", "label", issue, "--add", "agentmesh:needs-human", "--remove", "task")
    assert relabel.returncode == 1 and refused(relabel.stderr, f"refs/agentmesh/items/{issue}")
    assert mesh.ref(item) == before and mesh.item_files(number, "reviews") == []
    assert mesh.item(int(issue))["labels"] == labels

    # what an outsider may do: comment, and open an issue without labels
    assert mesh.attempt("eve", "issue", "comment", issue, "I can reproduce this").returncode == 0
    filed = mesh.attempt("eve", "issue", "create", "A bug report", "--body", "steps", "--json")
    assert filed.returncode == 0, filed.stderr
    assert mesh.item_files(int(issue), "comments") and mesh.item(json.loads(filed.stdout)["number"])["labels"] == []
    labelled = mesh.attempt("eve", "issue", "create", "Do it now", "--label", "task")
    assert labelled.returncode == 1 and "agentmesh hook: refused refs/agentmesh/items/" in labelled.stderr

    mesh.run("bob", "monitor-prs")  # the control: bob's own approval counts, ada merges
    mesh.run("ada", "monitor-prs")
    assert mesh.pull()["state"] == "merged" and mesh.on_main()
    copy = f"refs/agentmesh/items/{number + 10}"  # the PR, bob's signed approval and all, as a new item
    pushed = mesh.raw_push(mesh.ref(item), copy)
    assert pushed.returncode != 0 and refused(pushed.stderr, copy) and mesh.ref(copy) is None


def test_direct_pushes_to_main_are_refused_unless_a_maintainer_signed_them(tmp_path):
    mesh = Guarded(tmp_path)
    main = git("rev-parse", "main", cwd=mesh.remote)
    for signer in (None, mesh.key("ada")):  # an outsider's plain commit; a roster agent's signed one
        try:
            human_commit(mesh.remote, {"backdoor.py": "import os\n"}, sign_with=signer)
            raise AssertionError("the push to main landed")
        except AssertionError as exc:
            assert refused(str(exc), "refs/heads/main") and "not signed by a maintainer's key" in str(exc)
    assert git("rev-parse", "main", cwd=mesh.remote) == main
    deleted = mesh.raw_push("", "refs/heads/main")
    assert deleted.returncode != 0 and git("rev-parse", "main", cwd=mesh.remote) == main

    landed = human_commit(mesh.remote, {"NOTES.md": "maintained\n"}, sign_with=mesh.key("human"))  # the control
    assert git("rev-parse", "main", cwd=mesh.remote) == landed


def test_a_merge_without_a_sibling_approval_is_refused(tmp_path):
    """ada can neither merge her PR unreviewed nor count an approval she signed in bob's name; the
    control is the honest flow behind the hook, from the issue to the merge and its clean-up."""
    mesh = Guarded(tmp_path)
    pull = mesh.opened()
    number, main = pull["number"], git("rev-parse", "main", cwd=mesh.remote)
    unapproved = mesh.attempt("ada", "pr", "merge", str(number))
    assert unapproved.returncode == 1 and refused(unapproved.stderr, "refs/heads/main"), unapproved.stderr
    assert "0 of 1 approvals" in unapproved.stderr
    self_approved = mesh.attempt("ada", "--agent", "bob", "pr", "review", str(number), "--approve")
    assert self_approved.returncode == 0  # a review item signed by ada is hers to write...
    again = mesh.attempt("ada", "pr", "merge", str(number))
    assert again.returncode == 1 and refused(again.stderr, "refs/heads/main")  # ...but counts for no merge
    assert git("rev-parse", "main", cwd=mesh.remote) == main and mesh.item(number)["state"] == "open"

    # The control: the honest mesh runs the issue to its merge and cleans up behind the hook.
    mesh.run("bob", "monitor-prs")
    mesh.run("ada", "monitor-prs")
    mesh.run("ada", "monitor-prs")  # cleans up after the merge
    merged = mesh.pull()
    assert merged["state"] == "merged" and mesh.on_main()
    assert git("rev-parse", "main^1", cwd=mesh.remote) == main
    assert git("rev-parse", "main", cwd=mesh.remote) == merged["merge_sha"]
    assert git("log", "-1", "--format=%s", "main", cwd=mesh.remote).startswith(f"Merge pull request #{number}")
    assert remote_refs(mesh.remote, "refs/heads/claim/") == {}
    assert set(remote_refs(mesh.remote, JOURNALS)) == {JOURNALS + "ada", JOURNALS + "bob"}
    checked = run_cli("hook", "check", str(mesh.remote), cwd=tmp_path)
    assert checked.returncode == 0 and checked.stdout.startswith("installed: ")


def test_journals_take_only_each_writers_own_signed_commits(tmp_path):
    mesh = Guarded(tmp_path)
    mesh.opened()  # ada's journal: her branch exists, made by honest flushes behind the hook
    ada = mesh.ref(JOURNALS + "ada")
    assert ada and "ai-memory/agents/ada/journal" in git("ls-tree", "-r", "--name-only", ada, cwd=mesh.remote)
    line = '{"id": "x", "agent": "bob", "event": "executed", "cost_usd": 1000000}\n'
    for files, branch, signer in (
            ({"ai-memory/agents/eve/journal/2026-01.jsonl": line}, "eve", None),  # an outsider's own
            ({"ai-memory/agents/bob/journal/2026-01.jsonl": line}, "bob", mesh.key("ada")),  # ada writing bob's
            ({"ai-memory/agents/bob/journal/2026-01.jsonl": line}, "ada", mesh.key("ada")),  # bob's, on her branch
            ({"ai-memory/agents/bob/journal/2026-01.jsonl": line}, "bob", mesh.key("human"))):  # a maintainer's
        try:
            human_commit(mesh.remote, files, branch=f"agentmesh/journals/{branch}", sign_with=signer,
                         base=None if branch == "ada" else "main")
            raise AssertionError("the journal commit landed")
        except AssertionError as exc:
            assert refused(str(exc), JOURNALS + branch), exc
    assert mesh.ref(JOURNALS + "ada") == ada and set(remote_refs(mesh.remote, JOURNALS)) == {JOURNALS + "ada"}
    deleted = mesh.raw_push("", JOURNALS + "ada")
    assert deleted.returncode != 0 and mesh.ref(JOURNALS + "ada") == ada


def test_a_maintainers_operator_verbs_are_journaled_on_their_own_branch(tmp_path):
    """Issue 15's `issue cancel` by a maintainer: its entry used to stay queued forever behind the hook,
    which took only agents' journals. Now it lands on `agentmesh/journals/maintainer.human`, and counts."""
    mesh = Guarded(tmp_path)
    number = mesh.issue()
    config = write_host_config(tmp_path, mesh.remote, "human")
    config.write_text(config.read_text().replace(str(tmp_path / "hosts" / "human"), str(tmp_path / "humans" / "human")))
    mesh.configs["human"] = config
    cancelled = mesh.attempt("human", "issue", "cancel", str(number), "--reason", "not needed")
    assert cancelled.returncode == 0, cancelled.stderr
    ref = JOURNALS + "maintainer.human"
    assert mesh.ref(ref) is not None
    [name] = git("ls-tree", "-r", "--name-only", ref, cwd=mesh.remote).split()
    [entry] = [json.loads(x) for x in git("cat-file", "blob", f"{ref}:{name}", cwd=mesh.remote).splitlines()]
    assert (entry["agent"], entry["event"], entry["issue"]) == ("maintainer.human", "cancelled", number)
    assert not list((tmp_path / "humans" / "human").glob("**/outbox/*.json"))  # nothing left queued
    logged = json.loads(mesh.attempt("bob", "memory", "log", "--json").stdout)
    assert [(e["agent"], e["event"]) for e in logged["entries"]] == [("maintainer.human", "cancelled")]
    assert logged["ignored_journal_lines"] == 0


def test_the_kill_switch_is_neither_forged_nor_deleted(tmp_path):
    mesh = Guarded(tmp_path)
    eve = mesh.attempt("eve", "halt", "--reason", "eve says stop")
    assert eve.returncode == 1 and refused(eve.stderr, HALT) and mesh.ref(HALT) is None
    mesh.run("ada", "halt", "--reason", "release freeze")  # the control: a roster key sets it
    halted = mesh.ref(HALT)
    assert halted is not None
    for pushed in (mesh.raw_push(mesh.unsigned_commit("agentmesh: halt [skip ci]\n\nnever mind\n"), HALT),
                   mesh.raw_push("", HALT)):
        assert pushed.returncode != 0 and refused(pushed.stderr, HALT)
    assert mesh.ref(HALT) == halted
    # halts and resumes only go on top: ada's own resume, pushed back over her next halt, is refused
    mesh.run("ada", "resume")
    resumed = mesh.ref(HALT)
    mesh.run("ada", "halt", "--reason", "frozen again")
    again = mesh.ref(HALT)
    rewound = mesh.raw_push(resumed, HALT)
    assert rewound.returncode != 0 and refused(rewound.stderr, HALT) and "not a fast-forward" in rewound.stderr
    assert mesh.ref(HALT) == again


def test_a_merge_the_hook_refuses_is_a_warning_and_the_run_goes_on(tmp_path):
    """`review.required_approvals: 0` lets ada merge unreviewed; the hook still asks for one approval.
    Her run reports the refusal and ends well; the PR stays open and main does not move."""
    mesh = Guarded(tmp_path, review={"required_approvals": 0})
    mesh.opened()
    main = git("rev-parse", "main", cwd=mesh.remote)
    done = mesh.attempt("ada", "monitor-prs", "--json")
    assert done.returncode == 0, done.stderr
    warnings = [e["detail"] for e in json.loads(done.stdout)["events"] if e["event"] == "warning"]
    assert any("not merged" in w and "0 of 1 approvals" in w for w in warnings), warnings
    assert mesh.pull()["state"] == "open" and git("rev-parse", "main", cwd=mesh.remote) == main
