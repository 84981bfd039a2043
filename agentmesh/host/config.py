"""Configuration: the host config (`agentmesh.yaml`) and the mesh policy (`.agentmesh/mesh.yaml`).

Host config is searched at --config, $AGENTMESH_CONFIG, ./agentmesh.yaml,
~/.config/agentmesh/agentmesh.yaml; then AGENTMESH_<KEY> variables override
it (nested keys with a double underscore: AGENTMESH_FORGE__TOKEN_ENV), then
the global --remote/--agent options. The mesh policy lives on the remote's
default branch and changes through a PR like any code.

Every error is one line: `<file>: <dotted.path>: <what is wrong>`.
"""

from __future__ import annotations

import difflib
import os
import re
import socket
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import ErrorDetails

from agentmesh.core.errors import ConfigError
from agentmesh.core.memory import Caps
from agentmesh.core.notify import DEFAULT_FAILURES
from agentmesh.core.pattern import LazyPattern
from agentmesh.core.select import DEFAULT_WEIGHTS, Weights
from agentmesh.core.slug import AGENT_NAME
from agentmesh.core.vocab import BudgetWindow, BuiltinGate, LlmReview, NotifyEvent
from agentmesh.host.basics import (  # noqa: F401 -- re-exported: their home before host/basics.py
    CONFIG_ENV,
    HALT_REF,
    HOST_CONFIG_NAME,
    MESH_POLICY_PATH,
    PAUSE_REF,
    ClaimRules,
    HostBasics,
    LeaseRules,
    PrefixRules,
    default_state_dir,
    find_host_config,
)

