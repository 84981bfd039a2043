"""What the claim path needs of the host config and the mesh policy, as plain values, without pydantic.

host/config.py validates both with pydantic: that is the one place their rules and defaults live.
Importing it costs more than a claim itself, so a claim reads *snapshots* of what that validation
produced (ai-memory/decisions/0016-start-up-paid-once.md):
- `HostBasics`, kept per config input (the file's bytes, the options and the AGENTMESH_* overrides
  the loader consults), under the default state home;
- `ClaimRules`, kept in the cache clone per sha of the remote's default branch (agent/plumbing.py).
Nothing here validates anything: a snapshot that is missing, stale or unreadable sends the caller
back to host/config.py, whose verdict (and error message) is then the same as it always was.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from agentmesh import __version__
from agentmesh.core.digest import sha256
from agentmesh.core.errors import ConfigError
from agentmesh.core.record import Record, values
from agentmesh.host.files import write_atomic

CONFIG_ENV = "AGENTMESH_CONFIG"
HOST_CONFIG_NAME = "agentmesh.yaml"
MESH_POLICY_PATH = ".agentmesh/mesh.yaml"
ROSTER_PATH = ".agentmesh/roster.yaml"
LEGACY_HALT_FILE = ".agentmesh/HALT"  # the kill switch of earlier versions, still obeyed (agent/halt.py)
HALT_REF = "refs/heads/agentmesh/halt"  # the mesh-wide kill switch: halted unless its head is a resume commit
PAUSE_REF = "refs/heads/agentmesh/pause"  # the budget pause: no new claims unless its head is a resume commit
SNAPSHOT_VERSION = 1


def find_host_config(explicit: Path | None, env: Mapping[str, str]) -> Path | None:
    """The host config file to read, or None when there is none."""
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"--config {explicit}: no such file")
        return explicit
    if env.get(CONFIG_ENV):
        path = Path(env[CONFIG_ENV]).expanduser()
        if not path.is_file():
            raise ConfigError(f"${CONFIG_ENV}={path}: no such file")
        return path
    for candidate in (Path.cwd() / HOST_CONFIG_NAME, Path.home() / ".config" / "agentmesh" / HOST_CONFIG_NAME):
        if candidate.is_file():
            return candidate
    return None


def state_home(env: Mapping[str, str]) -> Path:
    return Path(env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state"))


def default_state_dir(agent: str, env: Mapping[str, str]) -> Path:
    """An agent's state dir when its config names none."""
    return state_home(env) / "agentmesh" / agent


class HostBasics(Record):
    """The host config's values every command that touches the remote needs (agent/plumbing.py)."""

    agent: str
    host: str
    remote: str
    state_dir: Path  # resolved
    signing_key: Path  # resolved
    token_env: str
    git_timeout_seconds: float
    source: Path | None  # the file it was read from

    def to_json(self) -> dict:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in values(self).items()}

    @classmethod
    def from_json(cls, data: Mapping) -> HostBasics:
        return cls(agent=str(data["agent"]), host=str(data["host"]), remote=str(data["remote"]),
                   state_dir=Path(data["state_dir"]), signing_key=Path(data["signing_key"]),
                   token_env=str(data["token_env"]), git_timeout_seconds=float(data["git_timeout_seconds"]),
                   source=Path(data["source"]) if data["source"] is not None else None)


class LeaseRules(Record):
    seconds: int
    grace_seconds: int
    max_seconds: int


class PrefixRules(Record):
    ref_prefix: str


class ClaimRules(Record):
    """What the claim protocol reads of the mesh policy, shaped like it (`rules.lease.seconds`), so that
    refs/claims.py takes either a MeshPolicy or these."""

    claims: PrefixRules
    lease: LeaseRules
    default_branch: str | None
    presence: PrefixRules  # a run's set-up brings the presence refs in with the claims (agent/plumbing.py)

    def to_json(self) -> dict:
        return {"claims": values(self.claims), "lease": values(self.lease), "default_branch": self.default_branch,
                "presence": values(self.presence)}

    @classmethod
    def from_json(cls, data: Mapping) -> ClaimRules:
        lease = data["lease"]
        return cls(PrefixRules(str(data["claims"]["ref_prefix"])),
                   LeaseRules(int(lease["seconds"]), int(lease["grace_seconds"]), int(lease["max_seconds"])),
                   None if data["default_branch"] is None else str(data["default_branch"]),
                   PrefixRules(str(data["presence"]["ref_prefix"])))


