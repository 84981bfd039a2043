"""The chaos harness's faults of the remote strike between two ref transactions: a push frozen with
its refs locked is never torn by a move or an outage (git's `--atomic` holds only while refs are
locked, not across a server killed, or a folder moved, between the renames that commit them)."""

from __future__ import annotations

import subprocess
import time

from agentmesh.ops.chaos.gitdaemon import GitDaemon
from agentmesh.ops.chaos.leftovers import group_stopped, lock_files
from tests.support import git


def test_the_daemon_is_frozen_only_between_two_ref_transactions(tmp_path):
    base = tmp_path / "served"
    repo = base / "mesh.git"
    git("init", "-q", "--bare", str(repo))
    held, go = tmp_path / "prepared", tmp_path / "go"
    hook = repo / "hooks" / "reference-transaction"  # holds the transaction with its refs locked
    hook.write_text(f'#!/bin/sh\n[ "$1" = prepared ] || exit 0\ntouch {held}\n'
                    f"while [ ! -e {go} ]; do sleep 0.02; done\n")
    hook.chmod(0o755)
    client = tmp_path / "client"
    git("init", "-q", str(client))
    git("commit", "-q", "--allow-empty", "-m", "one", cwd=client)
    daemon = GitDaemon(base, tmp_path / "daemon.log")
    daemon.start()
    try:
        push = subprocess.Popen(["git", "push", "-q", "--atomic", daemon.url("mesh.git"), "HEAD:refs/heads/main",
                                 "HEAD:refs/heads/other"], cwd=client)
        deadline = time.monotonic() + 30
        while not held.exists():
            assert time.monotonic() < deadline and push.poll() is None
            time.sleep(0.02)
        assert lock_files(base)
        assert not daemon.freeze(wait=0.3) and not daemon.paused  # mid-transaction: left running
        go.touch()
        assert push.wait(timeout=30) == 0
        assert daemon.freeze() and daemon.paused and lock_files(base) == []
        assert daemon.proc is not None and group_stopped(daemon.proc.pid)  # taken, not only sent
        daemon.resume()
        head = git("rev-parse", "HEAD", cwd=client)
        assert git("rev-parse", "main", "other", cwd=repo).split() == [head, head]
    finally:
        go.touch()
        daemon.stop()
