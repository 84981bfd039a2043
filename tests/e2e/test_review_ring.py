"""Three agents in a review ring, both commands ticking as real processes, merge.auto on."""

from __future__ import annotations

import json
import threading
import time

import yaml

from tests.support import JOURNALS, agent_forge, agent_mesh, demo_body, git, local_forge_remote, remote_refs
from tests.support.cli import run_json, write_host_config

GATE = ["python3", "-c",
        "import pathlib; [compile(p.read_text(), str(p), 'exec') for p in pathlib.Path('.').rglob('*.py')]"]
MESH_YAML = yaml.safe_dump({"review": {"ring": ["a", "b", "c"]}, "merge": {"auto": True},
                            "gates": [{"name": "python syntax", "run": GATE, "timeout_seconds": 60}]})


def test_ring_reviews_merges_and_cleans_up(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git", MESH_YAML)
    forge = agent_forge(agent_mesh(remote, tmp_path / "humans", "human"))
    for i in range(1, 7):
        forge.create_issue(f"Module {i}", demo_body(f"pkg/mod{i}.py", f"VALUE = {i}\n"), ["task"])
    agents = ["a", "b", "c"]
    configs = {a: write_host_config(tmp_path, remote, a) for a in agents}
    for a in agents:  # every agent is present before the first PR is opened
        run_json(configs[a], "monitor-prs")

    def loop(agent: str) -> None:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            run_json(configs[agent], "monitor-prs")
            run_json(configs[agent], "claim-task")
            if all(i.state == "closed" for i in forge.list_issues(state="all")):
                run_json(configs[agent], "monitor-prs")  # clean up after its last merge
                return

    threads = [threading.Thread(target=loop, args=(a,)) for a in agents]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    issues = forge.list_issues(state="all")
    assert len(issues) == 6 and all(i.state == "closed" for i in issues)
    pulls = forge.list_pulls(state="all")
    assert len(pulls) == 6 and all(p.state == "merged" for p in pulls)
    following = {"a": "b", "b": "c", "c": "a"}
    for pull in pulls:
        reviews = forge.list_reviews(pull.number)
        assert reviews, pull
        assert {r.author for r in reviews} == {following[pull.author]}, (pull.number, pull.author, reviews)
        assert all(r.state == "APPROVED" and r.commit_id == pull.head_sha for r in reviews)
        assert len(reviews) == 1  # one head, one review
        # read from the remote: the reviewer was asked in the PR's own creation push, never in a push of its own,
        # and the review's status landed in the review's push
        item = f"refs/agentmesh/items/{pull.number}"
        subjects = git("log", "--format=%s", item, cwd=remote).splitlines()
        assert not any(s.startswith("reviewers:") for s in subjects), subjects
        created = git("rev-list", "--max-parents=0", item, cwd=remote)
        assert json.loads(git("show", f"{created}:meta.json", cwd=remote))["requested_reviewers"] == \
            [following[pull.author]]
        status = remote_refs(remote, f"refs/agentmesh/statuses/{pull.head_sha}")
        assert list(status) == [f"refs/agentmesh/statuses/{pull.head_sha}"]
        assert git("log", "--format=%s", *status, cwd=remote).splitlines() == ["status: set"]
    refs = sorted(remote_refs(remote, "refs/heads/"))
    assert [r for r in refs if not r.startswith(JOURNALS)] == [
        "refs/heads/agentmesh/agents/a", "refs/heads/agentmesh/agents/b", "refs/heads/agentmesh/agents/c",
        "refs/heads/main"]
    assert {r for r in refs if r.startswith(JOURNALS)} <= {JOURNALS + a for a in "abc"}  # each agent's own
