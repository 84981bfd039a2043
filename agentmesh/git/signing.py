"""An agent's SSH signing key, and verifying commits against the roster's allowed signers.

Every commit an agent writes is signed with git's SSH signing (`gpg.format=ssh`), so the
remote can tell an agent's claims, presence, work and reviews from anything a writer pushed.
A commit's signer is checked against an allowed-signers file built from the roster on the base
branch: the signature's key names the principal, and one `ssh-keygen -Y verify` checks it
(`verified_signers`, which the push hook uses too; git's own check, `signers`, runs two per commit).
Good signatures are remembered next to that file: a commit and its signature never change. So are
the commits this host signed itself (`note_signed`): which key signed each, read from the signature,
and the roster at verification time says whose key that is.
"""

from __future__ import annotations

import binascii
import errno
import os
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from agentmesh.core.digest import sha256
from agentmesh.core.errors import ConfigError, TemporaryError
from agentmesh.core.identity import NAMESPACE, PublicKey
from agentmesh.core.pattern import LazyPattern
from agentmesh.core.record import Record
from agentmesh.git.objects import commit_data, git_now, plain_ident, with_signature, write_loose
from agentmesh.git.run import Git
from agentmesh.host.files import write_atomic
from agentmesh.host.process import (
    ProcessResult,
    finish_process,
    kill_group,
    kill_pidfile_group,
    run_process,
    start_process,
    write_pidfile,
)


def ensure_key(private: Path, comment: str) -> PublicKey:
    """The agent's signing key at `private` (0600, in a 0700 folder), created when missing."""
    public = private.with_name(private.name + ".pub")
    if not private.exists():
        import shutil  # here: only a host's first run makes its key

        if shutil.which("ssh-keygen") is None:
            raise ConfigError("ssh-keygen is not installed (Debian: apt-get install openssh-client); "
                              "agents sign every commit with an SSH key")
        private.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        scratch = private.with_name(private.name + ".new")
        scratch.unlink(missing_ok=True)
        scratch.with_name(scratch.name + ".pub").unlink(missing_ok=True)
        # the comment is the agent name, which never starts with "-" (AgentName)
        done = run_process(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(scratch)],
                           capture=True, input=b"", timeout=60)
        if not done.ok:
            why = done.error or done.stderr.decode("utf-8", "replace").strip()[:200] or f"{done.outcome}"
            raise TemporaryError(f"ssh-keygen could not create {private}: {why}")
        scratch.chmod(0o600)
        scratch.with_name(scratch.name + ".pub").replace(public)
        scratch.replace(private)  # last: a key without its .pub is never left behind
    try:
        return PublicKey.parse(public.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"signing key {public}: {exc}") from None


def _sign_argv(key: Path) -> list[str]:
    # ssh-keygen signs its stdin onto its stdout; the key's path never starts with "-" (it is resolved)
    return ["ssh-keygen", "-Y", "sign", "-n", NAMESPACE, "-f", str(key)]


