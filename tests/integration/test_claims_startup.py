"""What a cron `agentmesh claims acquire` pays before its claim: the git processes it starts and the
modules it imports (issue 16, "pay start-up once"). Real processes on a real bare remote."""

import json
import subprocess
import sys

from tests.support import git, human_commit, make_remote, remote_refs
from tests.support.cli import cli_env, run_cli
from tests.support.gitcount import counting_git

# The claim itself: the lease-checked push (counted with git's trace2 events, tests/support/gitcount.py);
# a create-only push that landed needs no readback. The signed claim commit takes no git process
# (git/signing.py), and a lone `claims` command does not move the cache clone's mirror.
CLAIM = ("push",)


def subcommands(count):
    """The git subcommand of each call agentmesh started, in order."""
    return [next(a for a in argv if not a.startswith("-")) for argv in count.argvs()]


def test_a_warm_acquire_starts_one_set_up_git_call_before_its_claim(tmp_path):
    remote = make_remote(tmp_path / "remote.git", mesh_yaml="lease:\n  seconds: 900\n")
    args = ("--remote", str(remote), "--agent", "a", "claims", "acquire")
    with counting_git(tmp_path / "shim") as count:
        first = run_cli(*args, "1", "--json", cwd=tmp_path)  # a cold cache clone: reads the policy once
        assert first.returncode == 0, first.stderr
        count.reset()
        warm = run_cli(*args, "2", "--json", cwd=tmp_path)
        assert warm.returncode == 0, warm.stderr
    calls = subcommands(count)
    assert calls[-len(CLAIM):] == list(CLAIM), calls
    assert len(calls) - len(CLAIM) <= 1, f"set-up git calls before the claim: {calls[:-len(CLAIM)]}"
    # the policy kept from the first run still rules: its lease is in the claim
    assert "Lease-Seconds: 900" in run_git_message(remote, "refs/heads/claim/2")


def test_a_moved_default_branch_is_read_again(tmp_path):
    remote = make_remote(tmp_path / "remote.git")
    args = ("--remote", str(remote), "--agent", "a", "claims", "acquire")
    assert run_cli(*args, "1", cwd=tmp_path).returncode == 0
    human_commit(remote, {".agentmesh/mesh.yaml": "claims:\n  ref_prefix: refs/heads/taken/\n"}, message="policy")
    assert run_cli(*args, "2", cwd=tmp_path).returncode == 0
    assert set(remote_refs(remote, "refs/heads/taken/")) == {"refs/heads/taken/2"}


def run_git_message(remote, ref):
    return git("log", "-1", "--format=%B", ref, cwd=remote)


# Modules a warm claim must not import (docs/benchmarks.md, "What cron pays"): pydantic, rich, yaml and requests
# (the config models, the CLI's looks, the forges); click (cli/fast.py parses the claim's command line); typing;
# tempfile (shutil, random, bz2, lzma); dataclasses, which imports inspect, ast, dis and tokenize and compiles
# six methods per frozen class (the claim path's records are core/record.Record); logging, socket, secrets;
# core/sanitize, whose pattern of forbidden characters is compiled only for a text that is not printable ASCII;
# hashlib, which starts OpenSSL (core/digest.py), base64 (binascii does) and unicodedata (only slugs need it).
HEAVY = ("pydantic", "rich", "yaml", "requests", "click", "typing", "tempfile", "dataclasses", "inspect", "ast",
         "logging", "socket", "secrets", "random", "shutil", "agentmesh.core.sanitize", "hashlib", "_hashlib",
         "base64", "unicodedata")

PROBE = """
import sys
from agentmesh.cli.main import main
try:
    main(sys.argv[1:])
finally:
    heavy = sorted(m for m in HEAVY if m in sys.modules)
    print("IMPORTED " + json.dumps(heavy), file=sys.stderr)
"""


def imported(tmp_path, *args):
    probe = f"import json\nHEAVY = {HEAVY!r}\n" + PROBE
    done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True,
                          env=cli_env(tmp_path), cwd=tmp_path, timeout=120)
    line = next(x for x in done.stderr.splitlines() if x.startswith("IMPORTED "))
    return done, json.loads(line.removeprefix("IMPORTED "))


