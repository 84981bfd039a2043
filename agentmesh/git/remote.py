"""Talking to a git remote: prefix-restricted listing, CAS pushes, failure classes.

Listing uses a protocol v2 `ls-refs` request with `ref-prefix`, so its cost
does not grow with the number of refs on the remote (docs/design/protocol.md,
"Listing: protocol v2 `ls-refs` with `ref-prefix`": `git ls-remote` never asks
the server to filter). Pushes always pin the value they
expect with `--force-with-lease=<ref>:<expected>` and report per-ref results
from `--porcelain` output, never from stderr prose.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

from agentmesh.core.errors import OutcomeUnknown, RemoteUnavailable, TemporaryError, UserError
from agentmesh.core.pattern import LazyPattern
from agentmesh.core.record import Record
from agentmesh.git.run import Git, GitError, GitTimeout, git_error, redact_url
from agentmesh.host.files import create_new

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the claim path
if TYPE_CHECKING:
    import socket

ZERO_SHA = "0" * 40
_SHA = LazyPattern(r"[0-9a-f]{40}([0-9a-f]{24})?")
_SCP_LIKE = LazyPattern(r"^[^/:]+@?[^/:]*:(?!//)")

# --- failure classes ---------------------------------------------------------

# A missing repository is an outage, not a user error: a remote that moved, was deleted or is
# not exported any more during operation fails exactly like one that was never there, and at
# run time agentmesh cannot tell the two apart (`agentmesh doctor` names both as failed checks).
_MISSING = (
    "does not appear to be a git repository",
    "no such repository",
    "not exported",
    "repository not found",
)
_MISSING_HTTP = LazyPattern(r"repository '[^']*' not found")
_MISSING_HINT = "no git repository there (moved, removed or down?)"
_UNREACHABLE = (
    "could not resolve host",
    "connection refused",
    "connection timed out",
    "connection reset",
    "operation timed out",
    "network is unreachable",
    "no route to host",
    "the remote end hung up",
    "early eof",
    "rpc failed",
    "unable to access",
    "could not read from remote repository",
    "unable to connect",
    "returned error: 5",
    "failed to connect",
    "temporary failure",
    "remote error:",  # the server's ERR packet, as ls_refs reads it too
    "protocol error",
    "unexpected disconnect",
    "index-pack failed",
    "couldn't find remote ref",  # deleted between our listing and our fetch
)
# Only the user can fix these: credentials, access rights, a transport git does not speak.
_USER_FAULT = (
    "authentication failed",
    "permission denied",
    "returned error: 401",
    "returned error: 403",
    "invalid username or password",
    "could not read username",
    "could not read password",
    "host key verification failed",
    "unsupported protocol",
    "transport '",
)


def remote_failure(exc: GitError | GitTimeout, url: str) -> Exception:
    """The error a user should see for a failed remote operation."""
    where = redact_url(url)
    if isinstance(exc, GitTimeout):
        return RemoteUnavailable(f"remote {where} did not answer within {exc.timeout:g}s")
    if isinstance(exc, TemporaryError):  # a local lock or a full disk (GitTransient): not the remote's doing
        return exc
    text = (exc.stderr or exc.stdout).lower()
    detail = _last_line(exc.stderr or exc.stdout)
    if any(marker in text for marker in _MISSING) or _MISSING_HTTP.search(text):
        return RemoteUnavailable(f"remote {where}: {_MISSING_HINT}: {detail}")
    if any(marker in text for marker in _USER_FAULT):
        return UserError(f"remote {where}: {detail}")
    if any(marker in text for marker in _UNREACHABLE):
        return RemoteUnavailable(f"remote {where} is unreachable: {detail}")
    return exc


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in redact_url(text).splitlines() if ln.strip()]
    fatal = [ln for ln in lines if ln.startswith(("fatal:", "error:", "ERROR"))]
    return (fatal or lines or ["(no output)"])[0][:300]


# --- pkt-line ------------------------------------------------------------------


def pkt(data: bytes) -> bytes:
    return b"%04x" % (len(data) + 4) + data


FLUSH = b"0000"
DELIM = b"0001"


def parse_pkt_lines(data: bytes) -> list[bytes | None]:
    """Split a pkt-line stream; None stands for flush/delim/response-end packets."""
    out: list[bytes | None] = []
    pos = 0
    while pos + 4 <= len(data):
        try:
            size = int(data[pos:pos + 4], 16)
        except ValueError:
            raise RemoteUnavailable(f"malformed pkt-line from remote: {data[pos:pos + 16]!r}") from None
        if size < 4:
            out.append(None)
            pos += 4
            continue
        out.append(data[pos + 4:pos + size])
        pos += size
    return out


def ls_refs_request(prefixes: Iterable[str]) -> bytes:
    body = pkt(b"command=ls-refs\n") + pkt(b"agent=agentmesh\n") + DELIM + pkt(b"symrefs\n")
    for prefix in prefixes:
        body += pkt(b"ref-prefix " + prefix.encode() + b"\n")
    return body + FLUSH


class RemoteRefs(Record):
    """A complete listing of the refs under the requested prefixes."""

    refs: dict[str, str]
    symrefs: dict[str, str]

    def get(self, ref: str) -> str | None:
        return self.refs.get(ref)

    def __contains__(self, ref: object) -> bool:
        return ref in self.refs

    def moved(self, ref: str, sha: str) -> RemoteRefs:
        """This listing with `ref` at `sha`: what it shows after this process's own push of `ref` landed."""
        return RemoteRefs({**self.refs, ref: sha}, self.symrefs)


