"""One long-lived `git cat-file --batch-command` per repository, serving every object read of a run.

A run read objects in a `cat-file` process per call (~24 per issue); one process, started on the first
read and stopped by `close` (the run's end), now answers them all. It stays correct while the
repository changes under it: git resolves every request anew, so a ref a fetch moved (loose, packed or
symbolic), a loose object written since and a pack fetched since are all seen, and an object that was
missing is looked up again (tests/integration/test_object_reader.py checks each against git 2.39).
But not packed-refs, which git keeps in memory while its stat data look the same: rewritten within the
same second at the same size into a recycled inode (`pack-refs` after a ref moved), it goes unnoticed and
an old value is read. So git is never asked for a ref by name: `HEAD` and `refs/...` are read here, from
the files, anew each time (`read_ref`), and sent as the sha they hold; any other name that is not a sha
(`main`, `HEAD@{1}`, `:/text`: no caller uses them) goes to a `cat-file --batch` of its own, as before.

Requests from several threads (claim-task's seats share a cache) take turns: one lock around a whole
request and its answers. A read never waits for ever: git's answers are read with the runner's timeout,
and a git that died answers nothing but EOF. A request whose process died is sent once more to a new
one (reads repeat safely); a second death is a GitError, a timeout a GitTimeout (temporary). git dies on a
few names rather than answer `missing`: a path relative to a worktree (`<rev>:./path`), which names nothing
in a bare repository, is answered None here; `<branch>@{upstream}` goes to a process of its own (above).
"""

from __future__ import annotations

import os
import select
import subprocess
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path

from agentmesh.core.pattern import LazyPattern
from agentmesh.core.record import Record
from agentmesh.git.run import Git, GitError, GitTimeout, git_error
from agentmesh.host.process import kill_group

_OBJECT_HEADER = LazyPattern(r"(?P<sha>[0-9a-f]{40}|[0-9a-f]{64}) (?P<type>[a-z]+) (?P<size>[0-9]+)")
_OBJECT_ID = LazyPattern(r"[0-9a-f]{40}|[0-9a-f]{64}")
# where a revision's name ends: a path, a peel or an ancestor (`@{` is a reflog or an upstream: not read here)
_NAME_END = LazyPattern(r"[:^~]|@\{")
# a name that is a file of the repository's refs: no part starting with `.` (`..`), none ending in `.lock`
_SAFE_REF = LazyPattern(r"HEAD|refs(?:/(?!\.)(?![^/]*\.lock(?:/|$))[^/]+)+")
_STDERR_KEPT = 4096  # the tail of git's stderr an error shows
_CLOSE_WAIT = 5.0  # seconds for git to exit after its stdin closed, before it is killed


class ObjectInfo(Record):
    sha: str
    type: str  # blob, tree, commit, tag
    size: int


class _Died(Exception):
    """The process ended (or broke the protocol) during a request."""