class PendingSignature:
    """An ssh-keygen started before the commit it signs is known. It starts OpenSSL and loads the key (~20 M
    instructions, most of its cost) and only then reads what it signs from stdin, so that start-up runs while
    this process lists the remote (docs/benchmarks.md, "What cron pays"). It signs the same bytes with the
    same key as `write_signed_commit` without it; one that is never used is stopped by `abandon`."""

    def __init__(self, git: Git):
        self.key = git.signing_key
        self.timeout = git.timeout
        self.argv = () if self.key is None else tuple(_sign_argv(self.key))
        self.started = time.monotonic()
        self._proc: subprocess.Popen | None = None
        if self.argv:
            try:
                self._proc = start_process(self.argv, env=git.keygen_env(), capture=True, stdin_pipe=True)
            except OSError:
                pass  # signed the usual way, which says why it cannot be

    def sign(self, git: Git, data: bytes) -> ProcessResult | None:
        """ssh-keygen's signature of `data`: once, and only with the key `git` signs with; None otherwise."""
        proc, self._proc = self._proc, None
        if proc is None or git.signing_key != self.key:
            if proc is not None:
                kill_group(proc, grace=0)
            return None
        return finish_process(proc, self.argv, self.started, capture=True, input=data, timeout=self.timeout,
                              grace=0, reap_group=False)

    def abandon(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            kill_group(proc, grace=0)


# the commits of one push signed by one SigningSession: a PR, its issues, the fence's claim and journal, a retry
# or two; any further ones are signed one by one. An unused slot costs a FIFO.
SIGNED_PER_PUSH = 8


class SigningSession:
    """One ssh-keygen signing up to `slots` commits in turn, for a push's commits: each costs ~1 ms of signing
    instead of a process's start-up (OpenSSL and the key, ~20 M instructions). `ssh-keygen -Y sign FILE...`
    signs its files one after another and writes `FILE.sig` before it opens the next; each FILE here is a FIFO
    in a private folder, so it waits for each commit's bytes, and a commit may be the parent of the next (its
    sha is known once its signature is: the next commit is not known before). That the next FIFO opened says
    the last `.sig` is whole. Started before the first commit is known, its start-up runs alongside the remote
    listing, as `PendingSignature`'s. A failure ends it: the commit and the rest are signed the usual way
    (`write_signed_commit`), which fails in its own words; a signature that does not come in time is a
    TemporaryError, as git's own timeout is."""

    def __init__(self, git: Git, folder: Path, slots: int):
        self.key = git.signing_key
        self.timeout = git.timeout
        self.folder = folder
        self._files = [folder / f"{index}" for index in range(slots)]
        self._used = 0
        self._next: int | None = None  # the FIFO ssh-keygen reads next, opened for writing
        self._proc: subprocess.Popen | None = None
        if self.key is None or slots < 1:
            return
        argv = [*_sign_argv(self.key), *map(str, self._files)]
        try:
            for path in self._files:
                os.mkfifo(path, 0o600)
            try:
                # killed with this process (thread): else it would wait on its next FIFO for ever
                self._proc = start_process(["setpriv", "--pdeathsig", "KILL", "--", *argv], env=git.keygen_env())
            except FileNotFoundError:  # no util-linux: the next session's sweep stops it
                self._proc = start_process(argv, env=git.keygen_env())
        except OSError:
            return  # signed the usual way, which says why it cannot be
        try:
            write_pidfile(folder / _SESSION_PIDFILE, self._proc.pid)  # for `sweep_sessions`, should this run die
        except OSError:
            pass  # a sweep's means lost, nothing else

    def sign(self, git: Git, data: bytes) -> bytes | None:
        """ssh-keygen's signature of `data` with the key `git` signs with; None when this session cannot
        (used up, ended, another key)."""
        if self._proc is None or git.signing_key != self.key or self._used >= len(self._files):
            return None
        index = self._used
        self._used += 1
        try:
            signature = self._signed(index, data, time.monotonic() + self.timeout)
        except OSError:
            signature = None
        except TemporaryError:
            self._end()
            raise
        if signature is None or not signature.startswith(_ARMOR):
            self._end()  # this commit and the rest: the usual way
            return None
        return signature

    def _signed(self, index: int, data: bytes, deadline: float) -> bytes | None:
        fd = self._next if self._next is not None else self._open(index, deadline)
        self._next = None
        if fd is None:
            return None
        try:
            os.set_blocking(fd, True)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)  # ssh-keygen reads to the end, then signs
        if index + 1 < len(self._files):
            self._next = self._open(index + 1, deadline)
            if self._next is None:
                return None
        elif not self._exited(deadline):
            return None
        return self._files[index].with_name(f"{index}.sig").read_bytes()

    def _open(self, index: int, deadline: float) -> int | None:
        """The FIFO `index` opened for writing once ssh-keygen reads it (so it wrote the signature before);
        None when ssh-keygen ended or the deadline passed first."""
        pause = 0.0002
        while True:
            try:
                return os.open(self._files[index], os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                    raise
            if self._proc is None or self._proc.poll() is not None:
                return None
            if time.monotonic() > deadline:
                raise TemporaryError(f"ssh-keygen did not sign within {self.timeout:g}s")
            time.sleep(pause)
            pause = min(pause * 2, 0.005)

    def _exited(self, deadline: float) -> bool:
        assert self._proc is not None
        try:
            return self._proc.wait(max(0.0, deadline - time.monotonic())) == 0
        except subprocess.TimeoutExpired:
            raise TemporaryError(f"ssh-keygen did not sign within {self.timeout:g}s") from None

    def _end(self) -> None:
        proc, self._proc = self._proc, None
        if self._next is not None:
            os.close(self._next)
            self._next = None
        if proc is not None:
            kill_group(proc, grace=0)

    def close(self) -> None:
        """Stop ssh-keygen (waiting on a FIFO no commit will use) and remove the folder."""
        import shutil  # here: a claim that signs alone never imports it

        self._end()
        shutil.rmtree(self.folder, ignore_errors=True)


SESSION_PREFIX = ".signing-"  # a SigningSession's folder, beside the cache clone: `.signing-<owner pid>-<random>`
_SESSION_LEFT_SECONDS = 3600  # a session lasts a push: one this old was left by a run that died
_SESSION_PIDFILE = "pid"  # its ssh-keygen's group and start time (host/process.write_pidfile)


def sweep_sessions(directory: Path) -> None:
    """Remove the session folders a killed run left in `directory` (its pid gone, or an hour old), and stop
    their ssh-keygen if it still waits on its next FIFO (without setpriv's parent-death signal; the pidfile's
    start time keeps an unrelated process that reused the pid safe)."""
    import shutil

    cutoff = time.time() - _SESSION_LEFT_SECONDS
    try:
        with os.scandir(directory) as entries:
            found = [entry for entry in entries if entry.name.startswith(SESSION_PREFIX)]
        for entry in found:
            owner = entry.name[len(SESSION_PREFIX):].partition("-")[0]
            if entry.stat(follow_symlinks=False).st_mtime >= cutoff and (not owner.isdigit() or _alive(int(owner))):
                continue
            kill_pidfile_group(Path(entry.path) / _SESSION_PIDFILE, grace=0)
            shutil.rmtree(entry.path, ignore_errors=True)
    except OSError:
        pass  # only garbage left, for the next sweep


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # another user's: not ours to judge
    return True


def write_signed_commit(git: Git, repo: Path, tree: str, parents: Sequence[str], message: str, *,
                        when: str | None = None, pending: PendingSignature | None = None,
                        session: SigningSession | None = None) -> str | None:
    """Write the commit `git commit-tree -S` would write into the SHA-1 bare repository `repo`, signed with
    `git`'s key by one ssh-keygen process (`pending`'s, when given): git's own signing runs the same ssh-keygen
    from a git process, through two temporary files. The same bytes, so the same sha
    (tests/integration/test_signed_commits.py). None when it cannot be done here (an unsigned `git`, an
    identity git would rewrite, ssh-keygen failing): the caller then runs git, which does it, or fails, in its
    own words."""
    ident = plain_ident(git.author_name, git.author_email)
    if git.signing_key is None or ident is None:
        if pending is not None:
            pending.abandon()
        return None
    data = commit_data(tree, parents, ident, git_now() if when is None else when, message)
    signed = None if pending is None else pending.sign(git, data)
    signature = session.sign(git, data) if signed is None and session is not None else None
    if signature is None:
        if signed is None:
            signed = run_process(_sign_argv(git.signing_key), env=git.keygen_env(), capture=True, input=data,
                                 timeout=git.timeout, grace=0, reap_group=False)
        signature = signed.stdout if signed.ok else b""
    if not signature.startswith(_ARMOR):
        return None
    sha = write_loose(repo, "commit", with_signature(data, signature))
    note_signed(repo, sha, signature)
    return sha


# Commits this host signed, in the clone they were written to: `<sha> <fingerprint of the signing key>` a line.
# Why a line is what verifying the commit would find (Identity.signers): the sha is ours, computed over the
# bytes written, the signature's payload and its key; git's check finds the roster's principals of the key
# the signature carries (`find-principals`, the first whose `verify` passes), and `verify` passes on a
# signature ssh-keygen just made with that key. So the principal is looked up at verification time, in the
# roster of that time, as git's check would: a key removed or rotated out of the roster finds no one and
# the commit is checked by git (which refuses it too). A forged commit is never a line: its sha is not ours.
OWN_SIGNED = "agentmesh-signed"
OWN_SIGNED_KEPT = 512  # the newest lines kept: own commits are checked within minutes of their signing
_OWN_SIGNED_MAX_BYTES = 64 * 1024  # past this (~700 lines) the file is cut back to OWN_SIGNED_KEPT lines
_ARMOR = b"-----BEGIN SSH SIGNATURE-----"


def signature_key(signature: bytes) -> PublicKey | None:
    """The ed25519 key an armored SSH signature names (its SSHSIG blob: magic, version, then the key); None
    for anything else."""
    body = signature.strip()
    if not body.startswith(_ARMOR):
        return None
    lines = body.splitlines()[1:]
    end = next((i for i, line in enumerate(lines) if line.startswith(b"-----END SSH SIGNATURE-----")), None)
    if end is None:  # the first armored block is the signature, as ssh-keygen reads it
        return None
    try:
        blob = binascii.a2b_base64(b"".join(lines[:end]))
    except ValueError:
        return None
    if blob[:6] != b"SSHSIG" or len(blob) < 14:
        return None
    size = int.from_bytes(blob[10:14], "big")
    key = blob[14:14 + size]
    if len(key) != size:
        return None
    try:
        return PublicKey.parse("ssh-ed25519 " + binascii.b2a_base64(key, newline=False).decode())
    except ValueError:
        return None


def note_signed(repo: Path, sha: str, signature: bytes) -> None:
    """Add `sha`, signed with `signature`, to the commits this host signed in `repo`. One append (concurrent
    runs append whole lines); a cut that races an append may lose it: that commit is checked by git, no worse."""
    key = signature_key(signature)
    if key is None:
        return
    path = repo / OWN_SIGNED
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{sha} {key.fingerprint}\n".encode())
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if size > _OWN_SIGNED_MAX_BYTES:
            kept = path.read_text(errors="replace").splitlines()[-OWN_SIGNED_KEPT:]
            write_atomic(path, "".join(line + "\n" for line in kept), 0o600)
    except OSError:
        pass  # only a saving lost


def own_signed(repo: Path, shas: Iterable[str]) -> dict[str, str]:
    """sha -> the fingerprint of the key this host signed it with, for those of `shas` it signed in `repo`."""
    wanted = set(shas)
    try:
        text = (repo / OWN_SIGNED).read_text(errors="replace")
    except OSError:
        return {}
    found = {}
    for line in text.splitlines():
        sha, _, fingerprint = line.partition(" ")
        if sha in wanted and fingerprint.startswith("SHA256:"):
            found[sha] = fingerprint
    return found


def allowed_signers(entries: Iterable[tuple[str, PublicKey]]) -> str:
    """The allowed-signers file for `(principal, key)` pairs, valid for git signatures only."""
    return "".join(f'{principal} namespaces="{NAMESPACE}" {key.line}\n' for principal, key in entries)


ALLOWED_PREFIX = "allowed-signers-"


class Remembered(Record):
    """Where good signatures are remembered per allowed-signers file, and how many (the newest kept)."""

    prefix: str
    kept: int


VERIFIED = Remembered("verified-", 4096)
# journal commits, kept apart: every journal read checks a month of them again, and the presence and
# claim commits that churn through VERIFIED would push them out
JOURNALS = Remembered("journals-verified-", 20_000)
_SHA = LazyPattern(r"[0-9a-f]{40}|[0-9a-f]{64}")


def ensure_allowed_signers(directory: Path, text: str) -> Path:
    """The allowed-signers file of this text, named by its hash (a roster change is a new file)."""
    path = directory / f"{ALLOWED_PREFIX}{sha256(text.encode()).hexdigest()[:16]}"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(path, text, 0o600)
    return path


def _verified_path(allowed: Path, store: Remembered) -> Path:
    # named by the allowed-signers file's hash: a roster change (a key removed) starts afresh
    return allowed.with_name(store.prefix + allowed.name.removeprefix(ALLOWED_PREFIX))


def remembered_signers(allowed: Path, principals: Iterable[str], store: Remembered = VERIFIED) -> dict[str, str]:
    """sha -> principal for the good signatures checked against `allowed` before; lines that are not
    a sha and one of `principals` are ignored."""
    known = set(principals)
    try:
        text = _verified_path(allowed, store).read_text()
    except FileNotFoundError:
        return {}
    found = {}
    for line in text.splitlines():
        sha, _, principal = line.partition(" ")
        if _SHA.fullmatch(sha) and principal in known:
            found[sha] = principal
    return found


def remember_signers(allowed: Path, good: Mapping[str, str], principals: Iterable[str],
                     store: Remembered = VERIFIED) -> None:
    """Add good signatures to what `allowed` remembers, keeping the newest `store.kept`. Two runs that
    write at once lose one's additions: they are checked again later, nothing worse."""
    if not good:
        return
    merged = {**remembered_signers(allowed, principals, store), **good}
    kept = list(merged.items())[-store.kept:]
    write_atomic(_verified_path(allowed, store), "".join(f"{sha} {principal}\n" for sha, principal in kept), 0o600)


_SIGNATURE_MAX_BYTES = 8192  # an ed25519 SSHSIG is ~300 bytes; it goes through a pipe, written before ssh-keygen reads
VERIFY_SECONDS = 60.0


def split_signed(data: bytes) -> tuple[bytes, bytes] | None:
    """A commit object's (payload, signature): the object without its `gpgsig` header, and that header's
    text, as git's check splits them (commit.c, parse_buffer_signed_by_header, line by line as it reads
    them: a line ends at a newline only, and other `gpgsig*` headers are left out of the payload); None when
    it has no signature. The inverse of git/objects.with_signature."""
    payload: list[bytes] = []
    signature: list[bytes] = []
    inside = other = signed = False
    at = 0
    while at < len(data):
        end = data.find(b"\n", at)
        end = len(data) if end < 0 else end + 1
        line = data[at:end]
        sig = None
        if inside and line.startswith(b" "):
            sig = line[1:]
        elif line.startswith(b"gpgsig "):
            sig, other = line[len(b"gpgsig "):], False
        elif line.startswith(b"gpgsig"):
            other = True  # gpgsig-sha256 (or junk): neither the signature nor the payload
        elif other and not line.startswith(b" "):
            other = False
        if sig is not None:
            signature.append(sig)
            signed = inside = True
        else:
            if line.startswith(b"\n"):  # the end of the header: the rest is the message, whole
                end = len(data)
                line = data[at:]
            if not other:
                payload.append(line)
            inside = False
        at = end
    return (b"".join(payload), b"".join(signature)) if signed else None


def allowed_principals(allowed: Path) -> dict[str, list[str]]:
    """Key blob -> the principals the allowed-signers file (`allowed_signers`'s) lists it for, in its order."""
    found: dict[str, list[str]] = {}
    for line in allowed.read_text().splitlines():
        parts = line.split(" ")
        if len(parts) == 4 and parts[1] == f'namespaces="{NAMESPACE}"':
            found.setdefault(parts[3], []).append(parts[0])
    return found


def verified_signers(git: Git, commits: Mapping[str, bytes | None], allowed: Path, *,
                     program: str = "ssh-keygen") -> dict[str, str | None]:
    """sha -> what `signers` says of each commit (sha -> its object's data; None: missing, or not a commit):
    one `ssh-keygen -Y verify` per commit whose signature
    carries a key `allowed` lists, against the principal it lists the key for (the first that verifies,
    as git's check takes `find-principals`' first); none at all for an unsigned commit or an unknown key.
    git's check runs `find-principals` and `verify`, two processes per commit, and a `git log` for them all."""
    keys = allowed_principals(allowed)
    found: dict[str, str | None] = {}
    for sha, data in commits.items():
        found[sha] = None
        split = split_signed(data) if data is not None else None
        if split is None or len(split[1]) > _SIGNATURE_MAX_BYTES or (key := signature_key(split[1])) is None:
            continue
        payload, signature = split
        verifying = (who for who in keys.get(key.blob, [])
                     if _verifies(git, program, allowed, who, payload, signature))
        found[sha] = next(verifying, None)
    return found


def _verifies(git: Git, program: str, allowed: Path, principal: str, payload: bytes, signature: bytes) -> bool:
    """ssh-keygen's verdict on `signature` of `payload` by `principal`'s key in `allowed` (the signature through a
    pipe it reads as a file, the payload on its stdin). A timeout is temporary; one that cannot start says no,
    as git's check says of it."""
    read, write = os.pipe()
    try:
        os.write(write, signature)  # within the pipe's buffer (_SIGNATURE_MAX_BYTES): it cannot block
        os.close(write)
        write = -1
        done = subprocess.run([program, "-Y", "verify", "-f", str(allowed), "-I", principal, "-n", NAMESPACE,
                               "-s", f"/dev/fd/{read}"], input=payload, capture_output=True, pass_fds=(read,),
                              env=git.keygen_env(), timeout=VERIFY_SECONDS)
    except subprocess.TimeoutExpired:
        raise TemporaryError(f"ssh-keygen did not verify a signature within {VERIFY_SECONDS:g}s") from None
    except OSError:
        return False
    finally:
        os.close(read)
        if write >= 0:
            os.close(write)
    return done.returncode == 0


def signers(git: Git, repo: Path, shas: Sequence[str], allowed: Path) -> Mapping[str, str | None]:
    """sha -> the principal whose roster key made a good signature on it, or None (unsigned, bad,
    or signed by a key the roster does not list): git's own check, in one `git log` (two ssh-keygens a
    commit). The reference `verified_signers` is held to (tests/integration/test_verified_signers.py)."""
    if not shas:
        return {}
    unique = list(dict.fromkeys(shas))
    out = git.run("-c", f"gpg.ssh.allowedSignersFile={allowed}", "log", "--no-walk=unsorted",
                  "--format=%H%x00%G?%x00%GS", "--stdin", cwd=repo, input="\n".join(unique) + "\n").stdout
    found: dict[str, str | None] = dict.fromkeys(unique)
    for line in out.splitlines():
        sha, status, principal = [*line.split("\x00"), "", ""][:3]
        if sha in found and status == "G" and principal:
            found[sha] = principal
    return found