def parse_ls_refs(lines: Sequence[bytes | None]) -> RemoteRefs:
    refs: dict[str, str] = {}
    symrefs: dict[str, str] = {}
    for raw in lines:
        if raw is None:
            break
        line = raw.decode("utf-8", "replace").rstrip("\n")
        if line.startswith("ERR "):
            raise RemoteUnavailable(f"remote refused ls-refs: {line[4:]}")
        parts = line.split(" ")
        if len(parts) < 2 or not _SHA.fullmatch(parts[0]):
            if parts[0] == "unborn":  # "unborn HEAD symref-target:..." on an empty repo
                _collect_symref(symrefs, parts)
                continue
            raise RemoteUnavailable(f"malformed ls-refs line from remote: {line[:120]!r}")
        refs[parts[1]] = parts[0]
        _collect_symref(symrefs, parts)
    return RemoteRefs(refs, symrefs)


def _collect_symref(symrefs: dict[str, str], parts: list[str]) -> None:
    for attr in parts[2:]:
        if attr.startswith("symref-target:"):
            symrefs[parts[1]] = attr[len("symref-target:"):]


# --- transports ------------------------------------------------------------------


def local_path(url: str) -> Path | None:
    """The filesystem path for a path or file:// URL; None for network remotes."""
    if url.startswith("file://"):
        return Path(unquote(urlsplit(url).path))
    if "://" in url or _SCP_LIKE.match(url):
        return None
    return Path(url)


STALE_LOCK_SECONDS = 600  # a live push holds its ref locks for milliseconds, a gc for seconds


def stale_ref_locks(repo: Path, now: float, older_than: float = STALE_LOCK_SECONDS) -> list[tuple[str, float]]:
    """The ref lock files (`refs/**.lock`, `HEAD.lock`, `packed-refs.lock`) in a repository on this host
    older than `older_than` seconds, with their ages, oldest first: what a receive-pack killed in the
    middle of committing a push leaves, refusing every later push of those refs ("cannot lock ref")."""
    found = []
    candidates = [repo / "HEAD.lock", repo / "packed-refs.lock"]
    for folder, _dirs, files in os.walk(repo / "refs"):
        candidates += [Path(folder) / name for name in files if name.endswith(".lock")]
    for path in candidates:
        try:
            age = now - path.stat().st_mtime
        except OSError:
            continue  # gone meanwhile, or never there
        if age > older_than:
            found.append((str(path.relative_to(repo)), age))
    return sorted(found, key=lambda found: -found[1])


def normalize_url(url: str, base: Path) -> str:
    """Make a relative local path absolute (git runs with other working directories)."""
    path = local_path(url)
    if path is None or url.startswith("file://") or path.is_absolute():
        return url
    return str((base / path).resolve())


def _check_local(url: str, path: Path) -> None:
    if not (path / "HEAD").exists() and not (path / ".git" / "HEAD").exists():
        raise RemoteUnavailable(f"remote {redact_url(url)}: {_MISSING_HINT}")


