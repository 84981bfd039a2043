"""The notifier of a real Mesh on a local-forge remote: a real command (argv, no shell) and a webhook on
127.0.0.1 (http.server in a thread). What reaches them, what never does (the forge token, the signing
key's place), that each notice goes once per key, and that a failing or hanging notifier costs a
bounded time and a warning, never the run."""

from __future__ import annotations

import json
import os
import sys
import time

from agentmesh.agent.mesh import Mesh
from agentmesh.agent.notify import Notifier, notify_listener
from agentmesh.agent.report import Report
from agentmesh.core.vocab import Event, NotifyEvent
from agentmesh.host.config import HostConfig
from tests.support import agent_forge, local_forge_remote, webhook_server

TOKEN = "glpat-" + "Zx9Yw8Vu7Ts6Rq5Po4Nm"  # a known secret of the host: its forge token
# appends one JSON line per run: what the command got on stdin and in its environment
RECORD = ("import json, os, sys; data = sys.stdin.read(); "
          "open(sys.argv[1], 'a').write(json.dumps({'stdin': data, 'env': dict(os.environ)}) + '\\n')")


def make_mesh(tmp_path, notify: dict, **env) -> tuple[Mesh, dict]:
    remote = local_forge_remote(tmp_path / "remote.git")
    host = HostConfig.model_validate({"agent": "ada", "host": "host-ada", "remote": str(remote),
                                      "state_dir": str(tmp_path / "state"), "notify": notify})
    # the token in the variable the forge reads and in another one, as a careless profile would have it
    full = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LANG": "C.UTF-8", "AGENTMESH_TOKEN": TOKEN,
            "DEPLOY_TOKEN_COPY": TOKEN, **env}
    return Mesh(host, env=full), full


