"""`agentmesh doctor`: the checks a host must pass before cron runs its agent.

Each check is a function returning a `Check`; `run_checks` runs them in
order and reports a check whose prerequisite failed as skipped instead of
running it into a confusing second failure. Nothing here prints.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from agentmesh.core.errors import AgentmeshError, UserError
from agentmesh.core.pattern import LazyPattern
from agentmesh.core.vocab import LlmReview
from agentmesh.git.remote import RefUpdate, local_path, ls_refs, push, stale_ref_locks
from agentmesh.git.run import Git
from agentmesh.host.config import MESH_POLICY_PATH, HostConfig

MIN_GIT = (2, 38)  # merge-tree --write-tree (local forge merges)
CLOCK_SKEW_SECONDS = 300
CLOCK_FLOOR = datetime(2024, 1, 1, tzinfo=UTC)
PROBE_PREFIX = "refs/agentmesh/doctor/"
_GIT_VERSION = LazyPattern(r"git version (\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    hint: str = ""

    def to_json(self) -> dict:
        return asdict(self)


def passed(name: str, detail: str) -> Check:
    return Check(name, True, detail)


def failed(name: str, detail: str, hint: str) -> Check:
    return Check(name, False, detail, hint)


def skipped(name: str, dependency: str) -> Check:
    """A check not run because `dependency` failed: not verified, so not ok."""
    return Check(name, False, f"skipped until the {dependency} check passes", f"fix {dependency} first")


# --- the checks ----------------------------------------------------------------------------


def check_git(git: Git) -> Check:
    """git on PATH, new enough for every command agentmesh runs."""
    hint = f"install git ≥ {MIN_GIT[0]}.{MIN_GIT[1]} (e.g. from your distribution's backports) first on PATH"
    try:
        out = git.version()
    except AgentmeshError as exc:
        return failed("git", f"cannot run git: {exc}", hint)
    match = _GIT_VERSION.search(out)
    if match is None:
        return failed("git", f"cannot parse `git --version`: {out[:80]!r}", hint)
    version = tuple(int(part or 0) for part in match.groups())
    shown = ".".join(str(part) for part in version)
    if version[:2] < MIN_GIT:
        return failed("git", f"git {shown} is older than {MIN_GIT[0]}.{MIN_GIT[1]}", hint)
    return passed("git", f"git {shown}")


def check_config(load: Callable[[], HostConfig]) -> tuple[Check, HostConfig | None]:
    try:
        host = load()
    except UserError as exc:
        return failed("config", str(exc), "fix the host config (docs/configuration.md) or run `agentmesh init`"), None
    return passed("config", f"agent {host.agent} on {host.host}, remote {host.remote}, forge {host.forge.kind}"), host


def check_state_dir(path: Path, signing_key: Path | None = None) -> Check:
    """The state directory: created like every command creates it, writable, not world-writable
    (another user could plant a cache clone or an askpass helper there); the signing key in it (or
    where the host config puts it), when it exists, private (ssh-keygen signs with nothing else)."""
    name = "state-dir"
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        mode = path.stat().st_mode
    except OSError as exc:
        return failed(name, f"{path}: cannot create: {exc.strerror}", "set state_dir to a directory you own")
    if not os.access(path, os.W_OK | os.X_OK):
        return failed(name, f"{path}: not writable by this user", "chown it to this user or set state_dir elsewhere")
    if mode & stat.S_IWOTH:
        return failed(name, f"{path}: world-writable (mode {stat.S_IMODE(mode):04o})", f"chmod o-w {path}")
    try:
        key_mode = stat.S_IMODE(signing_key.stat().st_mode) if signing_key is not None else 0
    except FileNotFoundError:
        key_mode = 0  # made by the first run
    except OSError as exc:
        return failed(name, f"signing key {signing_key}: {exc.strerror}", "make it readable by this user only")
    if key_mode & 0o077:
        return failed(name, f"signing key {signing_key} is open to others (mode {key_mode:04o}): ssh-keygen refuses "
                            "to sign with it, so this agent can write nothing", f"chmod 600 {signing_key}")
    return passed(name, f"{path} (mode {stat.S_IMODE(mode):04o})")


def check_remote(mesh, now: float) -> Check:
    """Push, read back and delete a scratch ref: reachability, push permission, `--atomic`, and
    leases that hold on this remote (a delete with a stale lease must be refused); on a remote on this
    host, no ref lock file left by a push that died mid-commit."""
    name = "remote"
    hint = "check the remote URL, network and this host's push access (ssh key or forge token)"
    ref = f"{PROBE_PREFIX}{mesh.host.agent}-{secrets.token_hex(6)}"
    pushed: str | None = None
    try:
        ls_refs(mesh.git, mesh.remote, ["HEAD"])  # reachable at all, before any write
        cache = mesh.cache
        # a unique commit: a push of the value the remote already holds skips the lease check
        sha = cache.commit_tree(cache.empty_tree(), [], f"agentmesh doctor probe {ref}\n")
        created = push(mesh.git, cache.path, mesh.remote, [RefUpdate(ref, sha, None)], atomic=True)
        if not created.ok:
            return failed(name, f"push of {ref} refused: {created.rejected()[0].reason}", hint)
        pushed = sha
        if ls_refs(mesh.git, mesh.remote, [ref]).get(ref) != sha:
            return failed(name, f"pushed {ref} but did not read it back", "the remote loses pushes; check its storage")
        stale = push(mesh.git, cache.path, mesh.remote, [RefUpdate(ref, None, None)], atomic=True)
        if stale.ok:
            pushed = None
            return failed(name, "a delete with a stale --force-with-lease succeeded",
                          "use a git server and transport that honour leases; claims depend on them")
        deleted = push(mesh.git, cache.path, mesh.remote, [RefUpdate(ref, None, sha)], atomic=True)
        if not deleted.ok:
            return failed(name, f"delete of {ref} refused: {deleted.rejected()[0].reason}",
                          "allow this account to delete refs under refs/agentmesh/")
        pushed = None
    except AgentmeshError as exc:
        return failed(name, str(exc), hint)
    finally:
        if pushed is not None:
            _delete_quietly(mesh, ref, pushed)
    path = local_path(mesh.remote)
    locks = stale_ref_locks(path, now) if path is not None else []
    if locks:
        listed = ", ".join(f"{lock} ({age / 3600:.1f} h old)" for lock, age in locks[:3])
        return failed(name, f"{len(locks)} stale ref lock file(s) in the remote refuse every push of their refs: "
                      f"{listed}", "a push or the server died while committing: stop what serves the remote, set "
                      "the refs the locks name right, then delete the lock files (docs/local-forge.md, "
                      "\"Limits and housekeeping\")")
    return passed(name, f"{mesh.remote}: atomic push, lease and delete of a scratch ref")


def _delete_quietly(mesh, ref: str, sha: str) -> None:
    try:
        push(mesh.git, mesh.cache.path, mesh.remote, [RefUpdate(ref, None, sha)], atomic=True)
    except AgentmeshError:
        pass  # the report already names the failure; a leftover probe ref harms nothing


def check_forge_token(host: HostConfig, env: Mapping[str, str]) -> Check | None:
    """The part of the forge check that needs no network: None when it passes."""
    if host.forge.kind == "local":
        return passed("forge", "local forge: no token needed")
    if not (env.get(host.forge.token_env) or "").strip():
        return failed("forge", f"{host.forge.kind} forge: ${host.forge.token_env} is not set",
                      f"export {host.forge.token_env}=<a token with write access to {host.forge.repo}> "
                      "where cron or systemd runs agentmesh (never in agentmesh.yaml)")
    return None


def check_forge(mesh, env: Mapping[str, str]) -> Check:

    host = mesh.host
    done = check_forge_token(host, env)
    if done is not None:
        return done
    hint = f"check forge.url and the token in ${host.forge.token_env}"
    try:
        forge = mesh.open_forge()
        user = forge.current_user()
        permission = forge.permission(user)
    except AgentmeshError as exc:
        return failed("forge", f"{host.forge.kind} forge: {exc}", hint)
    if permission not in ("write", "admin"):
        return failed("forge", f"{host.forge.kind} forge: {user} has {permission} access to {host.forge.repo}",
                      f"give {user} write access to {host.forge.repo}")
    return passed("forge", f"{host.forge.kind} forge: {user} has {permission} access to {host.forge.repo}")


def check_sandbox(host: HostConfig) -> Check:
    """bwrap must work unless the host config turned the sandbox off: `auto` without it would run
    executors unsandboxed (every report warns) and refuse to run review gates."""
    from agentmesh.agent.executor import SandboxProbeInterrupted, bwrap_available

    mode = host.executor.sandbox
    if mode == "off":
        return passed("sandbox", "executor.sandbox is off: executors and review gates run unsandboxed, "
                                 "with this user's files in reach")
    try:  # a probe that hangs or cannot start is reported, not raised
        problem = bwrap_available()
    except SandboxProbeInterrupted as interrupted:
        problem = str(interrupted)
    if problem is None:
        return passed("sandbox", f"bwrap works (executor.sandbox: {mode})")
    effect = "executors cannot run" if mode == "required" else "executors would run unsandboxed"
    fallback = "" if mode == "required" else ", or set executor.sandbox: off to accept unsandboxed executors and gates"
    return failed("sandbox", f"{problem} (executor.sandbox: {mode}): {effect} and review gates refuse to run",
                  "install bubblewrap and allow unprivileged user namespaces" + fallback)


def check_policy(mesh) -> Check:
    """The mesh policy on the default branch: every run of every agent stops on an error in it (a
    typo, or `merge.auto: true` with nothing that checks a PR)."""
    try:
        policy = mesh.policy
    except AgentmeshError as exc:
        return failed("policy", str(exc), f"fix {MESH_POLICY_PATH} on the default branch through a PR "
                                          "(docs/configuration.md)")
    gates = ", ".join(gate.name for gate in policy.gates) or "none"
    checks = ", ".join(policy.review.required_checks) or "none"
    return passed("policy", f"gates: {gates}; required checks: {checks}; merge.auto: "
                            f"{str(policy.merge.auto).lower()}")


def check_executor(mesh, env: Mapping[str, str]) -> Check:
    """Each executor can start: its program on the PATH it gets (or in the repository), the interpreter
    its `#!` names, where the sandbox shows it, a network for a hosted model. claim-task refuses to
    claim when none can (agent/run.py:check_executors)."""
    from agentmesh.agent.run import host_executors, start_problems

    executor = mesh.host.executor
    try:
        names = [spec.name for spec in host_executors(mesh)]
        problems = start_problems(mesh, env)
    except UserError as exc:  # a kind its config cannot make: script without executor_script, a bad chain
        return failed("executor", str(exc), "fix executor in the host config, or executor_script in "
                                            ".agentmesh/mesh.yaml through a PR (docs/executors.md)")
    except AgentmeshError as exc:  # the policy or the script's mode could not be read from the remote
        return failed("executor", f"cannot read what the executor needs from the remote: {exc}",
                      "fix the remote check first")
    if problems:
        what = "; ".join(f"{p.name}: {p.reason}" for p in problems)
        some = len(problems) < len(names)
        fix = problems[0].fix if len(problems) == 1 else "; ".join(f"{p.name}: {p.fix}" for p in problems)
        return failed("executor", what + (" (the fallback chain goes on without it)" if some else ""), fix)
    started = f"{executor.kind}: {', '.join(names)} can start"
    return _check_review_executor(mesh, env, started)


def _check_review_executor(mesh, env: Mapping[str, str], started: str) -> Check:
    """With `review.llm: on` and a `review.executor` of its own, that one can start too: else every PR
    this host reviews would go to a human."""
    from agentmesh.agent.run import host_executors, start_problems

    reviewer = mesh.host.review.executor
    if reviewer is None or mesh.policy.review.llm is not LlmReview.ON:
        return passed("executor", started)
    try:
        problems = start_problems(mesh, env, review=True)
        specs = host_executors(mesh, review=True)
    except UserError as exc:
        return failed("executor", f"review.executor: {exc}", "fix review.executor in the host config")
    if len(problems) == len(specs):
        return failed("executor", "review.executor: " + "; ".join(f"{p.name}: {p.reason}" for p in problems),
                      problems[0].fix)
    return passed("executor", f"{started}; reviews: {reviewer.kind} can start")


def check_identity(mesh) -> Check:
    """This host's signing key against the roster on the base branch: without a roster, or with
    this agent missing from it, trust rests on refs and names anyone with push access can write."""
    from agentmesh.agent.mesh import UNSIGNED_BENCHMARK_ENV
    from agentmesh.host.roster import ROSTER_PATH, roster_entry

    key = mesh.public_key
    if key is None:
        return failed("identity", f"{UNSIGNED_BENCHMARK_ENV}=1: this agent signs nothing (a benchmark baseline)",
                      f"unset {UNSIGNED_BENCHMARK_ENV}")
    entry = " ".join(roster_entry(mesh.host.agent, key).split())
    try:
        roster = mesh.roster
    except AgentmeshError as exc:
        return failed("identity", str(exc), f"fix {ROSTER_PATH} on the default branch through a PR")
    if roster is None:
        return failed("identity", f"no {ROSTER_PATH} on {mesh.base_branch}: anyone who can push can claim, "
                                  "review and approve as any agent (docs/security.md)",
                      f"commit a roster through a PR, with this agent's entry: {entry}")
    listed = roster.agent(mesh.host.agent)
    if listed is None:
        return failed("identity", f"{mesh.host.agent} is not in {ROSTER_PATH}: siblings ignore its claims, "
                                  "presence and reviews", f"add through a PR: {entry}")
    if listed.key != key.line:
        return failed("identity", f"{ROSTER_PATH} lists another key for {mesh.host.agent}; this host signs "
                                  f"with {key.fingerprint} ({mesh.signing_key})", f"update its entry: {entry}")
    return passed("identity", f"signs as {mesh.host.agent} with {key.fingerprint}, as {ROSTER_PATH} lists")


def check_hook(mesh) -> Check:
    """On the local forge, whether the remote's server refuses what the roster does not vouch for
    (`agentmesh hook install`); it can only be seen on a remote reached as a path."""
    from agentmesh.git.remote import local_path
    from agentmesh.ops.hook import HookState, status

    kind = mesh.host.forge.kind
    if kind != "local":
        return passed("hook", f"{kind} forge: its accounts and branch protection guard the default branch "
                              "(docs/forges.md)")
    path = local_path(mesh.remote)
    if path is None:
        return passed("hook", f"{mesh.remote} is not a path: run `agentmesh hook check PATH` on the server to see "
                              "whether it refuses unsigned writes")
    try:
        found = status(path)
    except AgentmeshError as exc:
        return failed("hook", f"cannot read the hooks of {path}: {exc}", "check the remote path")
    if found.state is HookState.INSTALLED:
        return passed("hook", f"{path} runs agentmesh's pre-receive hook: {found.trust}")
    hint = f"on the server: agentmesh hook install {path}" + (" --force" if found.state is HookState.FOREIGN else "")
    return failed("hook", f"{path} has no current agentmesh pre-receive hook ({found.state}): anyone who can push "
                          "can write the default branch, claims, presence, reviews, labels, journals and the kill "
                          "switch; agents ignore what no roster key signed, but the remote keeps it (docs/security.md)",
                  hint)


def check_scheduler(which: Callable[[str], str | None] = shutil.which) -> Check:
    for program, what in (("crontab", "cron"), ("systemctl", "systemd")):
        path = which(program)
        if path:
            return passed("scheduler", f"{what} ({path})")
    return failed("scheduler", "neither crontab nor systemctl is on PATH",
                  "install cron (apt-get install cron) and use crontab.example, or use contrib/systemd")


def check_clock(mesh, now: float) -> Check:
    """A clock behind the remote makes this host misjudge leases; one before 2024 is simply wrong."""
    hint = "fix the system clock (timedatectl set-ntp true, or chrony/ntpd)"
    local = datetime.fromtimestamp(now, UTC)
    if local < CLOCK_FLOOR:
        return failed("clock", f"local clock says {local:%Y-%m-%d}, before {CLOCK_FLOOR:%Y-%m-%d}", hint)
    try:
        head = mesh.remote_head
        if head is None:
            return passed("clock", f"{local:%Y-%m-%dT%H:%M:%SZ}; the remote has no default branch to compare")
        committed = mesh.cache.commit_time(head)
    except (AgentmeshError, ValueError) as exc:
        return failed("clock", f"cannot read the remote default branch: {exc}", "fix the remote check first")
    behind = committed - now
    if behind > CLOCK_SKEW_SECONDS:
        return failed("clock", f"local clock is {behind:.0f}s behind the remote head's commit date", hint)
    return passed("clock", f"{local:%Y-%m-%dT%H:%M:%SZ}, not behind the remote head's commit date")


# --- the run ---------------------------------------------------------------------------------


def run_checks(load: Callable[[], HostConfig], *, env: Mapping[str, str] | None = None,
               now: Callable[[], float] = time.time,
               which: Callable[[str], str | None] = shutil.which) -> list[Check]:
    """Every check, in order. `load` reads the host config (the CLI's global options)."""
    from agentmesh.agent.mesh import Mesh, signing_from_env

    env = os.environ if env is None else env
    git = check_git(Git())
    config, host = check_config(load)
    if host is None:
        later = [skipped(name, "config") for name in ("state-dir", "remote", "policy", "identity", "hook", "forge",
                                                        "sandbox", "executor")]
        return [git, config, *later, check_scheduler(which), skipped("clock", "config")]
    state = check_state_dir(host.resolved_state_dir(), host.resolved_signing_key())
    checks = [git, config, state]
    mesh, missing = None, "git" if not git.ok else "state-dir" if not state.ok else None
    if missing is None:
        try:
            mesh = Mesh(host, env=env, signing=signing_from_env(env))
        except (AgentmeshError, OSError) as exc:
            checks.append(failed("cache", f"cannot open the cache clone: {exc}",
                                 "check state_dir and git; the cache clone is rebuilt when removed"))
            missing = "cache"
    remote = check_remote(mesh, now()) if mesh else skipped("remote", missing or "cache")
    checks.append(remote)
    policy = check_policy(mesh) if mesh and remote.ok else skipped("policy", missing or "remote")
    checks.append(policy)
    needed = missing or ("policy" if remote.ok else "remote")
    checks.append(check_identity(mesh) if mesh and policy.ok else skipped("identity", needed))
    checks.append(check_hook(mesh) if mesh and remote.ok else skipped("hook", missing or "remote"))
    forge = check_forge(mesh, env) if mesh else check_forge_token(host, env) or skipped("forge", missing or "cache")
    checks.append(forge)
    checks.append(check_sandbox(host))
    needs_remote = host.executor.kind == "script" and not remote.ok
    checks.append(check_executor(mesh, env) if mesh and not needs_remote else skipped("executor", missing or "remote"))
    checks.append(check_scheduler(which))
    checks.append(check_clock(mesh, now()) if mesh and remote.ok else skipped("clock", missing or "remote"))
    return checks
