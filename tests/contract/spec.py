"""Request validation against the official Gitea and GitHub API descriptions.

Every request a forge client sends through `ContractMock` is checked before
it is answered: a known path, a verb the path has, only declared query
parameters, only declared body fields, and openapi-core's validation of
types, enums and required fields. The descriptions are trimmed to the
operations agentmesh uses (scripts/trim_specs.py, plus the components they
reference), so a call to an operation outside that list also fails: the
list is the inventory of what the backends may call.

The full descriptions in ../shared/specs (or $AGENTMESH_SPECS_DIR) are
trimmed in memory when present; otherwise the trimmed copies committed in
tests/contract/specs/ are used, so a plain clone runs these tests too.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

import responses
from openapi_core import Config, OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest
from openapi_core.validation.request.exceptions import SecurityValidationError
from requests import PreparedRequest

from tests.support import REPO

GITEA_URL = "https://gitea.test"
GITHUB_URL = "https://api.github.com"
TRIMMED_DIR = Path(__file__).resolve().parent / "specs"


@functools.cache
def trimmer() -> ModuleType:
    """scripts/trim_specs.py, the one place that knows which operations we keep and how."""
    found = importlib.util.spec_from_file_location("trim_specs", REPO / "scripts" / "trim_specs.py")
    assert found is not None and found.loader is not None
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    return module


def specs_dir() -> Path:
    return trimmer().default_specs_dir()


def full_description(kind: str) -> Path:
    return specs_dir() / trimmer().SOURCES[kind]


class RequestInvalid(AssertionError):
    """A request the official API description does not allow."""


# --- the validator -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Template:
    path: str
    strict: re.Pattern
    greedy: re.Pattern | None  # the last parameter may span slashes (file paths, refs)
    params: tuple[str, ...]


# Gitea serves these as wildcard routes (`/contents/*`, `/branches/*`, `/pulls/{base}/*`) without
# marking them in its spec; GitHub marks its own with `x-multi-segment`.
GITEA_MULTI_SEGMENT = frozenset({"filepath", "branch", "head"})


def _compile(template: str, multi_segment: bool) -> _Template:
    names = tuple(re.findall(r"\{([^}]+)\}", template))
    pieces = re.split(r"\{[^}]+\}", template)

    def build(last: str) -> re.Pattern:
        out = ""
        for i, piece in enumerate(pieces):
            out += re.escape(piece)
            if i < len(names):
                out += f"(?P<p{i}>{last if i == len(names) - 1 else '[^/]+'})"
        return re.compile(out + r"\Z")

    greedy = build(".+") if multi_segment and names and template.endswith("}") else None
    return _Template(template, build("[^/]+"), greedy, names)


class Validator:
    def __init__(self, spec: dict, base_path: str):
        self.spec = spec
        self.base_path = base_path
        self.app = OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None))
        # fewer parameters first: a literal segment beats a parameter
        self.templates = sorted((_compile(p, self._last_is_multi_segment(p)) for p in spec["paths"]),
                                key=lambda t: (len(t.params), t.path))
        self.validated = 0

    def _last_is_multi_segment(self, template: str) -> bool:
        names = re.findall(r"\{([^}]+)\}", template)
        if not names or not template.endswith("}"):
            return False
        path_item = self.spec["paths"][template]
        for operation in (v for k, v in path_item.items() if isinstance(v, dict) and "responses" in v):
            param = self._params(operation, path_item).get(("path", names[-1]))
            if param and (param.get("x-multi-segment") or names[-1] in GITEA_MULTI_SEGMENT):
                return True
        return False

    def _match(self, path: str) -> tuple[_Template, list[str]] | None:
        for attr in ("strict", "greedy"):
            for template in self.templates:
                pattern = getattr(template, attr)
                found = pattern.match(path) if pattern is not None else None
                if found:
                    return template, [found.group(f"p{i}") for i in range(len(template.params))]
        return None

    def _params(self, operation: dict, path_item: dict) -> dict[tuple[str, str], dict]:
        """Declared parameters by (location, name)."""
        out = {}
        for param in (*path_item.get("parameters", ()), *operation.get("parameters", ())):
            if "$ref" in param:
                param = trimmer().resolve_ref(self.spec, param["$ref"])
            out[(param["in"], param["name"])] = param
        return out

    def _body_schema(self, operation: dict) -> dict | None:
        body = operation.get("requestBody")
        if body is None:
            return None
        if "$ref" in body:
            body = trimmer().resolve_ref(self.spec, body["$ref"])
        schema = body.get("content", {}).get("application/json", {}).get("schema")
        while isinstance(schema, dict) and "$ref" in schema:
            schema = trimmer().resolve_ref(self.spec, schema["$ref"])
        return schema

    def validate(self, request: PreparedRequest) -> None:
        method = (request.method or "").lower()
        parts = urlsplit(request.url or "")
        where = f"{method.upper()} {parts.path}"
        if not parts.path.startswith(self.base_path + "/"):
            raise RequestInvalid(f"{where}: outside the API root {self.base_path or '/'}")
        found = self._match(parts.path[len(self.base_path):])
        if found is None:
            raise RequestInvalid(f"{where}: unknown path")
        template, values = found
        path_item = self.spec["paths"][template.path]
        operation = path_item.get(method)
        if operation is None:
            verbs = sorted(k.upper() for k in path_item if k in ("get", "put", "post", "patch", "delete", "head"))
            raise RequestInvalid(f"{where}: {template.path} has no {method.upper()} (only {', '.join(verbs)})")

        declared = self._params(operation, path_item)
        for name, _ in parse_qsl(parts.query, keep_blank_values=True):
            if ("query", name) not in declared:
                raise RequestInvalid(f"{where}: undeclared query parameter {name!r}")
        schema = self._body_schema(operation)
        if request.body:
            payload = json.loads(request.body)
            if schema is None:
                raise RequestInvalid(f"{where}: sends a body the operation does not take")
            props = schema.get("properties") if isinstance(schema, dict) else None
            if isinstance(payload, dict) and props is not None:
                extra = sorted(set(payload) - set(props))
                if extra:
                    raise RequestInvalid(f"{where}: undeclared body fields {extra}")

        # slashes inside a parameter are data: encode them so openapi-core sees one segment
        path = template.path
        for name, value in zip(template.params, values, strict=True):
            path = path.replace("{" + name + "}", quote(unquote(value), safe=""), 1)
        copy = request.copy()
        copy.url = urlunsplit((parts.scheme, parts.netloc, self.base_path + path, parts.query, ""))
        anonymous = "Authorization" not in request.headers
        errors = [e for e in self.app.iter_request_errors(RequestsOpenAPIRequest(copy))
                  if not (anonymous and isinstance(e, SecurityValidationError))]
        if errors:
            detail = "; ".join(_describe(e) for e in errors)
            raise RequestInvalid(f"{where}?{parts.query} -> {template.path}: {detail}")
        self.validated += 1


def _describe(error: Exception) -> str:
    """openapi-core nests the useful part (the jsonschema messages) in its cause chain."""
    found: list[str] = [str(error).split("\n")[0]]
    cause = error.__cause__
    while cause is not None:
        inner = getattr(cause, "schema_errors", None)
        found.extend(str(e.message) for e in inner or ())
        if not inner:
            found.append(str(cause).split("\n")[0])
        cause = cause.__cause__
    return " / ".join(dict.fromkeys(f for f in found if f and not f.startswith("Value ")))


def description(kind: str) -> dict:
    """The trimmed description of `kind`: made from the full one when present, else the committed copy."""
    full = full_description(kind)
    if full.is_file():
        return trimmer().trim_source(kind, full.read_bytes())
    return json.loads((TRIMMED_DIR / trimmer().trimmed_name(kind)).read_text(encoding="utf-8"))


@functools.cache
def validator(kind: str) -> Validator:
    """The session's validator for `kind`."""
    spec = description(kind)
    if kind == "gitea":
        server, base_path = GITEA_URL + "/api/v1", "/api/v1"
    else:
        server, base_path = GITHUB_URL, ""
    return Validator({**spec, "servers": [{"url": server}]}, base_path)


