"""Forge backends behind one interface (forge/base.py), chosen by the host config."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from agentmesh.core.errors import ConfigError
from agentmesh.host.state import StateLayout

if TYPE_CHECKING:
    from agentmesh.forge.base import Forge
    from agentmesh.git.cache import CacheClone
    from agentmesh.host.config import ForgeConfig

GITHUB_API = "https://api.github.com"


def open_forge(config: ForgeConfig, *, agent: str, cache: CacheClone, token: str | None, state_root: Path) -> Forge:
    """The forge named by `config.kind`. Backends are imported only when chosen: the REST clients pull
    in requests."""
    if config.kind == "local":
        from agentmesh.forge.local import LocalForge

        return LocalForge(cache, user=agent)
    if not config.repo:
        raise ConfigError(f"forge.repo: is required for forge kind {config.kind} (owner/name, e.g. team/app)")
    if config.kind == "gitea":
        from agentmesh.forge.gitea import GiteaForge

        if not config.url:
            raise ConfigError("forge.url: is required for forge kind gitea (e.g. https://gitea.example.com)")

        return GiteaForge(config.url, config.repo, token, token_env=config.token_env,
                          cache_dir=StateLayout(state_root).http_cache)
    if config.kind == "github":
        from agentmesh.forge.github import GitHubForge

        return GitHubForge(config.url or GITHUB_API, config.repo, token, token_env=config.token_env,
                           cache_dir=StateLayout(state_root).http_cache)
    raise ValueError(f"unknown forge kind {config.kind!r}")
