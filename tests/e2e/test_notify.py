"""Issue 15, item 9: notifications. Real agent processes (`python -m agentmesh`) on a real local-forge
remote tell a webhook on 127.0.0.1 (http.server in a thread) and a command what needs a person:
an issue handed to a human, a repeated failure, a dead letter, a halt and a resume. The forge token
the agents hold reaches neither, the webhook's secret URL is in no output or log, and a notifier
that hangs costs a warning, never the command."""

from __future__ import annotations

import json
import sys

import yaml

from tests.support import agent_forge, agent_mesh, local_forge_remote, webhook_server
from tests.support.cli import run_cli, write_host_config

TOKEN = "glpat-" + "Zx9Yw8Vu7Ts6Rq5Po4Nm"
RECORD = ("import json, os, sys; data = sys.stdin.read(); "
          "open(sys.argv[1], 'a').write(json.dumps({'stdin': data, 'env': dict(os.environ)}) + '\\n')")
# the executor: an issue asking for CI gets a workflow (a protected path: a human's); any other fails
EXECUTOR = """
import pathlib, sys
task, worktree = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
if "PLEASE-ADD-CI" not in task.read_text():
    sys.exit("cannot do this one")
(worktree / ".github" / "workflows").mkdir(parents=True)
(worktree / ".github" / "workflows" / "ci.yml").write_text("on: push\\n")
"""


def configure(tmp_path, remote, notify: dict, **extra):
    config = write_host_config(tmp_path, remote, "ada", {
        "kind": "command", "sandbox": "off", "command": [sys.executable, "-c", EXECUTOR, "{task_file}", "{worktree}"]})
    data = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**data, "notify": notify, **extra}))
    return config


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_failures_and_hand_overs_reach_the_webhook_and_the_command_once_and_without_the_token(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git", "max_attempts: 3\n")
    human = agent_forge(agent_mesh(remote, tmp_path / "humans", "human"))
    failing = human.create_issue(f"Parse dates <!channel> {TOKEN}", "Make the parser understand dates.",
                                 ["task"]).number
    ci = human.create_issue("Add CI", "PLEASE-ADD-CI", ["task"]).number
    out = tmp_path / "notices.jsonl"
    with webhook_server() as (url, received):
        config = configure(tmp_path, remote, {"command": [sys.executable, "-c", RECORD, str(out)],
                                              "webhook_url_env": "CHAT_HOOK"}, seats=2)
        env = {"AGENTMESH_TOKEN": TOKEN, "CHAT_HOOK": url}
        runs = [run_cli("--config", str(config), "-vv", "claim-task", "--json", cwd=tmp_path, env=env)
                for _ in range(3)]  # attempts 1, 2 and 3 of one issue
    for run in runs:
        assert run.returncode == 0, run.stderr
    # 1st tick: the first failure is routine; the CI issue is a human's. 2nd: a repeated failure. 3rd:
    # dead-lettered.
    sent = [r["json"] for r in received]
    assert sorted((e["event"], e["issue"], e["attempt"]) for e in sent) == [
        ("dead-letter", failing, 3), ("needs-human", ci, None), ("repeated-failure", failing, 2)]
    assert [e["event"] for e in sent][-1] == "dead-letter"
    recorded = lines(out)
    assert [json.loads(r["stdin"]) for r in recorded] == sent  # the same event, on the command's stdin
    for r in recorded:
        assert TOKEN not in json.dumps(r["env"]) and "AGENTMESH_TOKEN" not in r["env"]
        assert str(tmp_path / "hosts") not in json.dumps(r["env"])  # no state dir, no signing key path
    for raw in [r["raw"].decode() for r in received]:
        assert TOKEN not in raw
    dead = next(e for e in sent if e["event"] == "dead-letter")
    assert dead["title"] == "Parse dates <!channel> [REDACTED]"  # forge text as data, this host's token redacted
    assert dead["text"].startswith(f"agentmesh: issue #{failing} is dead-lettered: attempt 3 of 3 failed")
    assert "channel" not in dead["text"]
    secret_path = url.split("/", 3)[3]
    logs = "".join(p.read_text() for p in (tmp_path / "hosts" / "ada" / "logs").glob("*.jsonl"))
    for text in [logs, *(r.stdout + r.stderr for r in runs)]:
        assert secret_path not in text


def test_halt_and_resume_notify_and_a_hanging_command_does_not_stop_them(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    with webhook_server() as (url, received):
        config = configure(tmp_path, remote, {"webhook_url": url, "timeout_seconds": 1,
                                              "command": [sys.executable, "-c", "import time; time.sleep(60)"]})
        halted = run_cli("--config", str(config), "halt", "--reason", "deploy <!here> freeze", cwd=tmp_path,
                         env={"AGENTMESH_TOKEN": TOKEN})
        resumed = run_cli("--config", str(config), "resume", cwd=tmp_path, env={"AGENTMESH_TOKEN": TOKEN})
    assert halted.returncode == 0, halted.stderr
    assert "halted: branch agentmesh/halt" in halted.stdout
    assert "warning: notify: the command for halt timed out after 1s; the run goes on" in halted.stderr
    assert resumed.returncode == 0, resumed.stderr
    halt, resume = (r["json"] for r in received)
    assert halt["event"] == "halt" and halt["detail"] == "branch agentmesh/halt: deploy <!here> freeze"
    assert halt["text"] == "agentmesh: halted: branch agentmesh/halt: deploy &lt;!here&gt; freeze (`ada` on `host-ada`)"
    assert resume["event"] == "resume" and resume["detail"] == "was: deploy <!here> freeze"
    assert halt["id"] != resume["id"]