class _Process:
    """One running `cat-file --batch-command` and what it has written that was not yet taken."""

    def __init__(self, git: Git, path: Path):
        self.argv, self.proc = git.start(f"--git-dir={path}", "cat-file", "--batch-command", cwd=path)
        assert self.proc.stdin is not None and self.proc.stdout is not None and self.proc.stderr is not None
        self.stdin, self.stdout = self.proc.stdin.fileno(), self.proc.stdout.fileno()
        self.stderr = self.proc.stderr.fileno()
        os.set_blocking(self.stdin, False)  # a request and its answers flow together: neither pipe may fill up
        self.out = bytearray()
        self.err = bytearray()
        # the process is stopped when its reader is collected, or at exit, if nobody closed it
        self.finalizer = weakref.finalize(self, _stop, self.proc)

    def exchange(self, request: bytes, answers: int, contents: bool,
                 deadline: float) -> list[tuple[bytes, bytes | None]]:
        """Send `request` (`answers` commands) and read the answers: (header, contents or None) each.
        TimeoutError past `deadline`; _Died when git ends first."""
        poller = select.poll()
        poller.register(self.stdout, select.POLLIN)
        poller.register(self.stderr, select.POLLIN)
        pending = memoryview(request)
        poller.register(self.stdin, select.POLLOUT)
        found: list[tuple[bytes, bytes | None]] = []
        while True:
            while len(found) < answers and (answer := self._take(contents)) is not None:
                found.append(answer)
            if len(found) == answers:
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            for fd, _event in poller.poll(left * 1000):
                if fd == self.stdin:
                    pending = self._write(pending)
                    if not pending:
                        poller.unregister(self.stdin)
                elif fd == self.stdout:
                    self._read_out()
                elif not self._read_err():
                    poller.unregister(self.stderr)

    def _write(self, pending: memoryview) -> memoryview:
        """What is left of `pending` after one write."""
        try:
            return pending[os.write(self.stdin, pending[:1 << 16]):]
        except BlockingIOError:
            return pending
        except OSError:  # EPIPE: git is gone; its EOF on stdout says so
            return pending[:0]

    def _read_out(self) -> None:
        chunk = os.read(self.stdout, 1 << 16)
        if not chunk:
            raise _Died
        self.out += chunk

    def _read_err(self) -> bool:
        """Keep the tail of what git says on stderr; False at its EOF."""
        chunk = os.read(self.stderr, 1 << 16)
        self.err = self.err[-_STDERR_KEPT:] + chunk
        return bool(chunk)

    def _take(self, contents: bool) -> tuple[bytes, bytes | None] | None:
        return _take(self.out, contents)

    def failure(self, why: str) -> GitError:
        """The error for a process that died (or broke the protocol): its exit code and the last of its
        stderr. It is stopped and reaped."""
        try:
            self.proc.wait(timeout=1.0)  # EOF on its stdout: it is exiting
        except subprocess.TimeoutExpired:
            kill_group(self.proc, grace=0)  # alive but out of step
        # git is gone and no other process holds the pipe: what is left ends in EOF (bounded all the same)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and select.select([self.stderr], [], [], deadline - time.monotonic())[0]:
            if not self._read_err():
                break
        self.finalizer()
        stderr = bytes(self.err[-_STDERR_KEPT:]).decode("utf-8", "replace").strip()
        return git_error(self.argv, -1 if self.proc.returncode is None else self.proc.returncode, "", stderr or why)

    def kill(self) -> None:
        """Stop it now (a timeout, an interrupted read): no waiting for an exit that may never come."""
        kill_group(self.proc, grace=0)
        self.finalizer()


def _take(out: bytearray, contents: bool) -> tuple[bytes, bytes | None] | None:
    """One whole answer taken from the front of `out`, or None until it is all there."""
    end = out.find(b"\n")
    if end < 0:
        return None
    header = bytes(out[:end])
    if header.endswith((b" missing", b" ambiguous")):
        del out[:end + 1]
        return header, None
    match = _OBJECT_HEADER.fullmatch(header.decode("ascii", "replace"))
    if match is None:
        raise _Died  # not an answer: out of step with git, which cannot be trusted any more
    if not contents:
        del out[:end + 1]
        return header, None
    size = int(match["size"])
    if len(out) < end + 1 + size + 1:
        return None
    data = bytes(out[end + 1:end + 1 + size])
    del out[:end + 1 + size + 1]
    return header, data


def read_ref(git_dir: Path, name: str) -> str | None:
    """The object id the ref `name` (`HEAD`, `refs/...`) holds, read from the files as git's files backend reads
    them, anew each call: the loose file, else packed-refs (`pack-refs` writes it before it deletes a loose
    file), a symbolic ref followed. None when there is no such ref (or an unborn one)."""
    for _ in range(5):  # git follows symbolic refs 5 deep
        try:
            text = (git_dir / name).read_text(errors="replace").strip()
        except OSError:  # missing, or a folder of refs
            return _packed_ref(git_dir, name)
        if not text.startswith("ref: "):
            return text if _OBJECT_ID.fullmatch(text) else None
        name = text[len("ref: "):].strip()
        if not _SAFE_REF.fullmatch(name):
            return None
    return None


