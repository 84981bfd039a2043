"""host/basics.py: a host config's basics are kept per input, and any changed input is a miss."""

import os
import time
from pathlib import Path

from agentmesh.host.basics import SNAPSHOT_DAYS, HostBasics, cached_basics, save_basics
from agentmesh.host.config import load_host_config, override_names


def lookup(config: Path, env: dict, **kwargs):
    return cached_basics(config, remote=kwargs.get("remote"), agent=kwargs.get("agent"),
                         observer=kwargs.get("observer", False), env=env)


def keep(config: Path, env: dict) -> HostBasics:
    """What `load_basics` does on a miss: validate fully, then keep the basics."""
    basics = load_host_config(config, env=dict(env)).basics()
    _, snapshot = lookup(config, env)
    save_basics(snapshot, basics, {name: env.get(name) for name in override_names()}, now=time.time())
    return basics


def test_kept_basics_are_found_again_and_any_changed_input_misses(tmp_path):
    config = tmp_path / "agentmesh.yaml"
    config.write_text(f"agent: a\nremote: /srv/mesh.git\nstate_dir: {tmp_path / 'st'}\ngit_timeout_seconds: 30\n")
    env = {"XDG_STATE_HOME": str(tmp_path / "state")}
    assert lookup(config, env)[0] is None
    basics = keep(config, env)
    assert basics.git_timeout_seconds == 30 and basics.state_dir == tmp_path / "st"
    assert lookup(config, env)[0] == basics
    assert lookup(config, {**env, "AGENTMESH_AGENT": "b"})[0] is None  # an override the loader reads
    assert lookup(config, {**env, "AGENTMESH_TOKEN": "x"})[0] == basics  # a variable it never reads
    assert lookup(config, env, agent="b")[0] is None
    assert lookup(config, env, observer=True)[0] is None
    config.write_text(config.read_text() + "seats: 2\n")
    assert lookup(config, env)[0] is None


def test_a_damaged_snapshot_is_a_miss_and_old_ones_go(tmp_path):
    config = tmp_path / "agentmesh.yaml"
    config.write_text("agent: a\nremote: /srv/mesh.git\n")
    env = {"XDG_STATE_HOME": str(tmp_path / "state")}
    keep(config, env)
    _, snapshot = lookup(config, env)
    snapshot.write_text("{not json")
    assert lookup(config, env)[0] is None
    stale = snapshot.with_name("0" * 32 + ".json")
    stale.write_text("{}")
    long_ago = time.time() - (SNAPSHOT_DAYS + 1) * 86400
    os.utime(stale, (long_ago, long_ago))
    keep(config, env)
    assert not stale.exists() and lookup(config, env)[0] is not None