def records(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_the_token_reaches_neither_the_command_nor_the_webhook(tmp_path):
    out = tmp_path / "command.jsonl"
    with webhook_server() as (url, received):
        mesh, env = make_mesh(tmp_path, {"command": [sys.executable, "-c", RECORD, str(out)],
                                         "webhook_url_env": "CHAT_HOOK"}, CHAT_HOOK=url)
        warnings: list[str] = []
        notifier = Notifier.of(mesh, env, warnings.append)
        assert notifier is not None
        key_path = str(mesh.signing_key)
        sent = notifier.send(NotifyEvent.NEEDS_HUMAN, key="needs-human-4-abc", issue=4, pr=9,
                             title=lambda: f"Rotate {TOKEN} please",
                             detail=f"protected paths; log at {mesh.state.root}/logs/x.log; key {key_path}; {TOKEN}")
    assert sent and warnings == []
    [run] = records(out)
    assert "AGENTMESH_TOKEN" not in run["env"] and "DEPLOY_TOKEN_COPY" not in run["env"]
    assert not [name for name, value in run["env"].items() if TOKEN in value or str(mesh.state.root) in value]
    assert run["env"]["PATH"] == os.environ["PATH"]  # what a notify command needs is there
    [post] = received
    assert post["type"] == "application/json"
    for raw in (run["stdin"], post["raw"].decode()):
        assert TOKEN not in raw
        assert str(mesh.state.root) not in raw and key_path not in raw  # host paths are made public too
    event = json.loads(run["stdin"])
    assert event == post["json"]
    assert event["event"] == "needs-human" and event["issue"] == 4 and event["pr"] == 9
    assert event["text"].startswith("agentmesh: PR #9 issue #4 needs a human")
    assert event["title"] == "Rotate [REDACTED] please"
    assert "<state>/logs/x.log" in event["detail"]


def test_a_notice_goes_once_per_key_even_from_a_new_process(tmp_path):
    with webhook_server() as (url, received):
        mesh, env = make_mesh(tmp_path, {"webhook_url": url})
        first = Notifier.of(mesh, env, print)
        assert first is not None
        assert first.send(NotifyEvent.DEAD_LETTER, key="dead-letter-failed-7-3", issue=7, attempt=3)
        assert not first.send(NotifyEvent.DEAD_LETTER, key="dead-letter-failed-7-3", issue=7, attempt=3)
        again = Notifier.of(mesh, env, print)  # as the next run would make it
        assert again is not None
        assert not again.send(NotifyEvent.DEAD_LETTER, key="dead-letter-failed-7-3", issue=7, attempt=3)
        assert again.send(NotifyEvent.DEAD_LETTER, key="dead-letter-failed-7-4", issue=7, attempt=3)
    assert [r["json"]["id"] for r in received] == ["dead-letter-failed-7-3", "dead-letter-failed-7-4"]


def test_unwanted_events_are_not_sent(tmp_path):
    with webhook_server() as (url, received):
        mesh, env = make_mesh(tmp_path, {"webhook_url": url, "events": ["dead-letter"]})
        notifier = Notifier.of(mesh, env, print)
        assert notifier is not None
        assert not notifier.send(NotifyEvent.NEEDS_HUMAN, key="a", issue=1)
        assert notifier.send(NotifyEvent.DEAD_LETTER, key="b", issue=1, attempt=3)
    assert [r["json"]["event"] for r in received] == ["dead-letter"]


def test_a_hanging_or_failing_notifier_costs_a_bounded_time_and_a_warning(tmp_path):
    hang = [sys.executable, "-c", "import time; time.sleep(60)"]
    with webhook_server(delay=5) as (url, received):
        mesh, env = make_mesh(tmp_path, {"command": hang, "webhook_url": url, "timeout_seconds": 0.5})
        warnings: list[str] = []
        notifier = Notifier.of(mesh, env, warnings.append)
        assert notifier is not None
        started = time.monotonic()
        assert not notifier.send(NotifyEvent.HALT, key="halt-1", detail="freeze")
        assert time.monotonic() - started < 4
        assert len(received) == 1  # it was asked, and did not answer in time
    assert warnings == ["notify: the command for halt timed out after 0.5s; the run goes on",
                        "notify: the webhook for halt failed (ReadTimeout); the run goes on"]
    with webhook_server(status=500) as (url, _):
        mesh, env = make_mesh(tmp_path / "b", {"command": [sys.executable, "-c", "raise SystemExit(7)"],
                                               "webhook_url": url})
        warnings = []
        notifier = Notifier.of(mesh, env, warnings.append)
        assert notifier is not None
        assert not notifier.send(NotifyEvent.HALT, key="halt-2", detail="freeze")
    assert warnings == ["notify: the command for halt exit 7; the run goes on",
                        "notify: the webhook for halt answered HTTP 500; the run goes on"]
    assert not any("s3cr3t" in w for w in warnings)  # the URL's secret path is never quoted


def test_the_run_listener_turns_lines_into_notices_once(tmp_path):
    """What a run reports, as claim-task and monitor-prs report it, through the listener they install."""
    with webhook_server() as (url, received):
        mesh, env = make_mesh(tmp_path, {"webhook_url": url})
        forge = agent_forge(mesh)
        issue = forge.create_issue("Fix the parser", "", ["task"]).number
        report = Report("ada")
        listen = notify_listener(mesh, forge, report, env)
        assert listen is not None
        report.listeners.append(listen)
        report.add(Event.FAILED, issue=issue, attempt=1, key=f"failed-{issue}-1", detail="attempt 1: exit 1")
        report.add(Event.FAILED, issue=issue, attempt=2, key=f"failed-{issue}-2", detail="attempt 2: exit 1")
        report.add(Event.FAILED, issue=issue, attempt=2, key=f"failed-{issue}-2", detail="a rerun re-derives it")
        report.add(Event.BUDGET_EXHAUSTED, detail="agent ada tasks_per_day: 3 of 3: no new claims")
        report.add(Event.BUDGET_EXHAUSTED, detail="agent ada tasks_per_day: 3 of 3: no new claims")
        report.add(Event.IDLE, detail="nothing to do")
    events = [r["json"] for r in received]
    assert [(e["event"], e["issue"], e["attempt"]) for e in events] == [
        ("repeated-failure", issue, 2), ("budget-exhausted", None, None)]
    assert events[0]["title"] == "Fix the parser" and events[0]["max_attempts"] == 3
    assert "agent ada tasks_per_day: 3 of 3" in events[1]["text"]
    assert [e.event for e in report.events if e.event == Event.WARNING] == []
