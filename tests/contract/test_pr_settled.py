"""A run that dies between opening its PR and labelling it, on Gitea and GitHub (issue 16, item 6.9).

On these forges a new PR, its `agentmesh:pr` label and the issue's `agentmesh:review` stage are three
REST calls (the local forge makes them one atomic push: tests/integration/test_adopted_labels.py).
The fake answers one of them 502 after the PR exists: the create itself (it landed, but the answer
was lost), the PR's label, or the issue's stage. That run ends with a temporary failure (exit 75) and
the issue still `agentmesh:working`; the next run finds the open PR, renews the claim and settles the
labels (ClaimTask.settle_review), so it ends with one PR, labelled, and the
issue in review only. The remote is real git, the forge the stateful fake hosting it, every request
validated against the official API description.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import pytest

from agentmesh.agent.claim_task import claim_task
from agentmesh.agent.stages import set_stage
from agentmesh.core.errors import EXIT_TEMPORARY
from agentmesh.core.vocab import Label, Stage
from tests.contract.spec import ContractMock, fake_env, fake_forge_mesh, validator
from tests.support import demo_body, make_remote, path_only_env

STAGES = {s.value for s in Stage}
BAD_GATEWAY = json.dumps({"message": "bad gateway"})


def fail_after_the_create(fake, step: str) -> None:
    """The fake creates the PR, then fails `step`: the create's own answer, the PR's label or the issue's stage
    (every retry of it, at once)."""
    serve = fake.dispatch

    def dispatch(request):
        status, headers, text = serve(request)
        if request.method == "POST" and urlsplit(request.url or "").path.endswith("/pulls") and status == 201:
            pull = json.loads(text)["number"]
            if step == "create":
                return 502, headers, BAD_GATEWAY
            method, number = ("POST", pull) if step == "label" else ("PUT", issue_of(fake, pull))
            fake.inject(method, rf"/issues/{number}/labels\Z", 502, times=3, Retry_After="0")
        return status, headers, text

    fake.dispatch = dispatch  # before `install`, which registers it


def issue_of(fake, pull: int) -> int:
    [issue] = [n for n, item in fake.items.items() if not item.is_pull and f"Closes #{n}" in fake.items[pull].body]
    return issue


def labels(fake, number: int) -> set[str]:
    return {fake.labels[i]["name"] for i in fake.items[number].labels}


@pytest.mark.parametrize("step", ["create", "label", "stage"])
@pytest.mark.parametrize("kind", ["gitea", "github"])
def test_the_next_run_ends_with_one_labelled_pr_and_the_review_stage_only(tmp_path, kind, step):
    checker = validator(kind)  # skips when the API description is absent
    remote = make_remote(tmp_path / "remote.git")
    fake, mesh = fake_forge_mesh(kind, remote, tmp_path / "state", agent="ada", bot="agent-1", token_env="TOKEN",
                                 hosted=True)
    task = fake.create_label("task")["id"]
    issue = fake.new_item("Add notes", demo_body("notes.txt", "notes\n"), labels=[task]).number
    fail_after_the_create(fake, step)
    with ContractMock(checker) as mock:
        fake.install(mock)
        first = claim_task(mesh, mesh.open_forge(), env=path_only_env())
        assert first.exit_code == EXIT_TEMPORARY, first.to_json()
        [pull] = [n for n, item in fake.items.items() if item.is_pull]  # the PR exists ...
        assert Stage.WORKING in labels(fake, issue)  # ... and the issue is still being worked
        assert (Label.PR in labels(fake, pull)) == (step == "stage")

        again = claim_task(mesh, mesh.open_forge(), env=path_only_env())
        assert again.exit_code == 0, again.to_json()
        assert checker.validated >= len(mock.calls)
    assert [n for n, item in fake.items.items() if item.is_pull] == [pull]  # still the one PR
    assert fake.items[pull].state == "open"
    assert Label.PR in labels(fake, pull) and not labels(fake, pull) & STAGES
    assert labels(fake, issue) & STAGES == {Stage.REVIEW}
    assert "in-review" in [e.event for e in again.events]  # the PR was found, the claim renewed


@pytest.mark.parametrize("kind", ["gitea", "github"])
def test_a_stage_is_never_added_to_a_closed_issue_but_still_removed(tmp_path, kind):
    """A run whose view of the issue predates its close (tests/integration/test_crash_windows.py) leaves no stage."""
    with fake_env(kind, tmp_path / "etags") as env:
        issue = env.forge.create_issue("done meanwhile", labels=["task", Stage.REVIEW.label]).number
        env.forge.close_issue(issue)
        set_stage(env.forge, issue, Stage.WORKING)
        assert labels(env.fake, issue) == {"task"}
        env.forge.create_issue("still open", labels=["task"])
        set_stage(env.forge, issue + 1, Stage.WORKING)  # the positive control
        assert labels(env.fake, issue + 1) == {"task", Stage.WORKING.label}
