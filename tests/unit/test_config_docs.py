"""docs/configuration.md names every key of the host config and of the mesh policy.

The models are walked, so a field added to either without a line in the reference fails here.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterator

import yaml
from pydantic import BaseModel

from agentmesh.host.config import HostConfig, MeshPolicy
from tests.support import REPO

DOC = REPO / "docs" / "configuration.md"


def _models(annotation) -> Iterator[type[BaseModel]]:
    """The models in an annotation: `Budget`, `Budget | None`, ..."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for arg in typing.get_args(annotation):
        yield from _models(arg)


def _paths(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, bool]]:
    """(dotted path, whether it sits in a list) for every field, nested models included."""
    for name, info in model.model_fields.items():
        path = prefix + name
        in_list = typing.get_origin(info.annotation) is list
        yield path, in_list
        if not in_list:
            for sub in _models(info.annotation):
                yield from _paths(sub, path + ".")


def _yaml_keys(data, prefix: str = "") -> Iterator[str]:
    if isinstance(data, dict):
        for key, value in data.items():
            yield prefix + str(key)
            yield from _yaml_keys(value, f"{prefix}{key}.")


def _documented() -> tuple[set[str], str]:
    text = DOC.read_text()
    keys = {k for block in re.findall(r"```yaml\n(.*?)```", text, re.S) for k in _yaml_keys(yaml.safe_load(block))}
    return keys, text


def test_every_host_config_and_policy_field_is_in_the_configuration_reference():
    keys, text = _documented()
    missing = []
    for model in (HostConfig, MeshPolicy):
        for path, in_list in _paths(model):
            # a key of a list item (a gate's `run`) is documented where the list is explained, in backticks
            if path not in keys and f"`{path}`" not in text and not (in_list and path in keys):
                missing.append(f"{model.__name__}: {path}")
    assert not missing, f"not in docs/configuration.md: {missing}"


def test_the_walk_finds_nested_fields():
    """The check above cannot pass vacuously: it sees keys two levels deep."""
    paths = {p for p, _ in _paths(MeshPolicy)}
    assert {"selection.weights.priority", "review.bot_users", "budgets.fleet.tasks"} <= paths
    assert "executor.chain" in {p for p, _ in _paths(HostConfig)}