def read_refs(git_dir: Path, prefix: str) -> dict[str, str]:
    """Every ref under `prefix` (`refs/.../`, ending in `/`) -> the object id it holds, read from the files as
    `read_ref` reads one: the loose files first, then packed-refs (`pack-refs` writes it before it deletes a
    loose file, and a deletion rewrites it before it deletes the loose file). Symbolic refs are left out. A name
    that is not UTF-8 reads as a listing of the remote reads it (undecodable bytes replaced, the last by name of
    those it merges), so that the mirror of a ref anyone may push under such a name equals that listing."""
    if not prefix.endswith("/") or not _SAFE_REF.fullmatch(prefix[:-1]):
        raise ValueError(f"not a folder of refs: {prefix!r}")
    found: dict[bytes, str] = {}
    top = os.fsencode(git_dir)
    for folder, _, names in os.walk(os.fsencode(git_dir / prefix)):
        relative = os.path.relpath(folder, top).replace(os.fsencode(os.sep), b"/")
        for name in names:
            if name.endswith(b".lock"):
                continue  # a ref being written: its old value is the loose file's or the packed one
            try:
                with open(os.path.join(folder, name), "rb") as file:
                    text = file.read().decode("ascii", "replace").strip()
            except OSError:
                continue  # deleted meanwhile: packed-refs no longer holds it either
            if _OBJECT_ID.fullmatch(text):
                found[relative + b"/" + name] = text
    wanted = prefix.encode()
    for sha, ref in _packed_refs_bytes(git_dir):
        if ref.startswith(wanted):
            found.setdefault(ref, sha)
    return {ref.decode("utf-8", "replace"): found[ref] for ref in sorted(found)}


def _packed_refs(git_dir: Path) -> list[tuple[str, str]]:
    """(sha, ref) of every line of packed-refs ("#" headers and "^" peeled lines are not refs)."""
    return [(sha, ref.decode("utf-8", "replace")) for sha, ref in _packed_refs_bytes(git_dir)]


def _packed_refs_bytes(git_dir: Path) -> list[tuple[str, bytes]]:
    try:
        data = (git_dir / "packed-refs").read_bytes()
    except OSError:
        return []
    return [(sha.decode("ascii"), ref) for sha, _, ref in (line.partition(b" ") for line in data.splitlines())
            if _OBJECT_ID.fullmatch(sha.decode("ascii", "replace"))]


def _packed_ref(git_dir: Path, name: str) -> str | None:
    return next((sha for sha, ref in _packed_refs(git_dir) if ref == name), None)


def _stop(proc: subprocess.Popen) -> None:
    """End git (EOF on its stdin; killed if it does not exit) and reap it; its pipes closed."""
    try:
        if proc.stdin is not None:
            proc.stdin.close()
    except OSError:
        pass  # EPIPE flushing nothing: it is gone already
    try:
        proc.wait(timeout=_CLOSE_WAIT)
    except subprocess.TimeoutExpired:
        kill_group(proc, grace=0)
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