OBSERVER = "observer"  # the agent name of a read command run without one: it only reads
_REF_PREFIX = LazyPattern(r"refs/([A-Za-z0-9_-]+/)+")
_BRANCH = LazyPattern(r"[A-Za-z0-9_][A-Za-z0-9_-]*(/[A-Za-z0-9_][A-Za-z0-9_-]*)*")
DEFAULT_MEMORY_BRANCH = "agentmesh/memory"
_HOST = LazyPattern(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_ENV_NAME = LazyPattern(r"[A-Za-z_][A-Za-z0-9_]*")


def _check_env_name(value: str) -> str:
    if not _ENV_NAME.fullmatch(value):
        raise ValueError("must be the name of an environment variable, not a token")
    return value


def _check_agent_name(value: str) -> str:
    if not AGENT_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid agent name (1-40 characters of [a-z0-9-], not starting with -)")
    return value


AgentName = Annotated[str, AfterValidator(_check_agent_name)]


class _Model(BaseModel):
    # defer_build: a run that reads its validated config from host/config_cache.py builds no validator
    # (hence the defaults below are factories: a default instance would validate at import)
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


# --- host config ------------------------------------------------------------------


class ForgeConfig(_Model):
    kind: Literal["local", "gitea", "github"] = "local"
    url: str | None = Field(None, description="API base URL (gitea, github)")
    repo: str | None = Field(None, description="OWNER/NAME on gitea and github")
    token_env: str = Field("AGENTMESH_TOKEN", description="name of the environment variable holding the token")

    @field_validator("token_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        return _check_env_name(value)

    @field_validator("repo")
    @classmethod
    def _repo(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", value):
            raise ValueError("must look like OWNER/NAME")
        return value

    @model_validator(mode="after")
    def _remote_forges_need_repo(self) -> ForgeConfig:
        if self.kind != "local" and not self.repo:
            raise ValueError(f"repo: is required for forge kind {self.kind}")
        return self


class ExecutorConfig(_Model):
    kind: Literal["command", "claude-code", "codex", "aider", "script", "demo", "fallback"] = "demo"
    command: list[str] | None = None
    chain: list[str] | None = None
    timeout_seconds: int = Field(3600, ge=10)
    sandbox: Literal["off", "auto", "required"] = "auto"
    allow_network: bool = False
    env_passthrough: list[Annotated[str, AfterValidator(_check_env_name)]] = Field(
        [], description="variables the executor may inherit, e.g. its own API key; never forge tokens")

    @field_validator("sandbox", mode="before")
    @classmethod
    def _yaml_boolean(cls, value: Any) -> Any:
        # YAML 1.1 reads unquoted off/no/false as False: that can only mean "off"; true is ambiguous
        if value is False:
            return "off"
        if value is True:
            raise ValueError("a YAML boolean (on/yes/true) is ambiguous here: write 'auto' or 'required', in quotes")
        return value


class HostReviewConfig(_Model):
    executor: ExecutorConfig | None = Field(
        None, description="the executor of this host's LLM reviews (review.llm: on); default: `executor`")


class ScheduleConfig(_Model):
    claim_minutes: int = Field(5, ge=1)
    monitor_minutes: int = Field(10, ge=1)
    jitter_seconds: int = Field(60, ge=0)


class MetricsConfig(_Model):
    textfile: Path | None = Field(None, description="a node_exporter textfile (*.prom) rewritten after each run")

    @field_validator("textfile")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        # cron and systemd start us in unpredictable directories
        if value is not None and not value.expanduser().is_absolute():
            raise ValueError("must be an absolute path")
        return value.expanduser() if value is not None else None


SECRET_PATH = 16  # characters from which a webhook URL's path and query count as a secret of their own


def _check_webhook_url(value: str) -> str:
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in value):
        raise ValueError("must be an http:// or https:// URL")  # never echo it: it may hold a secret
    return value


class NotifyConfig(_Model):
    """Who hears about what needs a person (agent/notify.py). Off unless a command or a webhook is set."""

    command: list[str] | None = Field(None, description="argv run with the event as JSON on stdin, never by a shell")
    webhook_url: str | None = Field(None, description="POSTed the event as JSON with a `text` field; it may hold a "
                                    "secret, so it is never logged, journaled or shown")
    webhook_url_env: str | None = Field(None, description="or the name of the variable holding that URL")
    events: list[NotifyEvent] = Field(list(NotifyEvent), description="the events to send")
    failures: int = Field(DEFAULT_FAILURES, ge=1, le=100,
                          description="repeated-failure from an issue's Nth failed attempt on")
    timeout_seconds: float = Field(10.0, gt=0, le=300, description="per command run and per webhook request")

    @field_validator("command")
    @classmethod
    def _argv(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and (not value or not value[0].strip()):
            raise ValueError("must be a non-empty argv list, e.g. [/usr/local/bin/page-me]")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _check_webhook_url(value)

    @field_validator("webhook_url_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        return None if value is None else _check_env_name(value)

    def webhook(self, env: Mapping[str, str]) -> str | None:
        """The webhook URL, or None; a variable holding no valid URL counts as none."""
        url = self.webhook_url or (env.get(self.webhook_url_env) if self.webhook_url_env else None)
        try:
            return _check_webhook_url(url) if url else None
        except ValueError:
            return None

    def secrets(self, env: Mapping[str, str]) -> list[str]:
        """What of the webhook URL must never be shown: all of it, its credentials, and all but its scheme
        and host (Slack's, Mattermost's and ntfy's secret is in the path, which urllib3's debug lines
        show; a query may hold a token) when that is long enough to be one: a short common path such as
        /webhook would make every diff quoting it look like a leak."""
        url = self.webhook(env)
        if url is None:
            return []
        parts = urllib.parse.urlsplit(url)
        rest = urllib.parse.urlunsplit(("", "", parts.path, parts.query, parts.fragment))
        return [url, *([parts.netloc] if "@" in parts.netloc else []), *([rest] if len(rest) >= SECRET_PATH else [])]


class HostConfig(_Model):
    agent: AgentName
    host: str = Field(default_factory=lambda: _default_host())
    remote: str
    forge: ForgeConfig = Field(default_factory=ForgeConfig)
    state_dir: Path | None = None
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    review: HostReviewConfig = Field(default_factory=HostReviewConfig)
    capabilities: list[str] = []
    seats: int = Field(1, ge=1, le=64)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    git_timeout_seconds: float = Field(60.0, gt=0, le=3600)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    signing_key: Path | None = None  # the agent's SSH signing key [default: <state_dir>/identity/id_ed25519]
    _source: Path | None = PrivateAttr(None)  # the file it was read from: never shown to an executor

    @property
    def source(self) -> Path | None:
        return self._source

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not _HOST.fullmatch(value):
            raise ValueError("must be 1-63 characters of [A-Za-z0-9._-]")
        return value

    @field_validator("remote")
    @classmethod
    def _remote(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        if re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^/@]*:[^/@]*@", value):
            raise ValueError("must not contain credentials; put the token in the variable named by forge.token_env")
        if value.startswith("-") or "\n" in value:
            raise ValueError("is not a git remote URL")
        return value

    def resolved_state_dir(self) -> Path:
        if self.state_dir is not None:
            return self.state_dir.expanduser()
        return default_state_dir(self.agent, os.environ)

    def resolved_signing_key(self) -> Path:
        if self.signing_key is not None:
            return self.signing_key.expanduser()
        return self.resolved_state_dir() / "identity" / "id_ed25519"

    def basics(self) -> HostBasics:
        """What the claim path needs of this validated config (host/basics.py keeps it for later runs)."""
        return HostBasics(agent=self.agent, host=self.host, remote=self.remote, state_dir=self.resolved_state_dir(),
                          signing_key=self.resolved_signing_key(), token_env=self.forge.token_env,
                          git_timeout_seconds=self.git_timeout_seconds, source=self._source)


def _default_host() -> str:
    name = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname().split(".")[0]).strip("-.")
    return name[:63] or "host"


# --- mesh policy ------------------------------------------------------------------


class LabelsPolicy(_Model):
    eligible: list[str] = ["task", "bug", "feature", "refactor", "security", "good-first-task-for-agent"]


class LeasePolicy(_Model):
    seconds: int = Field(1800, ge=60, description="how long a claim lives without renewal")
    renew_seconds: int = Field(300, ge=10, description="how often a working agent renews")
    grace_seconds: int = Field(300, ge=0, description="extra time before an observer reaps")
    max_seconds: int = Field(86400, ge=60, description="the longest lease a claim may ask for")

    @model_validator(mode="after")
    def _ratios(self) -> LeasePolicy:
        if self.seconds < 3 * self.renew_seconds:
            raise ValueError(f"seconds: must be ≥ 3 × renew_seconds ({3 * self.renew_seconds})")
        if self.max_seconds < self.seconds:
            raise ValueError(f"max_seconds: must be ≥ seconds ({self.seconds})")
        return self


def _check_check_name(value: str) -> str:
    if not value.strip() or len(value) > 255 or not value.isprintable():
        raise ValueError(f"{value[:80]!r} is not a CI context name (1-255 printable characters)")
    return value


CheckName = Annotated[str, AfterValidator(_check_check_name)]


def _check_ref_prefix(value: str) -> str:
    if not _REF_PREFIX.fullmatch(value):
        raise ValueError("must look like refs/<name>/ (letters, digits, - and _, ending in /)")
    return value


RefPrefix = Annotated[str, AfterValidator(_check_ref_prefix)]


def _check_branch(value: str) -> str:
    if not _BRANCH.fullmatch(value) or value.startswith("refs/"):
        raise ValueError("must be a branch name such as agentmesh/memory (letters, digits, - and _, parts joined by /)")
    switch = {HALT_REF: "the kill switch's", PAUSE_REF: "the budget pause's"}.get(f"refs/heads/{value}")
    if switch:
        raise ValueError(f"{value} is {switch} branch; choose another")
    return value


BranchName = Annotated[str, AfterValidator(_check_branch)]


class ClaimsPolicy(_Model):
    ref_prefix: RefPrefix = "refs/heads/claim/"


class PresencePolicy(_Model):
    ref_prefix: RefPrefix = "refs/heads/agentmesh/agents/"


class ReviewPolicy(_Model):
    ring: list[AgentName] = []
    bot_users: list[str] = Field([], description="no roster: the forge accounts the agents use, if not their names")
    required_approvals: int = Field(1, ge=0, le=10)
    required_checks: list[CheckName] = Field(
        [], description="forge CI contexts that must be success on a PR's head before an agent merges it")
    llm: LlmReview = Field(LlmReview.OFF, description="the ring reviewer also asks its executor for a verdict")

    @field_validator("llm", mode="before")
    @classmethod
    def _yaml_boolean(cls, value: Any) -> Any:
        # YAML 1.1 reads unquoted on/off as booleans: here they can only mean on and off
        if isinstance(value, bool):
            return LlmReview.ON if value else LlmReview.OFF
        return value

    @field_validator("required_checks")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class Gate(_Model):
    """A review gate: a command (`name` and `run`), or a check built into agentmesh (`builtin`)."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")
    run: list[str] = []
    builtin: BuiltinGate | None = None
    timeout_seconds: int = Field(600, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _builtin_is_named(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("builtin"), str) and "name" not in data:
            return {**data, "name": data["builtin"]}  # `- builtin: syntax` is the gate named syntax
        return data

    @model_validator(mode="after")
    def _one_kind(self) -> Gate:
        if self.builtin is not None and self.run:
            raise ValueError("run: a builtin gate runs no command; remove run, or builtin for a command gate")
        if self.builtin is None and not self.run:
            raise ValueError(f"run: is required (a command), or name a built-in gate: "
                             f"builtin: {' | '.join(BuiltinGate)}")
        return self

    @model_serializer(mode="wrap")
    def _as_written(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """The keys one would write: `{builtin: syntax}` for the built-in gate, not its empty `run`."""
        data = handler(self)
        if self.builtin is None:
            data.pop("builtin", None)
            return data
        return {"builtin": data["builtin"], **({"name": self.name} if self.name != self.builtin else {}),
                **({"timeout_seconds": self.timeout_seconds} if self.timeout_seconds != 600 else {})}


# built without validation (its values are valid): validating at import would build the validators that
# `defer_build` leaves to the first run that needs them
SYNTAX_GATE = Gate.model_construct(name=BuiltinGate.SYNTAX.value, builtin=BuiltinGate.SYNTAX)


_CAPS = ("tasks", "executor_minutes", "cost_usd")


class Budget(_Model):
    """Caps per budget window; `<cap>_per_day`, the names of earlier versions, are read as `<cap>`."""

    tasks: int | None = Field(None, ge=0)
    executor_minutes: float | None = Field(None, ge=0)
    cost_usd: float | None = Field(None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _daily_names(cls, data: object) -> object:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for name in _CAPS:
            if f"{name}_per_day" in data:
                if name in data:
                    raise ValueError(f"{name} and {name}_per_day name the same cap: keep {name}")
                data[name] = data.pop(f"{name}_per_day")
        return data

    def caps(self) -> Caps:
        return Caps(self.tasks, self.executor_minutes, self.cost_usd)


class BudgetsPolicy(_Model):
    window: BudgetWindow = Field(BudgetWindow.DAY, description="day, week (from Monday) or month, UTC")
    agent: Budget = Field(default_factory=Budget)
    fleet: Budget = Field(default_factory=Budget)

    @model_validator(mode="before")
    @classmethod
    def _daily_names_mean_days(cls, data: object) -> object:
        if not isinstance(data, dict) or str(data.get("window", BudgetWindow.DAY)) == BudgetWindow.DAY:
            return data
        for scope in ("agent", "fleet"):
            caps = data.get(scope)
            daily = [f"{name}_per_day" for name in _CAPS if isinstance(caps, dict) and f"{name}_per_day" in caps]
            if daily:
                raise ValueError(f"{scope}.{daily[0]} is a daily cap but window is {data['window']}: "
                                 f"name it {scope}.{daily[0].removesuffix('_per_day')} (a cap per {data['window']})")
        return data


class WeightsPolicy(_Model):
    """Multipliers of the ranking terms (core/select.py explains the scale)."""

    priority: float = DEFAULT_WEIGHTS.priority
    age: float = DEFAULT_WEIGHTS.age
    attempts: float = DEFAULT_WEIGHTS.attempts
    capability: float = DEFAULT_WEIGHTS.capability

    def weights(self) -> Weights:
        return Weights(self.priority, self.age, self.attempts, self.capability)


class SelectionPolicy(_Model):
    weights: WeightsPolicy = Field(default_factory=WeightsPolicy)


class MergePolicy(_Model):
    auto: bool = False
    method: Literal["merge", "squash"] = "merge"


class MemoryPolicy(_Model):
    branch: BranchName = Field(DEFAULT_MEMORY_BRANCH, description="where earlier versions committed every agent's "
                               "journal: read, never written (each agent now writes agentmesh/journals/<agent>)")
    max_entry_bytes: int = Field(10 * 1024, ge=512, le=1024 * 1024)
    max_journal_bytes: int = Field(1024 * 1024, ge=4096, description="a month's journal continues in a new part")
    context_bytes: int = Field(8 * 1024, ge=0, le=64 * 1024, description="memory given to the executor")
    lessons: bool = Field(True, description="draft a lesson PR when a PR passed after changes or rework")
    lesson_days: int = Field(180, ge=1, description="drafted lessons expire after this many days")


class ReworkPolicy(_Model):
    max: int = Field(1, ge=0, le=10, description="executor re-runs per PR after changes are requested or CI fails")


class PreemptionPolicy(_Model):
    labels: list[str] = Field(["priority:critical"], description="an eligible issue with one of these labels stops "
                              "the lowest-scored job of an agent whose seats are all busy; [] turns preemption off")


class MigrationPolicy(_Model):
    lock_branches: bool = Field(False, description="while the old cron scripts still run: each claim also holds "
                                "the lock branch they check, `<agent>/<issue>--agentmesh-claim` (docs/migration.md)")


class MeshPolicy(_Model):
    version: Literal[1] = 1
    default_branch: str | None = Field(None, description="defaults to the remote's HEAD")
    labels: LabelsPolicy = Field(default_factory=LabelsPolicy)
    lease: LeasePolicy = Field(default_factory=LeasePolicy)
    claims: ClaimsPolicy = Field(default_factory=ClaimsPolicy)
    presence: PresencePolicy = Field(default_factory=PresencePolicy)
    review: ReviewPolicy = Field(default_factory=ReviewPolicy)
    # a new mesh's reviewers check at least that the change parses
    gates: list[Gate] = Field(default_factory=lambda: [SYNTAX_GATE])
    protected_paths: list[str] = [  # gate files, the policy and the roster are protected on top (core/review.py)
        ".agentmesh/**",
        ".forgejo/**",
        ".github/**",
        ".gitea/**",
        ".gitattributes",
        ".gitmodules",
        "ai-memory/agents/**",
        "ai-memory/lessons/**",
        "CODEOWNERS",
    ]
    budgets: BudgetsPolicy = Field(default_factory=BudgetsPolicy)
    selection: SelectionPolicy = Field(default_factory=SelectionPolicy)
    preemption: PreemptionPolicy = Field(default_factory=PreemptionPolicy)
    migration: MigrationPolicy = Field(default_factory=MigrationPolicy)
    max_attempts: int = Field(3, ge=1, le=100)
    max_diff_lines: int = Field(2000, ge=1)
    executor_script: list[str] = Field([], description="argv for hosts whose executor kind is `script`")
    merge: MergePolicy = Field(default_factory=MergePolicy)
    rework: ReworkPolicy = Field(default_factory=ReworkPolicy)
    memory: MemoryPolicy = Field(default_factory=MemoryPolicy)

    def claim_rules(self) -> ClaimRules:
        """What the claim protocol reads of this policy (host/basics.py keeps it per default-branch sha)."""
        lease = self.lease
        return ClaimRules(PrefixRules(self.claims.ref_prefix),
                          LeaseRules(lease.seconds, lease.grace_seconds, lease.max_seconds), self.default_branch,
                          PrefixRules(self.presence.ref_prefix))

    @model_validator(mode="after")
    def _auto_merge_checks_something(self) -> MeshPolicy:
        if self.merge.auto and not self.gates and not self.review.required_checks:
            raise ValueError("merge.auto: true with no gates and no review.required_checks would merge whatever "
                             "a sibling approves unchecked: add `gates: [{builtin: syntax}]`, name "
                             "review.required_checks, or set merge.auto: false")
        return self


# --- loading ------------------------------------------------------------------


def _describe(error: ErrorDetails, model: type[BaseModel]) -> str:
    path = ".".join(str(p) for p in error["loc"])
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "greater_than_equal":
        msg = f"must be ≥ {ctx['ge']}"
    elif kind == "greater_than":
        msg = f"must be > {ctx['gt']}"
    elif kind == "less_than_equal":
        msg = f"must be ≤ {ctx['le']}"
    elif kind == "missing":
        msg = "is required"
    elif kind == "extra_forbidden":
        msg = "unknown key" + _suggest(error["loc"], model)
    elif kind == "string_pattern_mismatch":
        msg = f"{error['input']!r} is not valid (must match {ctx['pattern']})"
    elif kind == "literal_error":
        msg = f"must be one of {ctx['expected']}"
    elif kind == "value_error":
        msg = str(ctx.get("error", error["msg"]))
        msg = msg.removeprefix("Value error, ")
        if ": " in msg and msg.split(": ", 1)[0].replace("_", "").isalnum():
            sub, msg = msg.split(": ", 1)  # a model validator naming its field
            path = f"{path}.{sub}" if path else sub
    else:
        msg = error["msg"][0].lower() + error["msg"][1:]
    return f"{path}: {msg}" if path else msg


def _suggest(loc: tuple, model: type[BaseModel]) -> str:
    current: Any = model
    for part in loc[:-1]:
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return ""
        current = field.annotation
    names = list(getattr(current, "model_fields", {}))
    close = difflib.get_close_matches(str(loc[-1]), names, n=1)
    return f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(names)})"


def validate(model: type[_Model], data: Any, source: str):
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: must be a mapping of keys to values, not {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        first = _describe(errors[0], model)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ConfigError(f"{source}: {first}{more}") from None


def parse_yaml(text: str, source: str) -> Any:
    import yaml  # here: a run whose config and policy come from host/config_cache.py parses no YAML

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{source}:{where}: {problem}") from None


def override_names() -> list[str]:
    """Every AGENTMESH_<KEY> variable env_overrides consults."""
    names = []
    for name, field in HostConfig.model_fields.items():
        sub_fields = getattr(field.annotation, "model_fields", None)
        names += [f"AGENTMESH_{name.upper()}__{sub.upper()}" for sub in sub_fields] if sub_fields else \
            [f"AGENTMESH_{name.upper()}"]
    return names


def env_overrides(env: dict[str, str]) -> dict[str, Any]:
    """AGENTMESH_<FIELD> and AGENTMESH_<SECTION>__<FIELD> for known host-config keys."""
    overrides: dict[str, Any] = {}
    for name, field in HostConfig.model_fields.items():
        sub_fields = getattr(field.annotation, "model_fields", None)
        if sub_fields:
            for sub in sub_fields:
                key = f"AGENTMESH_{name.upper()}__{sub.upper()}"
                if key in env:
                    overrides.setdefault(name, {})[sub] = env[key]
        else:
            key = f"AGENTMESH_{name.upper()}"
            if key in env:
                value: Any = env[key]
                if name == "capabilities":
                    value = [c for c in value.replace(",", " ").split() if c]
                overrides[name] = value
    return overrides


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_host_config(
    explicit: Path | None = None,
    *,
    remote: str | None = None,
    agent: str | None = None,
    env: dict[str, str] | None = None,
    observer: bool = False,
) -> HostConfig:
    """The host config; `observer`: a read command, which needs no agent name (it is then OBSERVER)."""
    env = dict(os.environ) if env is None else env
    path = find_host_config(explicit, env)
    data: dict = {}
    source = "command line"
    if path is not None:
        source = str(path)
        try:
            loaded = parse_yaml(path.read_text(), source)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{source}: must be a mapping of keys to values")
        data = loaded or {}
    data = _merge(data, env_overrides(env))
    if remote:
        data["remote"] = remote
    if agent:
        data["agent"] = agent
    if observer and "agent" not in data:
        data["agent"] = OBSERVER
    if path is None and "remote" not in data:
        raise ConfigError(
            f"no host config found and no remote given: pass --remote URL (and --agent NAME to write), "
            f"or create {HOST_CONFIG_NAME} (see `agentmesh --help`)"
        )
    if "agent" not in data:
        raise ConfigError(
            "no agent name: this command writes to the mesh as an agent: pass --agent NAME "
            f"(or set agent: in {HOST_CONFIG_NAME}); commands that only read need no agent"
        )
    config = validate(HostConfig, data, source)
    if path is not None and config.state_dir is not None and not config.state_dir.is_absolute():
        # relative state_dir is relative to the config file, not to wherever cron runs us
        config = config.model_copy(update={"state_dir": (path.parent / config.state_dir).resolve()})
    config._source = path.resolve() if path is not None else None
    return config


def parse_mesh_policy(text: str | None, source: str = MESH_POLICY_PATH) -> MeshPolicy:
    if text is None:
        return MeshPolicy()
    return validate(MeshPolicy, parse_yaml(text, source), source)
