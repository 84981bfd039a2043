"""Forge backends behind one interface (forge/base.py), chosen by the host config."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentmesh.errors import ConfigError

if TYPE_CHECKING:
    from agentmesh.forge.base import Forge
    from agentmesh.mesh import Mesh

GITHUB_API = "https://api.github.com"


def open_forge(mesh: Mesh) -> Forge:
    """The forge named by `forge.kind` in the host config. Backends are imported
    only when chosen: the REST clients pull in requests."""
    config = mesh.host.forge
    if config.kind == "local":
        from agentmesh.forge.local import LocalForge

        return LocalForge(mesh.cache, user=mesh.host.agent)
    if config.kind == "gitea":
        from agentmesh.forge.gitea import GiteaForge

        if not config.url:
            raise ConfigError("forge.url: is required for forge kind gitea (e.g. https://gitea.example.com)")

        return GiteaForge(config.url, config.repo, mesh.token, token_env=config.token_env)
    if config.kind == "github":
        from agentmesh.forge.github import GitHubForge

        return GitHubForge(config.url or GITHUB_API, config.repo, mesh.token, token_env=config.token_env,
                           cache_dir=mesh.state.root / "http-cache")
    raise ValueError(f"unknown forge kind {config.kind!r}")
