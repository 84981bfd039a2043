"""What every command is handed: the global options, and what the error report of a run needs."""

from __future__ import annotations

import os
from pathlib import Path

from agentmesh.core.record import Record


class Seen:
    """What the error report of a run needs from its command, filled in as the command runs: the state dir,
    once a config named it (a crash log goes to its logs/), and whether it was given --json (its failure
    is printed as JSON too)."""

    def __init__(self) -> None:
        self.state_root: Path | None = None
        self.as_json = False


class Globals(Record):
    """The global options, handed explicitly to each command."""

    config: Path | None
    remote: str | None
    agent: str | None
    verbose: int
    seen: Seen

    def host_config(self, *, observer: bool = False):
        """`observer`: the command only reads, so no agent name is needed."""
        from agentmesh.host.config_cache import load_host_config

        config = load_host_config(self.config, remote=self.remote, agent=self.agent, observer=observer,
                                  env=os.environ)
        self.seen.state_root = config.resolved_state_dir()
        return config

    def mesh(self, *, observer: bool = False):
        from agentmesh.agent.mesh import Mesh, signing_from_env
        from agentmesh.host.state import clock_from_env

        return Mesh(self.host_config(observer=observer), clock=clock_from_env(os.environ),
                    signing=signing_from_env(os.environ))

    def plumbing(self, *, observer: bool = False):
        """What `claims` commands need: no pydantic once this config was validated (host/basics.py)."""
        from agentmesh.agent.plumbing import Plumbing, load_basics, signing_from_env
        from agentmesh.host.state import clock_from_env

        basics = load_basics(self.config, remote=self.remote, agent=self.agent, observer=observer, env=os.environ)
        self.seen.state_root = basics.state_dir
        return Plumbing(basics, clock=clock_from_env(os.environ), signing=signing_from_env(os.environ))