class ContractMock(responses.RequestsMock):
    """`responses`, but every request is validated against the API description before it is answered."""

    def __init__(self, checker: Validator):
        super().__init__(assert_all_requests_are_fired=False)
        self.checker = checker

    def __enter__(self) -> ContractMock:
        super().__enter__()
        return self

    def _on_request(self, adapter, request, **kwargs):  # type: ignore[override]
        self.checker.validate(request)
        return super()._on_request(adapter, request, **kwargs)


# --- forge + fake fixtures -------------------------------------------------------------------


def push_work_branch(remote: Path, branch: str, *, agent: str, issue: int) -> str:
    """`agent`'s work branch for `issue` (fix.txt added) pushed to `remote` from its seed clone; its head."""
    from tests.support import git

    seed = remote.with_name(remote.name + ".seed")
    git("checkout", "--quiet", "-b", branch, cwd=seed)
    (seed / "fix.txt").write_text("fixed\n")
    git("add", "fix.txt", cwd=seed)
    git("commit", "--quiet", "-m", f"Fix #{issue}\n\nAgentmesh-Agent: {agent}", cwd=seed)
    git("push", "--quiet", str(remote), f"HEAD:refs/heads/{branch}", cwd=seed)
    return git("rev-parse", "HEAD", cwd=seed)