class ObjectReader:
    """Reads objects of the repository at `path` through one `cat-file --batch-command`, started on the first
    read and stopped by `close` (a later read starts another). Safe to share between threads."""

    def __init__(self, git: Git, path: Path):
        self.git = git
        self.path = path
        self._lock = threading.Lock()
        self._process: _Process | None = None

    def contents(self, specs: Sequence[str]) -> list[tuple[ObjectInfo, bytes] | None]:
        """Each object named (`<sha>`, `<rev>:<path>`, `<rev>^{tree}`...) with its data; None where missing."""
        return [None if header is None else (header, data or b"")
                for header, data in self._request("contents", specs)]

    def info(self, specs: Sequence[str]) -> list[ObjectInfo | None]:
        """Each object's sha, type and size, without its data; None where missing."""
        return [header for header, _ in self._request("info", specs)]

    def close(self) -> None:
        """Stop the process (git exits on EOF) and reap it. Reading again starts a new one."""
        with self._lock:
            process, self._process = self._process, None
        if process is not None:
            process.finalizer()

    @property
    def pid(self) -> int | None:
        """The running process's id, None when none runs (for tests)."""
        process = self._process
        return None if process is None else process.proc.pid

    def _request(self, command: str, specs: Sequence[str]) -> list[tuple[ObjectInfo | None, bytes | None]]:
        if any("\n" in spec for spec in specs):
            raise ValueError("object names for cat-file --batch-command must not contain newlines")
        sent = [self._by_sha(spec) for spec in specs]
        asked = [spec for spec in sent if spec]
        elsewhere = [spec for spec, by_sha in zip(specs, sent, strict=True) if by_sha is None]
        answers = iter(self._answers(command, asked) if asked else [])
        apart = iter(self._one_shot(command, elsewhere) if elsewhere else [])
        return [next(answers) if by_sha else (None, None) if by_sha == "" else next(apart) for by_sha in sent]

    def _by_sha(self, spec: str) -> str | None:
        """`spec` as the running process may be asked it: its revision a sha (a ref read here); "" when it
        names nothing; None when only a process of its own may answer it."""
        if _worktree_relative(spec):
            return ""
        end = _NAME_END.search(spec)
        name, rest = (spec[:end.start()], spec[end.start():]) if end else (spec, "")
        if _OBJECT_ID.fullmatch(name) and not rest.startswith("@"):
            return spec
        if not _SAFE_REF.fullmatch(name) or rest.startswith("@"):
            return None
        sha = read_ref(self.path, name)
        return "" if sha is None else sha + rest

    def _one_shot(self, command: str, specs: Sequence[str]) -> list[tuple[ObjectInfo | None, bytes | None]]:
        """The answers of a `cat-file --batch` of their own, which reads every ref anew."""
        mode = "--batch" if command == "contents" else "--batch-check"
        out = bytearray(self.git.run_bytes(f"--git-dir={self.path}", "cat-file", mode, cwd=self.path,
                                           input="".join(f"{spec}\n" for spec in specs).encode("utf-8",
                                                                                               "surrogateescape")))
        found = []
        for _ in specs:
            try:
                answer = _take(out, command == "contents")
            except _Died:
                answer = None
            if answer is None:
                raise GitError(("cat-file", mode), 0, out[:200].decode("utf-8", "replace"), "an answer is cut short")
            found.append((_info(answer[0]), answer[1]))
        return found

    def _answers(self, command: str, specs: Sequence[str]) -> list[tuple[ObjectInfo | None, bytes | None]]:
        request = "".join(f"{command} {spec}\n" for spec in specs).encode("utf-8", "surrogateescape")
        with self._lock:
            for attempt in (1, 2):
                if self._process is None:
                    self._process = _Process(self.git, self.path)
                process = self._process
                try:
                    answers = process.exchange(request, len(specs), command == "contents",
                                               time.monotonic() + self.git.timeout)
                except TimeoutError:
                    self._process = None
                    process.kill()
                    raise GitTimeout(process.argv, self.git.timeout) from None
                except _Died:
                    self._process = None
                    error = process.failure(f"it ended while answering {command} {specs[0]}")
                    if attempt == 2:
                        raise error from None
                    continue  # a new process, once: the read repeats safely
                except BaseException:
                    self._process = None  # interrupted mid-answer: out of step with git
                    process.kill()
                    raise
                return [(_info(header), data) for header, data in answers]
        raise AssertionError("unreachable")


def _worktree_relative(spec: str) -> bool:
    """Whether `spec` names a path relative to a worktree (`<rev>:./x`, `:../x`): in a bare repository it names
    nothing, and git dies on it, taking every later request with it. The path is what follows the first `:`
    outside braces (`<rev>@{...}`), as git reads it."""
    depth = 0
    for at, char in enumerate(spec):
        if char == "{":
            depth += 1
        elif char == "}" and depth:
            depth -= 1
        elif char == ":" and not depth:
            path = spec[at + 1:]
            if at == 0 and path[1:2] == ":" and path[:1] in ("0", "1", "2", "3"):
                path = path[2:]  # an index stage, `:0:path`
            return path.startswith(("./", "../"))
    return False


def _info(header: bytes) -> ObjectInfo | None:
    match = _OBJECT_HEADER.fullmatch(header.decode("ascii", "replace"))
    return None if match is None else ObjectInfo(match["sha"], match["type"], int(match["size"]))