def ls_refs(git: Git, url: str, prefixes: Sequence[str], *, timeout: float | None = None) -> RemoteRefs:
    """List refs under prefixes (and HEAD's symref when "HEAD" is a prefix).

    A failure raises: an error never looks like an empty listing.
    """
    timeout = timeout or git.timeout
    path = local_path(url)
    try:
        if path is not None:
            _check_local(url, path)
            out = git.run_bytes(
                "upload-pack", "--stateless-rpc", "--strict", str(path),
                input=ls_refs_request(prefixes), timeout=timeout, env={"GIT_PROTOCOL": "version=2"},
            )
            return parse_ls_refs(parse_pkt_lines(out))
        scheme = urlsplit(url).scheme
        if scheme == "git":
            return _ls_refs_git_daemon(url, prefixes, timeout)
        if scheme in ("http", "https"):
            return _ls_refs_http(git, url, prefixes, timeout)
    except (GitError, GitTimeout) as exc:
        raise remote_failure(exc, url) from None
    return _ls_refs_fallback(git, url, prefixes, timeout)


def _ls_refs_fallback(git: Git, url: str, prefixes: Sequence[str], timeout: float) -> RemoteRefs:
    """ssh and other transports: `git ls-remote`, filtered here (costs a full listing)."""
    try:
        result = git.run("ls-remote", "--symref", url, timeout=timeout)
    except (GitError, GitTimeout) as exc:
        raise remote_failure(exc, url) from None
    refs: dict[str, str] = {}
    symrefs: dict[str, str] = {}
    for line in result.stdout.splitlines():
        left, _, name = line.partition("\t")
        if not any(name.startswith(p) for p in prefixes):
            continue
        if left.startswith("ref: "):
            symrefs[name] = left[5:]
        elif _SHA.fullmatch(left):
            refs[name] = left
    return RemoteRefs(refs, symrefs)


def _ls_refs_git_daemon(url: str, prefixes: Sequence[str], timeout: float) -> RemoteRefs:
    import socket  # here: a claim over file:// or ssh never needs it

    parts = urlsplit(url)
    host, port = parts.hostname or "localhost", parts.port or 9418
    hello = pkt(b"git-upload-pack " + parts.path.encode() + b"\0host=" + host.encode()
                + (b":%d" % port if parts.port else b"") + b"\0\0version=2\0")
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(hello)
            _read_until_flush(sock, redact_url(url))  # capability advertisement
            sock.sendall(ls_refs_request(prefixes))
            data = _read_until_flush(sock, redact_url(url))
    except OSError as exc:
        raise RemoteUnavailable(f"remote {url} is unreachable: {exc}") from None
    return parse_ls_refs(parse_pkt_lines(data))


def _read_until_flush(sock: socket.socket, url: str) -> bytes:
    buf = b""
    pos = 0
    while True:
        while len(buf) < pos + 4:
            chunk = sock.recv(65536)
            if not chunk:
                raise RemoteUnavailable(f"remote {url} closed the connection during ls-refs")
            buf += chunk
        size = int(buf[pos:pos + 4], 16)
        if size == 0:
            return buf[:pos + 4]
        if size < 4:
            pos += 4
            continue
        while len(buf) < pos + size:
            chunk = sock.recv(65536)
            if not chunk:
                raise RemoteUnavailable(f"remote {url} closed the connection during ls-refs")
            buf += chunk
        if buf[pos + 4:pos + 8] == b"ERR ":
            raise RemoteUnavailable(f"remote {url} refused: {buf[pos + 8:pos + size].decode('utf-8', 'replace')}")
        pos += size


def _ls_refs_http(git: Git, url: str, prefixes: Sequence[str], timeout: float) -> RemoteRefs:
    import requests  # heavy; only http remotes need it

    auth = (git.username or "x-access-token", git.token) if git.token else None
    try:
        response = requests.post(
            url.rstrip("/") + "/git-upload-pack",
            data=ls_refs_request(prefixes),
            headers={
                "Git-Protocol": "version=2",
                "Content-Type": "application/x-git-upload-pack-request",
                "Accept": "application/x-git-upload-pack-result",
                "User-Agent": "git/agentmesh",
            },
            auth=auth,
            timeout=timeout,
        )
    except requests.RequestException as exc:
        raise RemoteUnavailable(f"remote {redact_url(url)} is unreachable: {type(exc).__name__}") from None
    if response.status_code in (401, 403):
        raise UserError(f"remote {redact_url(url)}: HTTP {response.status_code} listing refs")
    if response.status_code != 200:
        raise RemoteUnavailable(f"remote {redact_url(url)}: HTTP {response.status_code} listing refs")
    return parse_ls_refs(parse_pkt_lines(response.content))


