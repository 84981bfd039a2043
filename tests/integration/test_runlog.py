"""Logs and metrics of real claim-task and monitor-prs runs: JSON lines, no token anywhere, the textfile."""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentmesh.agent.report import Line, Report
from agentmesh.core.errors import ConfigError
from agentmesh.core.vocab import Event
from agentmesh.host.config import load_host_config
from agentmesh.ops.metrics import update_metrics
from tests.support import agent_forge, agent_mesh, demo_body, local_forge_remote
from tests.support.cli import run_cli

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "tok-3f9a8c7d1e2b4a6f"  # fake; no secret pattern knows its shape, only the known-secret list
FIELDS = {"ts", "level", "logger", "message", "agent", "issue", "pr", "event", "duration_ms", "command", "detail"}


def run(tmp_path: Path, config: Path, *args: str) -> subprocess.CompletedProcess:
    return run_cli("--config", str(config), *args, cwd=tmp_path, env={"AGENTMESH_TOKEN": TOKEN})


def write_config(tmp_path: Path, remote: Path) -> tuple[Path, Path, Path]:
    state, textfile = tmp_path / "state", tmp_path / "textfile" / "agentmesh.prom"
    config = tmp_path / "agentmesh.yaml"
    config.write_text(f"agent: host1-a\nremote: {remote}\nstate_dir: {state}\nseats: 2\n"
                      f"metrics:\n  textfile: {textfile}\n")
    return config, state, textfile


_SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')


def parse_prometheus(text: str) -> dict[tuple[str, tuple], float]:
    """(name, sorted labels) -> value; asserts the text exposition format along the way."""
    assert text.endswith("\n")
    samples: dict[tuple[str, tuple], float] = {}
    types: dict[str, str] = {}
    helped: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            helped.add(line.split()[2])
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert kind in ("counter", "gauge") and name not in types
            types[name] = kind
        else:
            match = _SAMPLE.fullmatch(line)
            assert match, line
            name, labels, value = match.groups()
            assert name in types and name in helped, f"{name} has no HELP/TYPE before its samples"
            assert _LABEL.sub("", labels or "") == "", labels
            key = (name, tuple(sorted(_LABEL.findall(labels or ""))))
            assert key not in samples
            samples[key] = float(value)
    return samples


def log_records(state: Path) -> list[dict]:
    return [json.loads(line) for line in (state / "logs" / "agentmesh.jsonl").read_text().splitlines()]


def files_containing(root: Path, needle: str) -> list[Path]:
    """What this host wrote that holds `needle`. The cache clone is left out: it holds the forge's own
    items as they are (in git objects and the item cache, agentmesh-items.json, 0600), public text in
    which the token was pasted; what the host derives from them (logs, events, branches) is checked."""
    return [p for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()
            and not any(part.startswith("cache-") and part.endswith(".git") for part in p.relative_to(root).parts)]


