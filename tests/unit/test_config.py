"""Configuration: search order, overrides, defaults and one-line errors with dotted paths."""

import pytest
import yaml

from agentmesh.core.errors import EXIT_USER, ConfigError
from agentmesh.core.memory import Caps
from agentmesh.host.config import MeshPolicy, env_overrides, load_host_config, parse_mesh_policy


def write(path, text):
    path.write_text(text)
    return path


def test_mesh_policy_defaults_when_missing():
    policy = parse_mesh_policy(None)
    assert policy == MeshPolicy()
    assert policy.lease.seconds == 1800 and policy.claims.ref_prefix == "refs/heads/claim/"
    assert "good-first-task-for-agent" in policy.labels.eligible
    assert ".agentmesh/**" in policy.protected_paths
    assert policy.memory.branch == "agentmesh/memory"  # journals stay off the default branch


def test_partial_policy_keeps_other_defaults():
    policy = parse_mesh_policy("lease:\n  seconds: 3600\nreview:\n  ring: [a, b, c]\n")
    assert policy.lease.seconds == 3600 and policy.lease.grace_seconds == 300
    assert policy.review.ring == ["a", "b", "c"] and policy.review.required_approvals == 1


@pytest.mark.parametrize("text,message", [
    ("lease: {seconds: 10}", "lease.seconds: must be ≥ 60"),
    ("lease: {secnds: 100}", "lease.secnds: unknown key (did you mean 'seconds'?)"),
    ("lease: {seconds: 600, renew_seconds: 300}", "lease.seconds: must be ≥ 3 × renew_seconds (900)"),
    ("claims: {ref_prefix: claim}", "claims.ref_prefix: must look like refs/<name>/"),
    ("review: {ring: [ok, Not-OK]}", "review.ring.1: 'Not-OK' is not a valid agent name"),
    ("gates: [{name: lint}]", "gates.0.run: is required (a command), or name a built-in gate: builtin: syntax"),
    ("gates: [{builtin: lint}]", "gates.0.builtin: input should be 'syntax'"),
    ("gates: [{builtin: syntax, run: [ruff]}]", "gates.0.run: a builtin gate runs no command"),
    ("review: {required_checks: ['']}", "review.required_checks.0: '' is not a CI context name"),
    ("review: {required_checks: [\"a\\nb\"]}", "review.required_checks.0: "),
    ("merge: {auto: true}\ngates: []", ("merge.auto: true with no gates and no review.required_checks would merge "
                                       "whatever a sibling approves unchecked: add `gates: [{builtin: syntax}]`, "
                                       "name review.required_checks, or set merge.auto: false")),
    ("merge: {method: rebase}", "merge.method: must be one of 'merge' or 'squash'"),
    ("memory: {branch: null}", "memory.branch: "),
    ("memory: {branch: refs/heads/x}", "memory.branch: must be a branch name such as agentmesh/memory"),
    ("memory: {branch: 'a..b'}", "memory.branch: must be a branch name"),
    ("memory: {branch: 'x/'}", "memory.branch: must be a branch name"),
    ("memory: {branch: agentmesh/halt}", "memory.branch: agentmesh/halt is the kill switch's branch"),
    ("memory: {branch: agentmesh/pause}", "memory.branch: agentmesh/pause is the budget pause's branch"),
    ("budgets: {window: year}", "budgets.window: input should be 'day', 'week' or 'month'"),
    ("budgets: {window: week, fleet: {cost_usd_per_day: 5}}",
     "budgets: fleet.cost_usd_per_day is a daily cap but window is week: name it fleet.cost_usd (a cap per week)"),
    ("budgets: {agent: {tasks: 1, tasks_per_day: 2}}", "budgets.agent: tasks and tasks_per_day name the same cap"),
    ("- a list", "must be a mapping"),
    ("lease: [unclosed", "line 1"),
    ("version: 2", "version: must be one of 1"),
])
def test_policy_errors_are_one_line_with_dotted_path(text, message):
    with pytest.raises(ConfigError) as info:
        parse_mesh_policy(text)
    text_out = str(info.value)
    assert message in text_out
    assert "\n" not in text_out
    assert text_out.startswith(".agentmesh/mesh.yaml")
    assert info.value.exit_code == EXIT_USER


@pytest.mark.parametrize("text, window, agent, fleet", [
    ("{}", "day", Caps(), Caps()),
    ("budgets: {agent: {tasks_per_day: 3}, fleet: {executor_minutes_per_day: 60, cost_usd: 5}}", "day",
     Caps(tasks=3), Caps(minutes=60, cost_usd=5)),  # a mesh of an earlier version means the same
    ("budgets: {window: week, agent: {tasks: 10}, fleet: {cost_usd: 50.5}}", "week", Caps(tasks=10),
     Caps(cost_usd=50.5)),
    ("budgets: {window: month, fleet: {executor_minutes: 6000}}", "month", Caps(), Caps(minutes=6000)),
])
def test_budget_caps_count_per_window(text, window, agent, fleet):
    budgets = parse_mesh_policy(text).budgets
    assert (budgets.window, budgets.agent.caps(), budgets.fleet.caps()) == (window, agent, fleet)


def test_several_errors_are_counted_on_one_line():
    with pytest.raises(ConfigError, match=r"\(and 1 more\)"):
        parse_mesh_policy("lease: {seconds: 1}\nmax_attempts: 0\n")


