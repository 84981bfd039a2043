"""The host config and the mesh policy as a full validation produced them, kept for the next run with the
same inputs: a cron tick whose config file and policy did not change neither parses YAML nor validates
again, and pydantic's validators are not even built (the models are `defer_build`).

host/config.py's pydantic models stay the only validation (ai-memory/decisions/0016-start-up-paid-once.md):
what is kept is the validated models themselves (the host config per input, and the last policy and roster
validated, per text), pickled, written only after a full validation passed, so
a bad config or policy fails exactly as before, with the same one-line message, on every run. A kept model
is used only when
- the key it was written under is the key of this run's inputs, recomputed now: the config file's content,
  the options, host and home (host/basics.snapshot_key), the AGENTMESH_* overrides the loader reads, and
  agentmesh's code (MODEL_CODE); for the policy, its text;
- it unpickles to nothing but the types a validation produces (the models of host/config.py and
  host/roster.py, the enums of core/vocab.py, paths), never any other callable, and to the model it must be.
Anything else (a missing, damaged, foreign or stale file) is a miss: the full validation runs and its result
is kept. The files are the agent's own (0600, in its state home and cache clone), as the basics' are.
"""

from __future__ import annotations

import io
import json
import pickle
import time
from collections.abc import Callable, Mapping
from enum import Enum
from pathlib import Path, PosixPath, PurePosixPath
from typing import TYPE_CHECKING, TypeVar

from agentmesh.core.digest import sha256
from agentmesh.host import config as full
from agentmesh.host.basics import (
    MODEL_CODE,
    SNAPSHOT_VERSION,
    code_stamp,
    find_host_config,
    keep_snapshot,
    snapshot_dir,
    snapshot_key,
)
from agentmesh.host.files import write_atomic

if TYPE_CHECKING:
    from agentmesh.host.roster import Roster

CONFIG_SUFFIX = ".config.pickle"  # next to the basics' snapshots: host/basics.snapshot_dir
M = TypeVar("M", bound=full.BaseModel)
_PATHS = {"PosixPath": PosixPath, "PurePosixPath": PurePosixPath}


class _Validated(pickle.Unpickler):
    """Unpickles only what a validation produces: no other class or function is ever looked up."""

    def find_class(self, module: str, name: str) -> type:
        from agentmesh.core import vocab
        from agentmesh.host import roster

        found = None
        if module in ("agentmesh.host.config", "agentmesh.host.roster"):
            found = vars(full if module == "agentmesh.host.config" else roster).get(name)
            found = found if isinstance(found, type) and issubclass(found, full.BaseModel) else None
        elif module == "agentmesh.core.vocab":
            found = vars(vocab).get(name)
            found = found if isinstance(found, type) and issubclass(found, Enum) else None
        elif module == "pathlib":
            found = _PATHS.get(name)
        if found is None:
            raise pickle.UnpicklingError(f"{module}.{name} is not a type a config validation produces")
        return found


def _kept(path: Path, key: str) -> dict | None:
    """The snapshot at `path` when it was written under `key`; None when missing, damaged or another's."""
    try:
        data = _Validated(io.BytesIO(path.read_bytes())).load()
    except Exception:  # noqa: BLE001 -- any damage at all is a miss: the full validation decides
        return None
    return data if isinstance(data, dict) and data.get("key") == key else None


def load_host_config(explicit: Path | None = None, *, remote: str | None = None, agent: str | None = None,
                     env: Mapping[str, str], observer: bool = False) -> full.HostConfig:
    """host/config.load_host_config, from the snapshot of an earlier full validation of these same inputs
    when there is one."""
    path = find_host_config(explicit, env)
    key = snapshot_key(path, remote, agent, observer, env, MODEL_CODE)
    snapshot = None if key is None else snapshot_dir(env) / f"{key}{CONFIG_SUFFIX}"
    overrides = {name: env.get(name) for name in full.override_names()}
    if snapshot is not None and key is not None:
        kept = _kept(snapshot, key)
        if kept is not None and kept.get("overrides") == overrides and isinstance(kept.get("config"), full.HostConfig):
            return kept["config"]
    config = full.load_host_config(explicit, remote=remote, agent=agent, env=dict(env), observer=observer)
    if snapshot is not None:
        keep_snapshot(snapshot, pickle.dumps({"key": key, "overrides": overrides, "config": config}), now=time.time())
    return config


def text_key(kind: str, text: str | None) -> str:
    return sha256(json.dumps([SNAPSHOT_VERSION, code_stamp(MODEL_CODE), kind, text]).encode()).hexdigest()


def _from_text(kind: str, text: str | None, folder: Path, model: type[M], validate: Callable[[], M]) -> M:
    """`validate()` (the full validation of `text`), or the model it gave for this same text before: the last
    one validated is kept in `folder`."""
    key = text_key(kind, text)
    snapshot = folder / f"agentmesh-{kind}.pickle"
    kept = _kept(snapshot, key)
    if kept is not None and isinstance(kept.get("model"), model):
        return kept["model"]
    found = validate()
    try:
        write_atomic(snapshot, pickle.dumps({"key": key, "model": found}))
    except OSError:
        pass  # the next run validates it again
    return found


def parse_mesh_policy(text: str | None, source: str, folder: Path) -> full.MeshPolicy:
    """host/config.parse_mesh_policy, kept in `folder` (the cache clone, beside the policy's text) per text."""
    return _from_text("policy", text, folder, full.MeshPolicy, lambda: full.parse_mesh_policy(text, source))


def parse_roster(text: str, where: str, folder: Path) -> Roster:
    """host/roster.parse_roster, kept in `folder` per text."""
    from agentmesh.host import roster

    return _from_text("roster", text, folder, roster.Roster, lambda: roster.parse_roster(text, where))
