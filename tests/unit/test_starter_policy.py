"""The starter mesh.yaml is the mesh policy model written out: every key, every value from the model."""

from __future__ import annotations

import yaml

from agentmesh.host.config import MeshPolicy, parse_mesh_policy
from agentmesh.host.starter import starter_mesh_yaml

COMMENTED_OUT = {"default_branch"}  # None by default: shown as a commented example


def key_paths(data: dict, prefix: str = "") -> set[str]:
    paths = set()
    for key, value in data.items():
        paths.add(prefix + key)
        if isinstance(value, dict):
            paths |= key_paths(value, f"{prefix}{key}.")
    return paths


def test_the_starter_parses_back_to_the_defaults():
    assert parse_mesh_policy(starter_mesh_yaml()) == MeshPolicy()


def test_the_starter_shows_every_key_of_the_policy():
    text = starter_mesh_yaml()
    written = key_paths(yaml.safe_load(text))
    assert written == key_paths(MeshPolicy().model_dump()) - COMMENTED_OUT
    for path in COMMENTED_OUT:
        assert f"# {path.rpartition('.')[2]}: " in text
    assert text.count("\n#") + text.count("  #") > 20  # it teaches, not a bare dump


def test_values_come_from_the_model():
    policy = MeshPolicy.model_validate({
        "default_branch": "trunk",
        "labels": {"eligible": ["task"]},
        "lease": {"seconds": 3600, "renew_seconds": 600, "grace_seconds": 60, "max_seconds": 7200},
        "review": {"ring": ["a", "b"], "bot_users": ["bot"], "required_approvals": 2, "llm": "on"},
        "gates": [{"name": "tests", "run": ["python", "-m", "pytest", "-q"], "timeout_seconds": 900}],
        "protected_paths": [],
        "budgets": {"window": "week", "agent": {"tasks": 5}, "fleet": {"cost_usd": 12.5}},
        "selection": {"weights": {"age": 0.5}},
        "max_attempts": 5,
        "executor_script": ["python", "agent.py", "{task_file}"],
        "merge": {"auto": True, "method": "squash"},
        "rework": {"max": 0},
        "memory": {"branch": "memory", "lessons": False},
    })
    assert parse_mesh_policy(starter_mesh_yaml(policy)) == policy
