"""host/config_cache.py: a validated host config, policy or roster is reused only for the same inputs, and
anything stale, damaged or foreign in the cache is a miss that the full validation answers."""

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from agentmesh.core.errors import ConfigError
from agentmesh.host import config as full
from agentmesh.host.config_cache import CONFIG_SUFFIX, load_host_config, parse_mesh_policy, parse_roster

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOvwKZlE9bFPazPWgMBAi5/AeR1KwZFByG22colsdAw9 a"


def setup(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    config = tmp_path / "agentmesh.yaml"
    config.write_text(f"agent: a\nremote: /srv/mesh.git\nstate_dir: {tmp_path / 'st'}\nseats: 2\n")
    return config, {"XDG_STATE_HOME": str(tmp_path / "state")}


def kept_files(env: dict[str, str]) -> list[Path]:
    return sorted((Path(env["XDG_STATE_HOME"]) / "agentmesh" / "host-configs").glob(f"*{CONFIG_SUFFIX}"))


def test_a_kept_config_is_reused_and_any_edit_is_validated_anew(tmp_path):
    config, env = setup(tmp_path)
    first = load_host_config(config, env=env)
    assert first == full.load_host_config(config, env=dict(env)) and first.source == config.resolve()
    [snapshot] = kept_files(env)
    assert snapshot.stat().st_mode & 0o777 == 0o600
    assert load_host_config(config, env=env) == first
    config.write_text(config.read_text().replace("seats: 2", "seats: 3"))
    assert load_host_config(config, env=env).seats == 3
    assert load_host_config(config, env={**env, "AGENTMESH_SEATS": "5"}).seats == 5  # an override is an input
    assert load_host_config(config, env=env, agent="b").agent == "b"
    config.write_text(config.read_text().replace("seats: 3", "seats: 0"))  # bad input: never kept, always refused
    for _ in range(2):
        with pytest.raises(ConfigError) as caught:
            load_host_config(config, env=env)
        assert str(caught.value) == f"{config}: seats: must be ≥ 1"


def test_a_damaged_or_foreign_snapshot_is_a_miss(tmp_path):
    config, env = setup(tmp_path)
    good = load_host_config(config, env=env)
    [snapshot] = kept_files(env)
    snapshot.write_bytes(b"\x80\x05not a pickle")
    assert load_host_config(config, env=env) == good
    # another config's snapshot under this config's name: its key is not this input's
    other = tmp_path / "other.yaml"
    other.write_text(f"agent: b\nremote: /srv/other.git\nstate_dir: {tmp_path / 'st'}\n")
    load_host_config(other, env=env)
    [theirs] = [p for p in kept_files(env) if p != snapshot]
    snapshot.write_bytes(theirs.read_bytes())
    assert load_host_config(config, env=env) == good
    # a pickle that would call anything but a config type is refused before it runs
    planted = tmp_path / "planted"
    payload = pickle.loads(snapshot.read_bytes())
    snapshot.write_bytes(pickle.dumps({**payload, "config": Planted(str(planted))}))
    assert load_host_config(config, env=env) == good
    assert not planted.exists()


class Planted:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path,)


def test_the_policy_and_the_roster_are_kept_per_text(tmp_path):
    text = "version: 1\nlease:\n  seconds: 900\n"
    policy = parse_mesh_policy(text, "mesh.yaml", tmp_path)
    assert policy == full.parse_mesh_policy(text) and policy.lease.seconds == 900
    assert parse_mesh_policy(text, "mesh.yaml", tmp_path) == policy
    assert parse_mesh_policy(text.replace("900", "1200"), "mesh.yaml", tmp_path).lease.seconds == 1200
    assert parse_mesh_policy(None, "mesh.yaml", tmp_path) == full.MeshPolicy()
    (tmp_path / "agentmesh-policy.pickle").write_bytes(b"garbage")
    assert parse_mesh_policy(text, "mesh.yaml", tmp_path) == policy
    for _ in range(2):
        with pytest.raises(ConfigError, match=r"^mesh.yaml: lease.seconds: must be ≥ 60$"):
            parse_mesh_policy(text.replace("900", "5"), "mesh.yaml", tmp_path)
    roster = f"agents:\n  - name: a\n    key: {KEY}\n"
    assert parse_roster(roster, "roster.yaml", tmp_path).names == ["a"]
    assert parse_roster(roster.replace("name: a", "name: b"), "roster.yaml", tmp_path).names == ["b"]
    with pytest.raises(ConfigError, match=r"^roster.yaml: "):
        parse_roster(roster.replace("name: a", "name: -a"), "roster.yaml", tmp_path)


WARM = """
import sys
from pathlib import Path
from agentmesh.host import config
from agentmesh.host.config_cache import load_host_config, parse_mesh_policy
host = load_host_config(Path(sys.argv[1]), env={"XDG_STATE_HOME": sys.argv[2]})
policy = parse_mesh_policy("version: 1\\n", "mesh.yaml", Path(sys.argv[3]))
print(host.seats, policy.lease.seconds, "yaml" in sys.modules,
      config.HostConfig.__pydantic_complete__ or config.MeshPolicy.__pydantic_complete__)
"""


def test_a_warm_run_parses_no_yaml_and_builds_no_validator(tmp_path):
    config, env = setup(tmp_path)
    argv = [sys.executable, "-c", WARM, str(config), env["XDG_STATE_HOME"], str(tmp_path)]
    cold = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()
    warm = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()
    assert cold == ["2", "1800", "True", "True"]
    assert warm == ["2", "1800", "False", "False"]