def _scratch_dir(git: Git) -> Path:
    """Where a push's narrowed config is written: beside agentmesh's own git config (the state dir)."""
    if git.global_config is not None:
        return git.global_config.parent
    import tempfile

    return Path(tempfile.gettempdir())


@contextmanager
def _narrowed_config(git: Git, url: str, refs: Sequence[str], bases: Sequence[str]):
    """On local remotes, advertise only the refs a push touches (and its bases).

    receive-pack (protocol v0) advertises every ref before a push, so a push
    to a remote with 20,000 refs pays for all of them. On a path or file://
    remote the receive-pack is our own child and reads our global config, so
    `transfer.hideRefs` can hide everything except the refs being updated
    (their leases still see the real values) and the bases the new commits
    build on (so only new objects are sent). Network remotes are unchanged.
    `receive.autogc` is switched off the same way (see `gc_if_needed`).
    """
    if local_path(url) is None:
        yield None
        return
    text = git.global_config.read_text() if git.global_config else ""
    text += "[transfer]\n\thideRefs = refs/\n" + "".join(f"\thideRefs = !{ref}\n" for ref in (*refs, *bases))
    # receive-pack runs `gc --auto` after every push by default: a process per push, and all of them
    # race for the same repository. `gc_if_needed` runs it once, when the remote needs it.
    text += "[receive]\n\tautogc = false\n"
    # receive-pack's connectivity check excludes the refs of its quarantine's alternate, which is the
    # remote itself: a `git for-each-ref` of every ref, hidden ones too, per push. They add nothing the
    # check needs (the refs it may see, the pushed ones and the bases, are in its `--all`), so `true`
    # lists none: a push is a git process fewer, and no longer reads all the refs of a large remote.
    text += "[core]\n\talternateRefsCommand = true\n"
    fd, name = create_new(_scratch_dir(git), "agentmesh-push-", ".gitconfig")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        yield {"GIT_CONFIG_GLOBAL": str(name)}
    finally:
        os.unlink(name)


# --- pushes ------------------------------------------------------------------------

_MIRRORED = "agentmesh-mirrored"  # see `push(mirror=...)`


class RefUpdate(Record):
    """Set `ref` to `new` (None deletes it) only if the remote holds `expect` (None: absent)."""

    ref: str
    new: str | None
    expect: str | None

    def refspec(self) -> str:
        return f"{self.new}:{self.ref}" if self.new else f":{self.ref}"

    def lease(self) -> str:
        return f"--force-with-lease={self.ref}:{self.expect or ''}"


class RefStatus(Record):
    ref: str
    flag: str
    summary: str

    @property
    def ok(self) -> bool:
        return self.flag in (" ", "+", "-", "*", "=")

    @property
    def reason(self) -> str:
        match = re.search(r"\((.*)\)\s*$", self.summary)
        return match.group(1) if match else self.summary

    @property
    def declined(self) -> bool:
        """The server's hook refused it: a policy, not a lost race, so retrying changes nothing."""
        return "hook declined" in self.summary


class PushResult(Record):
    statuses: dict[str, RefStatus]
    messages: tuple[str, ...] = ()  # what the server said (its `remote:` lines), e.g. why its hook declined

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.statuses.values())

    def rejected(self) -> list[RefStatus]:
        return [s for s in self.statuses.values() if not s.ok]


def parse_porcelain(stdout: str) -> dict[str, RefStatus]:
    statuses: dict[str, RefStatus] = {}
    for line in stdout.splitlines():
        fields = line.split("\t")
        if len(fields) < 3 or len(fields[0]) != 1:
            continue
        _, _, dst = fields[1].rpartition(":")
        statuses[dst] = RefStatus(dst, fields[0], fields[2])
    return statuses


def remote_messages(stderr: str, limit: int = 10) -> tuple[str, ...]:
    """The server's own lines in a push's stderr (`remote: ...`), without git's padding."""
    lines = [line[len("remote:"):].strip() for line in stderr.splitlines() if line.startswith("remote:")]
    return tuple(line for line in lines if line)[:limit]