def test_host_config_search_order(tmp_path, monkeypatch):
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    (home / ".config" / "agentmesh").mkdir(parents=True)
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    write(home / ".config" / "agentmesh" / "agentmesh.yaml", "agent: from-home\nremote: /r\n")
    assert load_host_config(env={}).agent == "from-home"
    write(cwd / "agentmesh.yaml", "agent: from-cwd\nremote: /r\n")
    assert load_host_config(env={}).agent == "from-cwd"
    env_file = write(tmp_path / "env.yaml", "agent: from-env\nremote: /r\n")
    assert load_host_config(env={"AGENTMESH_CONFIG": str(env_file)}).agent == "from-env"
    explicit = write(tmp_path / "explicit.yaml", "agent: explicit\nremote: /r\n")
    assert load_host_config(explicit, env={"AGENTMESH_CONFIG": str(env_file)}).agent == "explicit"


def test_env_overrides_and_global_options(tmp_path):
    path = write(tmp_path / "a.yaml", "agent: a1\nremote: /r\nforge: {kind: local}\n")
    env = {"AGENTMESH_AGENT": "a2", "AGENTMESH_FORGE__TOKEN_ENV": "MY_TOKEN", "AGENTMESH_SEATS": "3",
           "AGENTMESH_CAPABILITIES": "gpu, python", "AGENTMESH_TASK_FILE": "/ignored"}
    config = load_host_config(path, env=env)
    assert (config.agent, config.forge.token_env, config.seats) == ("a2", "MY_TOKEN", 3)
    assert config.capabilities == ["gpu", "python"]
    assert load_host_config(path, env=env, agent="a3", remote="/other").agent == "a3"
    assert env_overrides({"AGENTMESH_ISSUE": "4"}) == {}


def test_no_config_needs_remote_and_agent(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="no agent name: this command writes to the mesh as an agent: pass --agent"):
        load_host_config(env={}, remote="/r")
    assert load_host_config(env={}, remote="/r", observer=True).agent == "observer"  # a read needs no name
    assert load_host_config(env={}, remote="/r", agent="solo", observer=True).agent == "solo"
    config = load_host_config(env={}, remote="/r", agent="solo")
    assert config.agent == "solo" and config.forge.kind == "local" and config.seats == 1


@pytest.mark.parametrize("text,message", [
    ("agent: a\nremote: https://user:ghp_secret@example.com/r.git\n", "remote: must not contain credentials"),
    ("agent: a\nremote: /r\nforge: {kind: gitea}\n", "forge.repo: is required for forge kind gitea"),
    ("agent: a\nremote: /r\nforge: {token_env: 'ghp_abc-def'}\n",
     "forge.token_env: must be the name of an environment variable"),
    ("agent: a\nremote: /r\nseats: 0\n", "seats: must be ≥ 1"),
    ("agent: a\nremote: /r\nexecutor: {kind: magic}\n", "executor.kind: must be one of"),
    ("agent: a\nremote: /r\nhost: 'bad host'\n", "host: must be 1-63 characters"),
    ("agent: a\nremote: /r\nagnet: b\n", "agnet: unknown key (did you mean 'agent'?)"),
    ("agent: a\nremote: /r\nexecutor: {sandbox: on}\n", "executor.sandbox: a YAML boolean (on/yes/true) is ambiguous"),
])
def test_host_config_errors(tmp_path, text, message):
    path = write(tmp_path / "agentmesh.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_host_config(path, env={})
    assert message in str(info.value) and str(info.value).startswith(str(path))
    assert "ghp_secret" not in str(info.value)


def test_missing_explicit_config(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_host_config(tmp_path / "nope.yaml", env={})


def test_relative_state_dir_is_relative_to_config_file(tmp_path):
    path = write(tmp_path / "agentmesh.yaml", "agent: a\nremote: /r\nstate_dir: state\n")
    assert load_host_config(path, env={}).resolved_state_dir() == tmp_path / "state"


def test_a_new_mesh_runs_the_syntax_gate_and_names_it():
    """Without a `gates` key the reviewers run the built-in syntax gate; it is written `{builtin: syntax}`."""
    [gate] = MeshPolicy().gates
    assert gate.builtin == "syntax" and gate.name == "syntax" and gate.run == []
    assert MeshPolicy().model_dump(mode="json")["gates"] == [{"builtin": "syntax"}]
    assert parse_mesh_policy("gates: [{builtin: syntax}]") == MeshPolicy()
    named = parse_mesh_policy("gates: [{builtin: syntax, name: parse, timeout_seconds: 30}, {name: t, run: [x]}]")
    assert [(g.name, g.builtin, g.run) for g in named.gates] == [("parse", "syntax", []), ("t", None, ["x"])]
    assert parse_mesh_policy(yaml.safe_dump(named.model_dump(mode="json"))) == named
    assert named.model_dump(mode="json")["gates"] == [{"builtin": "syntax", "name": "parse", "timeout_seconds": 30},
                                                      {"name": "t", "run": ["x"], "timeout_seconds": 600}]


@pytest.mark.parametrize("text", [
    "merge: {auto: true}",  # the default gates: the syntax gate
    "merge: {auto: true}\ngates: [{name: t, run: [x]}]",
    "merge: {auto: true}\ngates: []\nreview: {required_checks: [ci/tests]}",
    "merge: {auto: false}\ngates: []",
])
def test_auto_merge_is_allowed_when_something_checks_the_pr(text):
    parse_mesh_policy(text)


def test_required_checks_are_listed_once():
    policy = parse_mesh_policy("review: {required_checks: [ci/tests, 'build (3.11)', ci/tests]}")
    assert policy.review.required_checks == ["ci/tests", "build (3.11)"]


@pytest.mark.parametrize("word", ["off", "no", "false", "'off'"])
def test_unquoted_sandbox_off_is_off(tmp_path, word):
    """YAML 1.1 reads a bare `off` as the boolean false: it means the sandbox is off, not an error."""
    path = write(tmp_path / "agentmesh.yaml", f"agent: a\nremote: /r\nexecutor:\n  sandbox: {word}\n")
    assert load_host_config(path, env={}).executor.sandbox == "off"