# --- the host config's snapshot ---------------------------------------------------


# The modules whose code decides what a validation produces: the basics' own, and (for the whole validated
# models, host/config_cache.py) the defaults and types those models take from core/.
BASICS_CODE = ("host/config.py", "host/basics.py")
MODEL_CODE = (*BASICS_CODE, "host/config_cache.py", "core/vocab.py", "core/select.py", "core/memory.py",
              "core/notify.py", "core/slug.py")


@cache  # once a process: the code it runs was read at import, and a daemon reads the policy every run
def code_stamp(files: tuple[str, ...] = BASICS_CODE) -> tuple:
    """Which validation wrote a snapshot: a new agentmesh (or an edited `files`) never reads an old one."""
    here = Path(__file__).parents[1]
    stamps: list = []
    for name in files:
        try:
            st = (here / name).stat()
            stamps.append((name, st.st_mtime_ns, st.st_size))
        except OSError:
            stamps.append((name, None, None))
    return (__version__, *stamps)


def snapshot_key(path: Path | None, remote: str | None, agent: str | None, observer: bool,
                 env: Mapping[str, str], code: tuple[str, ...] = BASICS_CODE) -> str | None:
    """The key of a host config's inputs: the file's content, the options and where it runs; None when the
    config file cannot be read (the full load then says why)."""
    try:
        text = sha256(path.read_bytes()).hexdigest() if path is not None else None
    except OSError:
        return None
    inputs = [SNAPSHOT_VERSION, code_stamp(code), str(path.resolve()) if path is not None else None, text, remote,
              agent, observer, os.uname().nodename, str(Path.home()), env.get("XDG_STATE_HOME")]
    return sha256(json.dumps(inputs).encode()).hexdigest()[:32]


def snapshot_dir(env: Mapping[str, str]) -> Path:
    return state_home(env) / "agentmesh" / "host-configs"


def _snapshot_path(path: Path | None, remote: str | None, agent: str | None, observer: bool,
                   env: Mapping[str, str]) -> Path | None:
    """Where the snapshot for these inputs lives; None when the config file cannot be read."""
    key = snapshot_key(path, remote, agent, observer, env)
    return None if key is None else snapshot_dir(env) / f"{key}.json"


def cached_basics(explicit: Path | None, *, remote: str | None, agent: str | None, observer: bool,
                  env: Mapping[str, str]) -> tuple[HostBasics | None, Path | None]:
    """(the basics a full validation of these same inputs produced, or None; where to keep them)."""
    snapshot = _snapshot_path(find_host_config(explicit, env), remote, agent, observer, env)
    if snapshot is None:
        return None, None
    try:
        data = json.loads(snapshot.read_text())
        # the AGENTMESH_<KEY> overrides the loader consulted, each as it was then (None: unset)
        if any(env.get(name) != value for name, value in data["overrides"].items()):
            return None, snapshot
        return HostBasics.from_json(data["basics"]), snapshot
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None, snapshot  # missing or damaged: it is only a cache


SNAPSHOT_DAYS = 30  # a snapshot no run read for this long is deleted when another is written


def save_basics(snapshot: Path, basics: HostBasics, overrides: Mapping[str, str | None], *, now: float) -> None:
    """Keep what a full validation produced; a host that cannot write it simply validates every time. Each
    config change leaves a snapshot behind: the ones unused for SNAPSHOT_DAYS go."""
    keep_snapshot(snapshot, json.dumps({"overrides": dict(overrides), "basics": basics.to_json()}), now=now)


def keep_snapshot(snapshot: Path, data: str | bytes, *, now: float) -> None:
    """Write a snapshot (0600) and delete its folder's snapshots unused for SNAPSHOT_DAYS; a host that cannot
    write it simply validates every time."""
    try:
        write_atomic(snapshot, data)
        for old in snapshot.parent.iterdir():
            st = old.stat()  # read or written lately (a noatime mount only costs one more validation)
            if old != snapshot and max(st.st_atime, st.st_mtime) < now - SNAPSHOT_DAYS * 86400:
                old.unlink(missing_ok=True)
    except OSError:
        pass