def test_claim_task_logs_and_counts_without_leaking_the_token(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    forge = agent_forge(agent_mesh(remote, tmp_path / "hosts", "human"))
    forge.create_issue("Note", demo_body("note.md", "hi\n"), ["task"])
    config, state, textfile = write_config(tmp_path, remote)

    first = run(tmp_path, config, "-vv", "claim-task", "--json")
    assert first.returncode == 0, first.stderr
    assert [e["event"] for e in json.loads(first.stdout)["events"]] == ["claimed", "executed", "pushed", "pr-opened"]
    records = log_records(state)
    assert all(set(r) >= FIELDS for r in records)
    assert all(r["ts"].endswith("Z") for r in records)
    run_lines = [r for r in records if r["logger"] == "agentmesh.run"]
    assert [r["event"] for r in run_lines] == ["claimed", "executed", "pushed", "pr-opened", "claim-task-done"]
    assert all(r["agent"] == "host1-a" and r["command"] == "claim-task" for r in run_lines)
    assert run_lines[0]["issue"] == 1 and run_lines[3]["pr"] == 2
    assert run_lines[-1]["detail"] == "worked" and run_lines[-1]["duration_ms"] > 0
    assert "claim-task worked" in first.stderr  # -vv: the human lines on stderr as well
    assert TOKEN not in first.stdout + first.stderr
    assert files_containing(state, TOKEN) == [] and TOKEN not in textfile.read_text()

    assert stat.S_IMODE(textfile.stat().st_mode) == 0o644
    assert stat.S_IMODE((state / "logs" / "agentmesh.jsonl").stat().st_mode) == 0o600
    metrics = parse_prometheus(textfile.read_text())
    assert metrics[("agentmesh_claims_total", (("agent", "host1-a"),))] == 1
    assert metrics[("agentmesh_prs_total", (("agent", "host1-a"),))] == 1
    assert metrics[("agentmesh_merges_total", (("agent", "host1-a"),))] == 0
    labels = (("agent", "host1-a"), ("command", "claim-task"))
    assert metrics[("agentmesh_tick_duration_seconds", labels)] > 0
    assert abs(metrics[("agentmesh_last_success_timestamp_seconds", labels)] - time.time()) < 120

    # the token pasted into forge text is scrubbed before it can reach a branch name or an event
    forge.create_issue(f"Rotate {TOKEN} soon", demo_body("other.md", "x\n"), ["task"])
    second = run(tmp_path, config, "claim-task")
    assert second.returncode == 0, second.stderr
    assert "pr-opened #3" in second.stdout
    log_text = "".join(p.read_text() for p in (state / "logs").glob("agentmesh.jsonl*"))
    assert TOKEN not in log_text and "host1-a/3-rotate-redacted-soon" in log_text
    assert files_containing(state, TOKEN) == []
    assert TOKEN not in textfile.read_text()
    again = parse_prometheus(textfile.read_text())
    assert again[("agentmesh_claims_total", (("agent", "host1-a"),))] == 2
    assert again[("agentmesh_prs_total", (("agent", "host1-a"),))] == 2
    assert [r["event"] for r in log_records(state) if r["logger"] == "agentmesh.run"].count("claim-task-done") == 2

    monitor = run(tmp_path, config, "monitor-prs")
    assert monitor.returncode == 0, monitor.stderr
    assert log_records(state)[-1]["event"] == "monitor-prs-done"
    gauges = parse_prometheus(textfile.read_text())
    assert ("agentmesh_tick_duration_seconds", (("agent", "host1-a"), ("command", "monitor-prs"))) in gauges
    assert gauges[("agentmesh_claims_total", (("agent", "host1-a"),))] == 2


def test_without_a_textfile_only_the_log_is_written(tmp_path):
    remote = local_forge_remote(tmp_path / "remote.git")
    config = tmp_path / "agentmesh.yaml"
    config.write_text(f"agent: host1-a\nremote: {remote}\nstate_dir: {tmp_path / 'state'}\n")
    result = run(tmp_path, config, "claim-task")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no -v: nothing more on stderr than before
    assert [r["event"] for r in log_records(tmp_path / "state")][-1] == "claim-task-done"
    assert not (tmp_path / "state" / "metrics.json").exists()


def test_textfile_must_be_absolute(tmp_path):
    config = tmp_path / "agentmesh.yaml"
    config.write_text("agent: a\nremote: /srv/mesh.git\nmetrics: {textfile: metrics/agentmesh.prom}\n")
    with pytest.raises(ConfigError, match=r"metrics\.textfile: must be an absolute path"):
        load_host_config(config, env={})
    config.write_text("agent: a\nremote: /srv/mesh.git\nmetrics: {textfile: ~/agentmesh.prom}\n")
    assert load_host_config(config, env={}).metrics.textfile == Path.home() / "agentmesh.prom"


_WORKER = """
import sys
from pathlib import Path
from agentmesh.agent.report import Line, Report
from agentmesh.core.vocab import Event
from agentmesh.ops.metrics import update_metrics

textfile, state, n = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    report = Report("host1-a")
    report.record(Line(Event("claimed"), 1))
    report.record(Line(Event("merged"), pr=2))
    update_metrics(textfile, state, agent="host1-a", command=f"cmd-{i % 2}", report=report, duration_s=0.5, ok=True)
"""


def test_concurrent_runs_lose_no_counts(tmp_path):
    textfile, state = tmp_path / "m.prom", tmp_path / "state"
    state.mkdir()
    workers = [subprocess.Popen([sys.executable, "-c", _WORKER, str(textfile), str(state), "25"], cwd=ROOT)
               for _ in range(4)]
    assert [w.wait(timeout=120) for w in workers] == [0, 0, 0, 0]
    metrics = parse_prometheus(textfile.read_text())
    assert metrics[("agentmesh_claims_total", (("agent", "host1-a"),))] == 100
    assert metrics[("agentmesh_merges_total", (("agent", "host1-a"),))] == 100


def test_failed_run_keeps_the_last_success_time_and_a_corrupt_store_restarts(tmp_path):
    textfile, state = tmp_path / "m.prom", tmp_path / "state"
    state.mkdir()
    ok = Report("a")
    ok.record(Line(Event("reaped"), 3))
    update_metrics(textfile, state, agent="a", command="monitor-prs", report=ok, duration_s=1.25, ok=True)
    success = parse_prometheus(textfile.read_text())[
        ("agentmesh_last_success_timestamp_seconds", (("agent", "a"), ("command", "monitor-prs")))]
    failed = Report("a", exit_code=75)
    failed.record(Line(Event("failed"), 4))
    update_metrics(textfile, state, agent="a", command="monitor-prs", report=failed, duration_s=7.5, ok=False)
    metrics = parse_prometheus(textfile.read_text())
    labels = (("agent", "a"), ("command", "monitor-prs"))
    assert metrics[("agentmesh_last_success_timestamp_seconds", labels)] == success
    assert metrics[("agentmesh_tick_duration_seconds", labels)] == 7.5
    assert metrics[("agentmesh_reaps_total", (("agent", "a"),))] == 1
    assert metrics[("agentmesh_failures_total", (("agent", "a"),))] == 1
    (state / "metrics.json").write_text('{"agents": {"a": {"counters": {"reaps": "many"}}}}')
    update_metrics(textfile, state, agent="a", command="monitor-prs", report=ok, duration_s=1, ok=True)
    assert parse_prometheus(textfile.read_text())[("agentmesh_reaps_total", (("agent", "a"),))] == 1