def fake_forge(kind: str, *, me: str, hosting: Path | None = None, url: str | None = None) -> Any:
    """A Gitea or GitHub fake whose own account is `me`; with `hosting`, it hosts that real bare repository
    (tests/support/fakes/git_hosted.py: a PR's head is its branch's head there, a merge a real merge commit);
    `url` replaces the forge's usual base URL (benchmarks/fleet.py serves the fake over HTTP)."""
    from tests.support.fakes.git_hosted import GitHosted
    from tests.support.fakes.gitea_fake import GiteaFake
    from tests.support.fakes.github_fake import GitHubFake

    usual, cls = (GITEA_URL, GiteaFake) if kind == "gitea" else (GITHUB_URL, GitHubFake)
    url = url or usual
    if hosting is None:
        return cls(url, me=me)
    fake = type(f"Hosted{cls.__name__}", (GitHosted, cls), {})(url, me=me)
    fake.repo = hosting
    return fake


def fake_forge_mesh(kind: str, remote: Path, state: Path, *, agent: str, bot: str, token_env: str,
                    hosted: bool = False):
    """A Gitea or GitHub fake whose own account is `bot` (hosting `remote` when `hosted`), and `agent`'s
    Mesh on `remote` using it."""
    from agentmesh.agent.mesh import Mesh
    from agentmesh.host.config import HostConfig

    url = GITEA_URL if kind == "gitea" else GITHUB_URL
    fake = fake_forge(kind, me=bot, hosting=remote if hosted else None)
    host = HostConfig.model_validate({
        "agent": agent, "host": f"host-{agent}", "remote": str(remote), "state_dir": str(state),
        "executor": {"kind": "demo"},
        "forge": {"kind": kind, "url": url, "repo": f"{fake.owner}/{fake.name}", "token_env": token_env},
    })
    return fake, Mesh(host, env={token_env: fake.token})


@dataclass
class ContractScene:
    """What a contract test drives: a real remote and mesh, a forge client on a validating fake."""

    kind: str
    remote: Path
    mesh: Any
    forge: Any
    fake: Any
    mock: ContractMock
    validated_before: int

    def all_validated(self) -> bool:
        """Every request this test sent met the API description (the validator counts per session)."""
        return self.mock.checker.validated - self.validated_before == len(self.mock.calls) > 0


@dataclass
class FakeEnv:
    """What tests/support/conformance.py expects of `forge_env`, backed by a fake forge."""

    forge: Any
    fake: Any
    mock: ContractMock
    base: str = "main"
    reviewer: str = "reviewer-bot"

    def push_branch(self, name: str, files: dict[str, str]) -> str:
        return self.fake.push_branch(name, files)


@contextmanager
def fake_env(kind: str, cache_dir: Path | None = None, *, token: str | None = None) -> Iterator[FakeEnv]:
    """A Gitea or GitHub forge client talking to a stateful fake; every request is validated."""
    from agentmesh.forge.gitea import GiteaForge
    from agentmesh.forge.github import GitHubForge
    from tests.support.fakes.gitea_fake import GiteaFake
    from tests.support.fakes.github_fake import GitHubFake

    checker = validator(kind)
    fake: GiteaFake | GitHubFake
    forge: GiteaForge | GitHubForge
    with ContractMock(checker) as mock:
        if kind == "gitea":
            fake = GiteaFake(GITEA_URL)
            forge = GiteaForge(GITEA_URL, f"{fake.owner}/{fake.name}", token or fake.token)
        else:
            fake = GitHubFake(GITHUB_URL)
            forge = GitHubForge(GITHUB_URL, f"{fake.owner}/{fake.name}", token or fake.token, cache_dir=cache_dir)
        fake.install(mock)
        yield FakeEnv(forge, fake, mock)


TOKEN = "s3cr3t-T0KEN-do-not-leak-4242"
ENV = "MESH_FORGE_TOKEN"


@contextmanager
def bare(kind: str, token: str | None = TOKEN) -> Iterator[tuple[Any, ContractMock, str]]:
    """A forge client over an empty validating mock, for tests that script the answers: (forge, mock, api root)."""
    from agentmesh.forge.gitea import GiteaForge
    from agentmesh.forge.github import GitHubForge

    with ContractMock(validator(kind)) as mock:
        if kind == "gitea":
            yield GiteaForge(GITEA_URL, "mesh/work", token, token_env=ENV), mock, GITEA_URL + "/api/v1"
        else:
            yield GitHubForge(GITHUB_URL, "mesh/work", token, token_env=ENV), mock, GITHUB_URL
