"""The roster: who the mesh's agents and maintainers are, on the default branch.

`.agentmesh/roster.yaml` names each agent with its public signing key and its forge login,
and each maintainer with a login (and, for the local forge, a key). It is a protected path:
changing it is a human PR like any other. Trust is always judged with the roster as of the
base branch, never as of a PR head.

    agents:
      - name: ada
        key: ssh-ed25519 AAAAC3Nza...
        login: ada-bot          # her account on Gitea/GitHub [default: the name]
    maintainers:
      - login: grace
        key: ssh-ed25519 AAAA...  # only needed on the local forge
"""

from __future__ import annotations

from functools import cached_property

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from agentmesh.core.errors import ConfigError
from agentmesh.core.identity import MAINTAINER_PREFIX, PublicKey
from agentmesh.host.basics import ROSTER_PATH
from agentmesh.host.config import AgentName

_LOGIN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,38}$"


class _Model(BaseModel):
    # built on first validation: a run that reads the roster from host/config_cache.py builds no validator
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class RosterAgent(_Model):
    name: AgentName
    key: str
    login: str | None = Field(None, pattern=_LOGIN)

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        return PublicKey.parse(value).line

    @property
    def forge_login(self) -> str:
        return self.login or self.name


class Maintainer(_Model):
    login: str = Field(pattern=_LOGIN)
    key: str | None = None

    @field_validator("key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        return None if value is None else PublicKey.parse(value).line


class Roster(_Model):
    agents: list[RosterAgent] = []
    maintainers: list[Maintainer] = []

    @model_validator(mode="after")
    def _unique(self) -> Roster:
        for what, names in (("agent name", [a.name for a in self.agents]),
                            ("agent login", [a.forge_login.lower() for a in self.agents]),
                            ("maintainer login", [m.login.lower() for m in self.maintainers]),
                            ("key", [a.key for a in self.agents] + [m.key for m in self.maintainers if m.key])):
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ValueError(f"{what} listed twice: {', '.join(duplicates)}")
        return self

    @cached_property
    def names(self) -> list[str]:
        return [a.name for a in self.agents]

    def agent(self, name: str) -> RosterAgent | None:
        return next((a for a in self.agents if a.name == name), None)

    def agent_by_login(self, login: str) -> RosterAgent | None:
        return next((a for a in self.agents if a.forge_login.lower() == login.lower()), None)

    def maintainer(self, login: str) -> Maintainer | None:
        return next((m for m in self.maintainers if m.login.lower() == login.lower()), None)

    def is_maintainer(self, login: str) -> bool:
        return self.maintainer(login) is not None

    def signers(self) -> list[tuple[str, PublicKey]]:
        """(principal, key) for the allowed-signers file: agents by name, maintainers prefixed."""
        found = [(a.name, PublicKey.parse(a.key)) for a in self.agents]
        return found + [(MAINTAINER_PREFIX + m.login, PublicKey.parse(m.key)) for m in self.maintainers if m.key]


def parse_roster(text: str, where: str = ROSTER_PATH) -> Roster:
    """The roster in `text`; a ConfigError naming the first problem otherwise."""
    import yaml  # here: a run that reads the roster from host/config_cache.py parses no YAML

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML: {str(exc).splitlines()[0]}") from None
    try:
        return Roster.model_validate(data or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        at = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ConfigError(f"{where}: {at}: {first['msg']}") from None


def roster_entry(name: str, key: PublicKey, login: str | None = None) -> str:
    """The YAML lines that add one agent to the roster's `agents:` list."""
    import yaml

    entry = {"name": name, "key": key.line, **({"login": login} if login else {})}
    return yaml.safe_dump([entry], sort_keys=False)


def starter_roster(entries: str) -> str:
    """A new roster file holding `entries` (agents) and a maintainers section to fill in."""
    return ("# Who the mesh trusts (docs/security.md). A protected path: change it through a human PR.\n"
            "agents:\n" + entries +
            "# People whose approvals count and whose words steer agents: their forge login, and on the\n"
            "# local forge their SSH public key (they sign with it: git config gpg.format ssh).\n"
            "maintainers: []\n")