def test_the_claim_path_imports_neither_pydantic_nor_rich(tmp_path):
    remote = make_remote(tmp_path / "remote.git")
    _, heavy = imported(tmp_path, "claims", "acquire", "--help")
    assert "pydantic" not in heavy and "rich" not in heavy
    args = ("--remote", str(remote), "--agent", "a", "claims", "acquire")
    first, _ = imported(tmp_path, *args, "1")  # the first run validates the config and the policy
    assert "claim #1: won" in first.stdout, first.stderr
    warm, heavy = imported(tmp_path, *args, "2")
    assert "claim #2: won" in warm.stdout, warm.stderr
    assert heavy == [], heavy  # none of HEAVY


def test_what_was_kept_never_hides_a_config_or_policy_error(tmp_path):
    """A config or policy that became invalid after a run kept them fails as it would have on a cold host."""
    remote = make_remote(tmp_path / "remote.git")
    config = tmp_path / "agentmesh.yaml"
    config.write_text(f"agent: a\nremote: {remote}\nstate_dir: {tmp_path / 'state-a'}\n")
    assert run_cli("--config", str(config), "claims", "acquire", "1", cwd=tmp_path).returncode == 0
    config.write_text(f"agent: a\nremote: {remote}\nstate_dir: {tmp_path / 'state-a'}\nseats: 0\n")
    bad = run_cli("--config", str(config), "claims", "acquire", "2", cwd=tmp_path)
    assert bad.returncode == 1 and bad.stderr.strip() == f"agentmesh: error: {config}: seats: must be ≥ 1"
    config.write_text(f"agent: a\nremote: {remote}\nstate_dir: {tmp_path / 'state-a'}\n")
    human_commit(remote, {".agentmesh/mesh.yaml": "lease:\n  seconds: 5\n"}, message="bad policy")
    for _ in range(2):  # a bad policy is never kept: the second run says it again
        result = run_cli("--config", str(config), "claims", "acquire", "3", cwd=tmp_path)
        assert result.returncode == 1
        assert result.stderr.strip() == (
            "agentmesh: error: .agentmesh/mesh.yaml on the default branch: lease.seconds: must be ≥ 60")
    assert remote_refs(remote, "refs/heads/claim/3") == {}


def test_a_moved_branch_with_the_same_policy_validates_it_no_more_and_a_changed_one_is_read(tmp_path):
    """A merge moves the default branch, and seldom the policy: the claim rules then come from the model a
    validation of the same text (and code) gave before (host/config_cache.py), not from a new validation
    (the first in a process builds pydantic's validator, ~25 ms). An edited policy is validated anew."""
    import pickle

    from agentmesh.host.config import parse_mesh_policy
    from tests.support import agent_mesh

    remote = make_remote(tmp_path / "remote.git", mesh_yaml="lease:\n  seconds: 900\n")
    first = agent_mesh(remote, tmp_path, "a")
    assert first.rules.lease.seconds == 900 and first.policy.lease.seconds == 900
    [kept] = first.cache.path.glob("agentmesh-policy.pickle")
    # the model kept for this text, swapped for a telltale one: seen below only if it is reused
    payload = pickle.loads(kept.read_bytes())
    kept.write_bytes(pickle.dumps({**payload, "model": parse_mesh_policy("lease:\n  seconds: 3600\n")}))
    human_commit(remote, {"README.md": "moved\n"}, message="a merge")
    moved = agent_mesh(remote, tmp_path, "a")
    assert moved.remote_head != first.remote_head
    assert moved.rules.lease.seconds == 3600  # reused, not validated again
    human_commit(remote, {".agentmesh/mesh.yaml": "lease:\n  seconds: 2700\n"}, message="policy")
    edited = agent_mesh(remote, tmp_path, "a")
    assert edited.rules.lease.seconds == 2700 and edited.policy.lease.seconds == 2700
