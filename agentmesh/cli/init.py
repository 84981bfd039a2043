"""`agentmesh init`: write a host config (and optionally a starter mesh policy) for a new host."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import click

from agentmesh.agent.executor import PRESETS
from agentmesh.core.errors import EXIT_OK, UserError

EXECUTORS = (*PRESETS, "script", "command")
GITHUB_API = "https://api.github.com"

# What a hosted executor needs to reach its API from inside the sandbox.
_EXECUTOR_ACCESS: dict[str, tuple[bool, list[str]]] = {
    "claude-code": (True, ["ANTHROPIC_API_KEY"]),
    "codex": (True, ["OPENAI_API_KEY"]),
    "aider": (True, ["ANTHROPIC_API_KEY", "OPENAI_API_KEY"]),
}

def _scalar(value: str) -> str:
    """User input as a YAML scalar: plain when YAML reads it back as the same string (not `yes`,
    `null` or `1e3`), else a JSON string, which is valid YAML and quotes everything risky."""
    import yaml

    if re.fullmatch(r"[A-Za-z0-9_/-][A-Za-z0-9_./@-]*", value) and yaml.safe_load(value) == value:
        return value
    return json.dumps(value)


def default_agent() -> str | None:
    name = re.sub(r"[^a-z0-9-]+", "-", socket.gethostname().split(".")[0].lower()).strip("-")[:40]
    return name or None


def render_host_config(*, agent: str, remote: str, forge: str, url: str | None, repo: str | None,
                       token_env: str, executor: str) -> str:
    """The host config as a commented file; every value the user gave goes through `_scalar`."""
    network, passthrough = _EXECUTOR_ACCESS.get(executor, (False, []))
    lines: list[tuple[str, str]] = [
        ("# agentmesh host config: who this agent is (docs/configuration.md).", ""),
        ("# Written by `agentmesh init`; check this host with `agentmesh doctor`.", ""),
        (f"agent: {_scalar(agent)}", "unique in the mesh: [a-z0-9][a-z0-9-]{0,39}"),
        (f"remote: {_scalar(remote)}", "the mesh's git remote (never with credentials)"),
        ("forge:", ""),
        (f"  kind: {forge}", "local | gitea | github"),
    ]
    if url:
        lines.append((f"  url: {_scalar(url)}", "the Gitea base URL" if forge == "gitea" else "the API base URL"))
    if repo:
        lines.append((f"  repo: {_scalar(repo)}", "OWNER/NAME"))
    lines += [
        (f"  token_env: {_scalar(token_env)}", "the NAME of the variable holding the token, never the token"),
        (f"# state_dir: ~/.local/state/agentmesh/{agent}", "default: $XDG_STATE_HOME/agentmesh/<agent>"),
        ("executor:", ""),
        (f"  kind: {executor}", "docs/executors.md"),
    ]
    if executor == "command":
        lines.append(('  command: [my-agent, --task, "{task_file}"]',
                      "EDIT: your argv; {task_file} {worktree} {issue}"))
    lines += [
        ("  timeout_seconds: 3600", ""),
        ("  sandbox: auto", "off | auto | required (bubblewrap; see `agentmesh doctor`)"),
        (f"  allow_network: {'true' if network else 'false'}",
         "the executor calls its API" if network else "network inside the sandbox"),
        (f"  env_passthrough: [{', '.join(passthrough)}]", "variables the executor may see; forge tokens never"),
        ("capabilities: []", "matched against needs:<capability> labels, e.g. [python]"),
        ("seats: 1", "concurrent claims of this agent"),
        ("schedule: {claim_minutes: 5, monitor_minutes: 10, jitter_seconds: 60}", ""),
    ]
    return "".join(f"{text.ljust(28)} # {note}\n" if note else f"{text}\n" for text, note in lines)


def _check_inputs(agent: str, remote: str | None, forge: str, url: str | None, repo: str | None) -> None:
    from agentmesh.core.slug import AGENT_NAME

    if not AGENT_NAME.fullmatch(agent):
        raise UserError(f"--agent {agent!r}: not a valid agent name "
                        "(1-40 characters of [a-z0-9-], not starting with -)")
    if forge == "local":
        if url or repo:
            raise UserError(f"--{'url' if url else 'repo'} is only for --forge gitea or github")
        if not remote:
            raise UserError("--remote URL is required with --forge local (create one with `agentmesh forge init PATH`)")
        return
    if not repo:
        raise UserError(f"--forge {forge} needs --repo OWNER/NAME")
    if forge == "gitea" and not url:
        raise UserError("--forge gitea needs --url (the Gitea base URL, e.g. https://gitea.example.com)")
    if url and not re.match(r"https?://[^/\s]+", url):
        raise UserError(f"--url {url!r}: must be an http(s) URL")
    if not remote and forge == "github" and url not in (None, GITHUB_API):
        raise UserError("--remote URL is required with GitHub Enterprise (--url)")


def _default_remote(forge: str, url: str | None, repo: str) -> str:
    if forge == "github":
        return f"https://github.com/{repo}.git"
    return f"{(url or '').rstrip('/')}/{repo}.git"


def init(*, path: Path, forge: str, url: str | None, repo: str | None, remote: str | None, agent: str | None,
         token_env: str, executor: str, mesh: bool, force: bool) -> int:
    from agentmesh.git.signing import ensure_key
    from agentmesh.host.config import MESH_POLICY_PATH, HostConfig, MeshPolicy, parse_yaml, validate
    from agentmesh.host.files import write_atomic
    from agentmesh.host.roster import ROSTER_PATH, roster_entry, starter_roster
    from agentmesh.host.starter import starter_mesh_yaml

    agent = agent or default_agent()
    if not agent:
        raise UserError("--agent NAME is required (this host's hostname is not a valid agent name)")
    _check_inputs(agent, remote, forge, url, repo)
    remote = remote or _default_remote(forge, url, repo or "")
    text = render_host_config(agent=agent, remote=remote, forge=forge, url=url, repo=repo, token_env=token_env,
                              executor=executor)
    host = validate(HostConfig, parse_yaml(text, str(path)), str(path))  # the loader's own rules, before writing
    writes = {path: (text, 0o600)}
    key_path = host.resolved_signing_key()
    key = ensure_key(key_path, agent)
    entry = roster_entry(agent, key, login=None)
    if forge != "local":
        entry += f"  # login: <the {forge} account its token belongs to; default: the agent name>\n"
    if mesh:
        policy = starter_mesh_yaml()  # the same file `agentmesh forge init` commits
        validate(MeshPolicy, parse_yaml(policy, MESH_POLICY_PATH), MESH_POLICY_PATH)
        writes[Path(MESH_POLICY_PATH)] = (policy, 0o644)
        writes[Path(ROSTER_PATH)] = (starter_roster(entry), 0o644)
    for target in writes:  # all or nothing: refuse before writing anything
        if target.exists() and not force:
            raise UserError(f"{target}: already exists; pass --force to overwrite it")
    for target, (content, mode) in writes.items():
        write_atomic(target, content, mode)
        click.echo(f"wrote {target}")
    click.echo(f"agent {agent}, remote {remote}, forge {forge}, executor {executor}")
    click.echo(f"signing key {key_path} ({key.fingerprint}); its roster entry, under `agents:` in {ROSTER_PATH}:")
    click.echo("".join(f"  {line}\n" for line in entry.splitlines()), nl=False)
    if forge != "local":
        click.echo(f"next: export {token_env}=<a token with write access to {repo}> for the user cron runs as")
    if executor == "command":
        click.echo(f"next: edit executor.command in {path}")
    if mesh:
        click.echo(f"next: add your maintainers to {ROSTER_PATH}, then commit it and .agentmesh/mesh.yaml to "
                   "the mesh's default branch through a PR")
    else:
        click.echo(f"next: add the entry above to {ROSTER_PATH} on the mesh's default branch through a PR")
    click.echo(f"then: agentmesh --config {path} doctor")
    return EXIT_OK


@click.command("init")
@click.option("--forge", "forge", type=click.Choice(["local", "gitea", "github"]), default="local", show_default=True,
              help="Where issues and PRs live.")
@click.option("--url", metavar="URL", help="Gitea base URL (required for gitea), or a GitHub Enterprise API URL.")
@click.option("--repo", metavar="OWNER/NAME", help="The repository on gitea or github.")
@click.option("--remote", "remote", metavar="URL",
              help="The mesh's git remote (default for gitea/github: the repository's https URL).")
@click.option("--agent", "agent", metavar="NAME", help="This agent's name (default: the hostname, if valid).")
@click.option("--token-env", default="AGENTMESH_TOKEN", show_default=True, metavar="NAME",
              help="The environment variable that will hold the forge token.")
@click.option("--executor", type=click.Choice(EXECUTORS), default="demo", show_default=True,
              help="Executor preset (docs/executors.md).")
@click.option("--path", "path", type=click.Path(path_type=Path, dir_okay=False),
              help="Where to write the host config (default: --config, else ./agentmesh.yaml).")
@click.option("--mesh", is_flag=True, help="Also write a starter .agentmesh/mesh.yaml in the current directory.")
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@click.pass_obj
def command(g, forge, url, repo, remote, agent, token_env, executor, path, mesh, force):
    """Write a commented host config for this host, valid as written.

    \b
      agentmesh init --remote /srv/mesh.git --agent host1-a
      agentmesh init --forge gitea --url https://gitea.example.com --repo team/app --executor claude-code
    """
    return init(path=path or g.config or Path("agentmesh.yaml"), forge=forge, url=url, repo=repo,
                remote=remote or g.remote, agent=agent or g.agent, token_env=token_env, executor=executor,
                mesh=mesh, force=force)