def push(
    git: Git,
    repo: Path,
    url: str,
    updates: Sequence[RefUpdate],
    *,
    atomic: bool = False,
    timeout: float | None = None,
    bases: Sequence[str] = (),
    mirror: str | None = None,
) -> PushResult:
    """A compare-and-swap push. Every ref carries its lease.

    Returns the per-ref outcome when git reports one for every ref. Raises
    OutcomeUnknown when it does not (exit 128, timeout, dropped connection):
    the push may or may not have landed, and the caller must read back.

    `bases` names remote refs the pushed commits build on (the default
    branch); see `_narrowed_config`. `mirror`: the local namespace that
    mirrors the remote's `refs/` in `repo` (`refs/mirror/`): the push itself
    moves (or deletes) the mirror ref of each ref that landed, as git moves
    a remote-tracking ref, so that costs no `update-ref` of its own.
    """
    args = ["push", "--porcelain", "--no-verify"]
    if atomic:
        args.append("--atomic")
    args += [u.lease() for u in updates]
    if mirror is None:
        args.append(url)
    else:  # a remote named for this push only, whose fetch refspec makes the mirror its tracking refs
        args = ["-c", f"remote.{_MIRRORED}.url={url}", "-c", f"remote.{_MIRRORED}.fetch=+refs/*:{mirror}*",
                *args, _MIRRORED]
    args += [u.refspec() for u in updates]
    with _narrowed_config(git, url, [u.ref for u in updates], bases) as env:
        try:
            result = git.run(*args, cwd=repo, timeout=timeout, check=False, env=env)
        except GitTimeout as exc:
            raise OutcomeUnknown(f"push to {redact_url(url)} timed out after {exc.timeout:g}s") from None
    statuses = parse_porcelain(result.stdout)
    if all(u.ref in statuses for u in updates) and result.returncode in (0, 1):
        if result.returncode == 0:
            gc_if_needed(git, url)
        return PushResult(statuses, remote_messages(result.stderr))
    failure = remote_failure(git_error(result.args, result.returncode, result.stdout, result.stderr), url)
    if isinstance(failure, UserError):
        raise failure
    raise OutcomeUnknown(f"push outcome unknown: {failure}")


# --- housekeeping of a local remote ---------------------------------------------------

GC_LOOSE_OBJECTS = 6700  # git's own `gc.auto` default
GC_PACKS = 50  # git's own `gc.autoPackLimit` default
_FANOUT_SAMPLE = "17"  # git estimates loose objects from one fan-out directory, and so do we


def gc_needed(repo: Path, loose_limit: int = GC_LOOSE_OBJECTS, pack_limit: int = GC_PACKS) -> bool:
    """Whether a bare repository holds more loose objects or packs than git's own `gc --auto` allows,
    estimated the way git does it (one fan-out directory of 256), without starting a process."""
    try:
        loose = sum(1 for entry in os.scandir(repo / "objects" / _FANOUT_SAMPLE) if len(entry.name) >= 38)
    except OSError:
        loose = 0
    try:
        packs = sum(1 for entry in os.scandir(repo / "objects" / "pack") if entry.name.endswith(".pack"))
    except OSError:
        packs = 0
    return loose > -(-loose_limit // 256) or packs > pack_limit  # git: DIV_ROUND_UP(gc.auto, 256)


def gc_if_needed(git: Git, url: str, loose_limit: int = GC_LOOSE_OBJECTS, pack_limit: int = GC_PACKS) -> bool:
    """After a push to a path or file:// remote (whose receive-pack runs with `receive.autogc` off):
    `git gc --auto` on it, only when it needs one. A gc leaves the remote below the limits, so this
    runs at most once a run however many pushes the run makes. Network remotes gc themselves."""
    path = local_path(url)
    if path is None:
        return False
    repo = path if (path / "objects").is_dir() else path / ".git"
    if not gc_needed(repo, loose_limit, pack_limit):
        return False
    # -c after the forced gc.auto=0 wins; --auto detaches, so the push does not wait for it
    git.run("-c", f"gc.auto={loose_limit}", "-c", f"gc.autoPackLimit={pack_limit}", f"--git-dir={repo}",
            "gc", "--auto", "--quiet", check=False)
    return True
