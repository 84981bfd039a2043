"""Cron's `claims acquire`, `claims renew` and `tick` through cli/fast.py (no click) against the same commands
through click: real processes on a real remote, the same exit codes (0 ok, 1 user error, 4 held, 75 temporary) and
the same words. `-v -v` takes the fast path and `-vv` (the same count, which click alone reads) takes click."""

import re
import subprocess
import sys

import pytest

from tests.support import make_remote
from tests.support.cli import cli_argv, cli_env, run_cli

FAST, CLICK = ["-v", "-v"], ["-vv"]


def both(tmp_path, *args: str) -> list[tuple[int, str, str]]:
    """(exit code, stdout, stderr) of the fast path, then of click, each with shas masked."""
    runs = []
    for verbose in (FAST, CLICK):
        done = run_cli(*verbose, *args, cwd=tmp_path)
        runs.append((done.returncode, *(re.sub(r"\b[0-9a-f]{12,64}\b", "SHA", out) for out in (done.stdout,
                                                                                                 done.stderr))))
    return runs


@pytest.fixture
def remote(tmp_path):
    return make_remote(tmp_path / "remote.git")


def test_fast_and_click_agree_on_every_outcome_of_a_claim(tmp_path, remote):
    a, b = ["--remote", str(remote), "--agent", "a"], ["--remote", str(remote), "--agent", "b"]
    assert run_cli(*a, "claims", "acquire", "1", cwd=tmp_path).returncode == 0  # held by a from now on
    cases = {
        ("won", 0): [*a, "claims", "acquire", "{n}"],
        ("already held by this agent", 0): [*a, "claims", "acquire", "1", "--json"],
        ("held by another agent", 4): [*b, "claims", "acquire", "1"],
        ("a work branch that is not one", 1): [*a, "claims", "acquire", "{n}", "--work-branch", "main"],
        ("renewed", 0): [*a, "claims", "renew", "1"],
        ("renewed by another agent", 4): [*b, "claims", "renew", "1", "--json"],
        ("the remote moved away", 75): ["--remote", str(tmp_path / "gone.git"), "--agent", "a", "claims", "renew", "1"],
    }
    for n, ((what, code), args) in enumerate(cases.items(), start=2):
        argv = [arg.replace("{n}", str(n)) for arg in args]
        fast, slow = both(tmp_path, *argv)
        if what == "won":  # the fast one won issue n, so click finds it held by this same agent: say so
            slow = (slow[0], slow[1].replace("already held by this agent", "won"), slow[2])
        if what == "renewed":
            slow = (slow[0], slow[1].replace("renewal 2", "renewal 1"), slow[2])
        assert fast == slow, what
        assert fast[0] == code, (what, fast)


def test_fast_and_click_agree_on_a_tick_and_the_fast_one_never_imports_click(tmp_path, remote):
    args = ["--remote", str(remote), "--agent", "a", "tick"]
    for extra in ([], ["--json"]):
        fast, slow = ([code, out, re.sub(r"\d+", "N", err)] for code, out, err in both(tmp_path, *args, *extra))
        assert fast == slow, extra
        assert fast[0] == 0 and "idle" in fast[1], fast
    probe = ("import sys\nfrom agentmesh.cli.main import main\ntry:\n    main(sys.argv[1:])\nfinally:\n"
             "    print('CLICK', 'click' in sys.modules, file=sys.stderr)\n")
    for verbose, imported in ((FAST, False), (CLICK, True)):
        done = subprocess.run([sys.executable, "-c", probe, *verbose, *args], capture_output=True, text=True,
                              env=cli_env(tmp_path), cwd=tmp_path, timeout=120)
        assert f"CLICK {imported}" in done.stderr, (verbose, done.stderr)


def test_the_fast_path_runs_atexit_callbacks_when_there_are_some(tmp_path, remote):
    """It ends the process without the interpreter's teardown only when nothing waits for that teardown."""
    script = ("import atexit, sys\n"
              "atexit.register(lambda: print('callback ran', flush=True))\n"
              "from agentmesh.cli.main import main\n"
              "main()\n")
    argv = [sys.executable, "-c", script, "--remote", str(remote), "--agent", "a", "claims", "acquire", "3"]
    done = subprocess.run(argv, capture_output=True, text=True, env=cli_env(tmp_path), cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    won, ran = done.stdout.splitlines()
    assert won.startswith("claim #3: won") and ran == "callback ran"


def test_a_reader_that_went_away_is_exit_1_and_silence_on_both_paths(tmp_path, remote):
    """`agentmesh claims acquire 5 | head -c0`: click exits 1 without a word on a broken pipe; so does the
    fast path (not 3, an internal error with a crash log)."""
    for n, verbose in enumerate((FAST, CLICK), start=5):
        argv = cli_argv(*verbose, "--remote", str(remote), "--agent", "a", "claims", "acquire", str(n))
        child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli_env(tmp_path),
                                 cwd=tmp_path)
        child.stdout.close()  # gone before the claim's line is written
        stderr = child.stderr.read()
        assert (child.wait(timeout=120), stderr) == (1, b""), verbose
    assert not list(tmp_path.glob("agentmesh-crash-*.log"))
