"""The host's state directory: caches and observations it can rebuild or lose safely.

Layout (one directory per agent):
    cache.git/            the per-host cache clone (one per remote: cache-<hash>.git)
    observations.json     when this host first saw each claim ref at each sha
    claim-pushes-*/N.json the claim commit this host last pushed for issue N, and when (renewal is due from it)
    bin/askpass.sh        the askpass helper (holds no secret)
    logs/                 run and executor logs, the daemon's crash logs

A state dir that cannot be written (read-only, full) is a temporary failure: StateUnavailable.
"""

from __future__ import annotations

import errno
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from agentmesh.core.digest import sha256
from agentmesh.core.errors import ConfigError, TemporaryError
from agentmesh.core.lease import Clock, Observation, worth_saving
from agentmesh.core.record import replace
from agentmesh.host.files import write_atomic

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the claim path
if TYPE_CHECKING:
    from filelock import FileLock


class StateUnavailable(TemporaryError):
    """The state dir cannot be written now: read-only, full, over its quota, or its permissions
    changed under agentmesh. The host needs fixing, not agentmesh or its config: retry later."""


_UNWRITABLE = {
    errno.EROFS: "is read-only",
    errno.ENOSPC: "is full",
    errno.EDQUOT: "is over its disk quota",
    errno.EACCES: "is not writable",
    errno.EPERM: "is not writable",
}


def state_failure(exc: OSError, root: Path | None = None) -> StateUnavailable | None:
    """The temporary error for an OSError that says local storage cannot be written (the one
    place that decides it), or None when `exc` is something else. A host's disk or permissions
    are the operator's to fix, never a bug: the run is retried once they are."""
    why = _UNWRITABLE.get(exc.errno or 0)
    path = Path(os.path.abspath(exc.filename)) if isinstance(exc.filename, str | os.PathLike) else None
    if why is None or (path is None and exc.errno in (errno.EACCES, errno.EPERM)):
        return None  # a permission error about no file (signalling a process) may be ours
    if root is not None:
        return StateUnavailable(f"state dir {root} {why}: {exc.strerror}" + (f": {path}" if path != root else ""))
    return StateUnavailable(f"{f'the file system of {path}' if path else 'a local disk'} {why}: {exc.strerror}")


def system_clock() -> Clock:
    """This host's clocks now. CLOCK_BOOTTIME keeps counting through suspend."""
    mono_clock = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)
    return Clock(wall=time.time(), mono=time.clock_gettime(mono_clock), boot_id=boot_id())


CLOCK_SKEW_ENV = "AGENTMESH_CLOCK_SKEW_SECONDS"


def clock_from_env(env: Mapping[str, str]) -> Callable[[], Clock]:
    """The system clock, or one whose wall clock is off by `AGENTMESH_CLOCK_SKEW_SECONDS` (chaos
    tests: libfaketime cannot drive Python 3.11's clocks). Only the wall clock moves; CLOCK_BOOTTIME
    and the boot id stay true, as on a host whose NTP is wrong. `@PATH` reads the seconds from that
    file at every reading (missing or unreadable: 0), so a running daemon's clock can jump."""
    value = env.get(CLOCK_SKEW_ENV, "").strip()
    if not value:
        return system_clock
    if value.startswith("@"):
        path = Path(value[1:])
        return lambda: _skewed(_skew_file(path))
    try:
        seconds = float(value)
    except ValueError:
        raise ConfigError(f"{CLOCK_SKEW_ENV}: {value[:40]!r} is not a number of seconds or @PATH") from None
    return lambda: _skewed(seconds)


def _skewed(seconds: float) -> Clock:
    now = system_clock()
    return replace(now, wall=now.wall + seconds)


def _skew_file(path: Path) -> float:
    try:
        return float(path.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0.0  # the fault is healed by removing the file


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        # No boot id (not Linux): a monotonic clock that went backwards marks the reboot.
        return "unknown"


class StateLayout:
    """Every path under a state directory, named in one place."""

    def __init__(self, root: Path):
        self.root = root

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def worktrees(self) -> Path:
        return self.root / "worktrees"

    @property
    def review_worktrees(self) -> Path:
        return self.root / "review-worktrees"

    @property
    def tasks(self) -> Path:
        return self.root / "tasks"

    @property
    def running(self) -> Path:
        """Pidfiles of running executors."""
        return self.root / "running"

    @property
    def rework(self) -> Path:
        return self.root / "rework"

    @property
    def local_halt(self) -> Path:
        return self.root / "HALT"

    @property
    def http_cache(self) -> Path:
        return self.root / "http-cache"

    @property
    def journal_outbox(self) -> Path:
        return self.root / "memory" / "outbox"

    @property
    def journal_sent(self) -> Path:
        """The ids of keyed entries this host has published (a step re-derived on a rerun is
        recorded again under its key; this keeps that from queueing it again)."""
        return self.root / "memory" / "sent-keys"

    @property
    def notify_sent(self) -> Path:
        """One empty file per notice key this host has sent (agent/notify.py): a rerun that
        re-derives an outcome does not notify it again."""
        return self.root / "notify" / "sent"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def bin_dir(self) -> Path:
        return self.root / "bin"


class StateDir(StateLayout):
    def __init__(self, root: Path, remote_url: str):
        super().__init__(root)
        self.remote_key = sha256(remote_url.encode()).hexdigest()[:12]

    def ensure(self) -> StateDir:
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise state_failure(exc, self.root) or ConfigError(
                f"state_dir {self.root}: cannot create: {exc.strerror}") from None
        if not os.access(self.root, os.W_OK):
            code = errno.EROFS if os.statvfs(self.root).f_flag & os.ST_RDONLY else errno.EACCES
            raise StateUnavailable(f"state dir {self.root} {_UNWRITABLE[code]}: {os.strerror(code)}")
        return self

    @property
    def cache_path(self) -> Path:
        return self.root / f"cache-{self.remote_key}.git"

    def lock_path(self, name: str) -> Path:
        return self.root / f"{name}-{self.remote_key}.lock"

    @property
    def observations_path(self) -> Path:
        return self.root / f"observations-{self.remote_key}.json"

    @property
    def claim_pushes(self) -> Path:
        """One file per claim this host pushed (refs/claims.py): losing them only costs a renewal."""
        return self.root / f"claim-pushes-{self.remote_key}"

    def observations_lock(self) -> FileLock:
        from filelock import FileLock  # imported here: a claim that observes nothing needs none

        return FileLock(str(self.observations_path) + ".lock")

    def load_observations(self) -> dict[str, Observation]:
        try:
            data = json.loads(self.observations_path.read_text())
            return {ref: Observation.from_json(obs) for ref, obs in data.get("refs", {}).items()}
        except FileNotFoundError:
            return {}
        except (ValueError, KeyError, TypeError, AttributeError):
            # A corrupt file only restarts the count: expiry then takes longer, never shorter.
            return {}

    def save_observations(self, observations: Mapping[str, Observation],
                          stored: Mapping[str, Observation] | None = None) -> None:
        """Write `observations`; with `stored` (what `load_observations` read under the same lock), only
        when they say more than it does (core/lease.worth_saving)."""
        if stored is not None and not worth_saving(stored, observations):
            return
        data = {"version": 1, "refs": {ref: obs.to_json() for ref, obs in sorted(observations.items())}}
        write_atomic(self.observations_path, json.dumps(data, indent=1))
