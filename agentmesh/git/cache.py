"""The per-host cache clone: a bare repository under the state directory.

It holds the objects agentmesh builds (claim commits, work commits) and a
mirror of the remote refs it has fetched, under `refs/mirror/<ref without
refs/>`. The remote URL is passed on every call and never written into its
config. Concurrent fetches and worktree operations on one clone fail
intermittently (docs/design/protocol.md, "The measurements behind it"), so
they, and every other ref write in the clone, take the clone's file lock:
git's own ref locks make a second writer fail at once instead of wait.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from agentmesh.core.errors import TemporaryError
from agentmesh.core.record import Record
from agentmesh.git.batch import ObjectInfo, ObjectReader, read_ref, read_refs
from agentmesh.git.objects import commit_fields, tree_data, write_loose
from agentmesh.git.remote import RemoteRefs, ls_refs, remote_failure, stale_ref_locks
from agentmesh.git.run import Git, GitError, GitTimeout, GitTransient, git_error
from agentmesh.git.signing import SESSION_PREFIX, PendingSignature, SigningSession, sweep_sessions, write_signed_commit

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the claim path
if TYPE_CHECKING:
    from filelock import FileLock

MIRROR = "refs/mirror/"
# a bytes pattern: `re` compiles it on first use and keeps it (core/pattern.py is for str patterns)
_BLAME_HEADER = rb"[0-9a-f]{40}(?:[0-9a-f]{24})? \d+ \d+(?: \d+)?"
MIRROR_HEAD = "refs/mirror/HEAD"  # symbolic: the remote default branch as last fetched
LOCK_TIMEOUT = 120.0
PACKS_KEPT = 32  # past this many packs (one a fetch, see _FETCH) a fetch rolls the small ones up
REPACK_TIMEOUT = 900.0  # that roll-up, the clone's lock held: a first one on a big clone outlasts git's timeout
# A fetch's objects land as one pack, seen all at once when its index is renamed into place. git's default
# (`unpack-objects` below 100 objects) writes them one by one, a commit before its trees: another run of
# this host reading meanwhile (or after the fetch was killed) finds the commit without its tree, and
# `merge-tree` reads a missing tree as an empty one, exit 0: a merge that drops every file.
_FETCH = ("-c", "fetch.unpackLimit=1", "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--no-auto-gc",
          "--no-recurse-submodules")
_DELETED = "couldn't find remote ref"  # git fetch: a ref named in a refspec is not on the remote (any longer)
TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the claim path
if TYPE_CHECKING:
    from typing import TypeVar

    T = TypeVar("T")
LOOSE_REFS_KEPT = 64  # more new loose refs than this are packed: every later read of the folder opens them all


class GitObject(Record):
    sha: str
    type: str  # blob, tree, commit, tag
    data: bytes


class IncompleteClone(TemporaryError):
    """The cache clone holds a commit or tree without what it points to: another run of this host is
    fetching into it, or an older fetch was cut short. Retried later; removing the clone (a cache) mends it."""

    def __init__(self, path: Path, what: str):
        super().__init__(f"{what}: the cache clone {path} lacks objects (a fetch under way or cut short); the next "
                         f"run tries again, and removing that folder (a cache, fetched anew) mends it for good")


class MergedTree(Record):
    """What `merge-tree --write-tree` made of two commits: a tree, or the paths that conflict."""

    tree: str | None
    conflicts: tuple[str, ...] = ()


class TreeEntry(Record):
    mode: str
    name: str
    sha: str

    @property
    def type(self) -> str:
        return "tree" if self.mode == "40000" else "commit" if self.mode == "160000" else "blob"


class PathHistory(Record):
    """Which commits changed which file (newest first), and the merge commits met on the way."""

    touched: dict[str, list[str]]
    merges: tuple[str, ...]


def parse_tree(data: bytes) -> list[TreeEntry]:
    """Entries of a raw tree object as `cat-file --batch` prints it: `<mode> <name>\\0<20-byte id>`."""
    entries = []
    pos = 0
    while pos < len(data):
        nul = data.index(b"\0", pos)
        mode, _, name = data[pos:nul].partition(b" ")
        entries.append(TreeEntry(mode.decode(), name.decode("utf-8", "surrogateescape"),
                                 data[nul + 1:nul + 21].hex()))
        pos = nul + 21
    return entries


def mirror_ref(remote_ref: str) -> str:
    """refs/heads/claim/42 -> refs/mirror/heads/claim/42"""
    if not remote_ref.startswith("refs/"):
        raise ValueError(f"not a full ref name: {remote_ref!r}")
    return MIRROR + remote_ref[len("refs/"):]


class CacheClone:
    def __init__(self, git: Git, path: Path, url: str):
        self.git = git
        self.path = path
        self.url = url
        self._lock: FileLock | None = None  # made on first use: a claim that fetches nothing never imports filelock
        self._sha1_format: bool | None = None
        self._pending: PendingSignature | None = None  # see `presign`
        # every object read goes through it: one `cat-file` process until `close`, not one per read
        self.reader = ObjectReader(git, path)
        self._sessions: dict[int, SigningSession] = {}  # see `signing`: a thread's own (jobs run in threads)

    def close(self) -> None:
        """Stop the clone's `cat-file` process (the run's end); reading again starts another."""
        self.reader.close()

    def _file_lock(self) -> FileLock:
        """The clone's lock file, made on first use."""
        if self._lock is None:
            from filelock import FileLock

            self._lock = FileLock(str(self.path) + ".lock")
        return self._lock

    @contextmanager
    def locked(self, timeout: float = LOCK_TIMEOUT):
        from filelock import Timeout

        try:
            with self._file_lock().acquire(timeout=timeout):
                yield self
        except Timeout:
            raise TemporaryError(f"cache clone {self.path} is busy (lock held > {timeout:g}s)") from None

    @contextmanager
    def mirroring(self, wanted: bool = True) -> Iterator[str | None]:
        """For a push from this clone that moves the mirror refs of what lands (`push(mirror=...)`): the
        mirror namespace, with the clone's lock held, as every ref write here holds it (a fetch racing
        the write would fail on git's ref lock); None when the lock is busy: the push does not wait, and
        leaves the mirror stale for the next fetch to move. None, taking nothing, unless `wanted`."""
        if not wanted:
            yield None
            return
        from filelock import Timeout

        lock = self._file_lock()
        try:
            lock.acquire(timeout=0)
        except Timeout:
            yield None
            return
        try:
            yield MIRROR
        finally:
            lock.release()

    def ensure(self) -> CacheClone:
        """Create the clone if missing; a broken one is moved aside and rebuilt (it is only a cache)."""
        if self._valid():
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.locked():
            if self.path.exists() and not self._valid():
                self.path.rename(self.path.with_name(f"{self.path.name}.broken-{int(time.time())}"))
            if not self.path.exists():
                tmp = self.path.with_name(self.path.name + ".init")
                init_bare(self.git, tmp)
                tmp.rename(self.path)
        return self

    def _valid(self) -> bool:
        """What git checks before it takes a folder for a repository (setup.c, is_git_directory): a HEAD that
        names a ref or an object, and objects/ and refs/. Read here, not asked of a git process: every
        command that touches the remote starts by this."""
        try:
            head = (self.path / "HEAD").read_text(errors="replace").strip()
        except OSError:
            return False
        names = head.startswith("ref: refs/") or re.fullmatch(r"[0-9a-f]{40}([0-9a-f]{24})?", head) is not None
        return names and (self.path / "objects").is_dir() and (self.path / "refs").is_dir()

    def run(self, *args: str, **kwargs):
        # --git-dir: never discover an enclosing repository if the clone is damaged
        return self.git.run(f"--git-dir={self.path}", *args, cwd=self.path, **kwargs)

    def fetch(self, remote_refs: Sequence[str], *, prune: bool = False, timeout: float | None = None) -> None:
        """Fetch exact refs (or `prefix*` patterns) into the mirror namespace.

        With prune, mirror refs matching a pattern that the remote no longer
        has are deleted, so the mirror equals the remote for that pattern.
        """
        refspecs = [f"+{ref}:{mirror_ref(ref)}" for ref in remote_refs]
        with self.locked():
            try:
                self._fetch(*(["--prune"] if prune else []), self.url, *refspecs, timeout=timeout)
            except (GitError, GitTimeout) as exc:
                raise remote_failure(exc, self.url) from None

    def _fetch(self, *args: str, timeout: float | None = None) -> None:
        self._write(*_FETCH, *args, timeout=timeout)
        self._roll_up_packs()

    def _roll_up_packs(self) -> None:
        """A pack a fetch: past PACKS_KEPT, `repack --geometric=2 -d` rolls the small ones into one and leaves the
        big ones be. It keeps every object of the packs it rolls up (no prune, no walk of what is reachable), so a
        run reading meanwhile, or holding an object's id, loses nothing; loose objects stay as they were. Not
        detached: no repack outlives the run holding the clone's lock. One stopped at its timeout is left at
        that (its new pack is written before the old ones go): housekeeping, the fetch is done."""
        try:
            packs = sum(1 for entry in os.scandir(self.path / "objects" / "pack") if entry.name.endswith(".pack"))
        except OSError:
            return
        if packs > PACKS_KEPT:
            try:
                self.run("repack", "--geometric=2", "-d", "--quiet", check=False, timeout=REPACK_TIMEOUT)
            except GitTimeout:
                pass

    def _write(self, *args: str, timeout: float | None = None) -> None:
        """A git command that writes refs in the clone, its lock held. A ref lock file a git killed mid-write left
        (SIGKILL, a run's timeout) refuses every later write of that ref (or of packed-refs): once older than any
        live write, it is removed (nobody else writes here: the clone's lock is ours) and the command runs again."""
        try:
            self.run(*args, timeout=timeout)
        except GitTransient:
            stale = stale_ref_locks(self.path, time.time())
            if not stale:
                raise
            for name, _ in stale:
                (self.path / name).unlink(missing_ok=True)
            self.run(*args, timeout=timeout)

    def mirror_listed(self, listing: RemoteRefs, prefixes: Sequence[str], refs: Sequence[str] = ()) -> None:
        """Bring the mirror of `prefixes` (each ending in `/`) and of `refs` up to the remote where `listing` (a
        listing of them all, made a moment ago) shows it behind, in one fetch, so that the run's reads after it
        find each ref at its listed sha and fetch nothing (agent/base.guarded_run). Refs are fetched by name:
        the mirror gets what the remote holds by then, never older than the listing nor than what another run
        of this host mirrored after its own push meanwhile. A prefix with a ref the remote no longer lists, or
        more than LOOSE_REFS_KEPT changed, is fetched as a pattern with --prune, the others by their changed
        refs. A fetch that fails for another reason than the remote (a ref deleted since the listing) leaves the
        mirror to those readers, which fetch what they miss as before."""
        if not self._behind(listing, prefixes, refs):
            return  # read without the lock: a run with nothing new takes none
        with self.locked():
            wanted = self._behind(listing, prefixes, refs)
            if not wanted:
                return
            try:
                self._fetch("--prune", self.url, *(f"+{ref}:{mirror_ref(ref)}" for ref in wanted))
            except GitError as exc:
                if _DELETED not in (exc.stderr or exc.stdout):
                    raise remote_failure(exc, self.url) from None
                return  # deleted since the listing: the readers see it (their own listings) and fetch
            except GitTimeout as exc:
                raise remote_failure(exc, self.url) from None
            if len(wanted) > LOOSE_REFS_KEPT or any(ref.endswith("*") for ref in wanted):
                for prefix in prefixes:  # a new host's first run: thousands of items each a file of its own
                    self.pack_loose_refs(mirror_ref(prefix))

    def _behind(self, listing: RemoteRefs, prefixes: Sequence[str], refs: Sequence[str]) -> list[str]:
        """The refspec sources `mirror_listed` fetches: a prefix's pattern when the mirror has a ref the listing
        does not or more than LOOSE_REFS_KEPT differ, else its refs whose mirror differs, and each of `refs`
        whose mirror differs."""
        wanted: list[str] = []
        for prefix in prefixes:
            listed = {ref: sha for ref, sha in listing.refs.items() if ref.startswith(prefix)}
            mirror_prefix = mirror_ref(prefix)
            mirrored = {prefix + mref[len(mirror_prefix):]: sha
                        for mref, sha in read_refs(self.path, mirror_prefix).items()}
            changed = [ref for ref, sha in listed.items() if mirrored.get(ref) != sha]
            # many changed (a new host's thousands of items): by name, git matches every refspec against every
            # ref (3000 items took 28 s) and their argv outgrows the kernel's limit (E2BIG at ~30000)
            if mirrored.keys() - listed.keys() or len(changed) > LOOSE_REFS_KEPT:
                wanted.append(prefix + "*")
            else:
                wanted.extend(changed)
        wanted.extend(ref for ref in refs
                      if (sha := listing.get(ref)) is not None and read_ref(self.path, mirror_ref(ref)) != sha)
        return wanted

    def fetch_default_branch(self, branch: str | None = None, *, listing: RemoteRefs | None = None) -> str | None:
        """Fetch the remote's default branch (or `branch`); its sha, or None while unborn. `listing`:
        a fresh listing that includes HEAD, when the caller already made one."""
        target: str | None
        if branch:
            target = f"refs/heads/{branch}"
        else:
            listing = listing or ls_refs(self.git, self.url, ["HEAD"])
            target = listing.symrefs.get("HEAD")
            if target is None or listing.get("HEAD") is None:
                return None
        listed = None if listing is None else listing.get(target) or (None if branch else listing.get("HEAD"))
        mirror = mirror_ref(target)
        if listed is not None and self._mirror_head() == mirror and self.resolve(mirror) == listed:
            return listed  # our own push moved the mirror there (a merge), or an earlier fetch: nothing to fetch
        with self.locked():  # reentrant: fetch takes it too
            self.fetch([target])
            self.run("symbolic-ref", MIRROR_HEAD, mirror_ref(target))
        return self.resolve(MIRROR_HEAD)

    def _mirror_head(self) -> str | None:
        """The ref MIRROR_HEAD names (a symbolic ref is a file of its own: git never packs one), None if none."""
        try:
            text = (self.path / MIRROR_HEAD).read_text(errors="replace").strip()
        except OSError:
            return None
        return text[len("ref: "):] if text.startswith("ref: ") else None

    def fetched_at(self, remote_ref: str, listed: str | None) -> str | None:
        """The mirror of `remote_ref`, fetched first unless it is at `listed` already (the sha a listing made a
        moment ago shows)."""
        mirror = mirror_ref(remote_ref)
        if listed is not None and self.resolve(mirror) == listed:
            return listed
        self.fetch([remote_ref])
        return self.resolve(mirror)

    def default_head(self) -> str | None:
        return self.resolve(MIRROR_HEAD)

    def default_branch_ref(self) -> str | None:
        """The remote's default branch as a remote ref name (refs/heads/main), as last fetched."""
        target = self.run("symbolic-ref", "--quiet", MIRROR_HEAD, check=False).stdout.strip()
        return "refs/" + target[len(MIRROR):] if target.startswith(MIRROR) else None

    def read_file(self, ref: str, path: str) -> str | None:
        """A file's text at a local ref, or None when absent."""
        obj = self.cat_objects([f"{ref}:{path}"])[0]
        return obj.data.decode("utf-8", "replace") if obj is not None and obj.type == "blob" else None

    def file_mode(self, rev: str, path: str) -> str | None:
        """The git mode of the entry at `path` in `rev` (100644, 100755, 120000, 40000...), None when absent."""
        out = self.run("ls-tree", "-z", "--full-tree", rev, "--", path, check=False).stdout
        for record in out.split("\0"):
            meta, _, name = record.partition("\t")
            if name == path:
                return meta.split(" ")[0]
        return None

    def resolve(self, ref: str) -> str | None:
        """The commit `ref` names, None when there is none (what `rev-parse --verify --quiet` says)."""
        found = self.reader.info([ref + "^{commit}"])[0]
        return found.sha if found is not None else None

    def tree_of(self, commit: str) -> str:
        found = self.reader.info([commit + "^{tree}"])[0]
        if found is None:  # what `git rev-parse --verify` would say, as the bug it is for every caller
            raise GitError(("rev-parse", "--verify", commit + "^{tree}"), 128, "", "fatal: Needed a single revision")
        return found.sha

    def has_object(self, sha: str) -> bool:
        return self.reader.info([sha + "^{commit}"])[0] is not None

    def presign(self) -> None:
        """Start the ssh-keygen that will sign the next commit `commit_tree` writes, before that commit is known
        (git/signing.PendingSignature): for a command that writes one signed commit after a git call, a claim."""
        if self._pending is None and self.git.signing_key is not None:
            self._pending = PendingSignature(self.git)

    def abandon_presigned(self) -> None:
        """Stop a `presign`ed ssh-keygen that signed nothing (the command ended before its commit)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.abandon()

    @contextmanager
    def signing(self, slots: int) -> Iterator[None]:
        """Within it, the commits `commit_tree` writes (up to `slots` of them, any further ones as usual) are
        signed by one ssh-keygen, started now (git/signing.SigningSession): for the commits of one push.
        Its FIFOs are in a private folder beside the clone, removed at the end. Nested: the outer one's. Each
        thread has its own: a job's thread never signs with another's."""
        thread = threading.get_ident()
        if thread in self._sessions or self.git.signing_key is None or not self._sha1():
            yield
            return
        import tempfile  # here: a claim that signs alone never imports it

        try:
            sweep_sessions(self.path.parent)
            folder = Path(tempfile.mkdtemp(prefix=f"{SESSION_PREFIX}{os.getpid()}-", dir=self.path.parent))  # 0700
        except OSError:
            yield  # a read-only state dir: signed one by one
            return
        self._sessions[thread] = session = SigningSession(self.git, folder, slots)
        try:
            yield
        finally:
            del self._sessions[thread]
            session.close()

    def commit_tree(self, tree: str, parents: Sequence[str], message: str) -> str:
        """Write one commit (signed when the runner has a key): a signed one without a git process when it can."""
        pending, self._pending = self._pending, None
        if self.git.signing_key is not None and self._sha1():
            sha = write_signed_commit(self.git, self.path, tree, parents, message, pending=pending,
                                      session=self._sessions.get(threading.get_ident()) if self._sessions else None)
            if sha is not None:
                return sha
        elif pending is not None:
            pending.abandon()
        return self.git.commit_tree(tree, parents, message, cwd=self.path)

    def empty_tree(self) -> str:
        return self.make_tree([])

    def ref_records(self, patterns: Sequence[str]) -> dict[str, tuple[str, str, int | None]]:
        """ref -> (sha, full message, committer time) for local refs under the folders `patterns` (`refs/.../`):
        what `git for-each-ref --format=%(objectname)%(contents)%(committerdate:unix)` says, without a process
        (the refs from their files, the commits through the run's `cat-file`). A ref whose object is missing is
        left out, as if it were not there: its reader then finds the mirror behind the remote, and fetches."""
        refs: dict[str, str] = {}
        for pattern in patterns:
            refs.update(read_refs(self.path, pattern))
        objects = self.cat_objects(list(refs.values()))
        found = {}
        for (ref, sha), obj in zip(refs.items(), objects, strict=True):
            if obj is not None:
                found[ref] = (sha, *commit_fields(obj.data)) if obj.type == "commit" else (sha, "", None)
        return found

    def commit_times(self, pattern: str) -> dict[str, int]:
        """ref -> committer time (seconds since the epoch, by the committer's clock) for local refs under the
        folder `pattern`: `ref_records`' times."""
        return {ref: stamp for ref, (_, _, stamp) in self.ref_records([pattern]).items() if stamp is not None}

    def commit_message(self, sha: str) -> str:
        """The commit object's text: headers, a blank line, then the message."""
        obj = self.cat_objects([sha + "^{commit}"])[0]
        if obj is None:  # what `git cat-file commit` would say, as the bug it is for every caller
            raise GitError(("cat-file", "commit", sha), 128, "", f"fatal: {sha}^{{commit}}: missing in {self.path}")
        return obj.data.decode("utf-8", "replace")

    def commit_time(self, sha: str) -> int:
        """The committer timestamp of `sha` (seconds since the epoch, as the committer's clock said)."""
        return int(self.run("show", "-s", "--format=%ct", sha).stdout.strip())

    def merge_base(self, a: str, b: str) -> str | None:
        return self.run("merge-base", a, b, check=False).stdout.strip() or None

    def log_messages(self, revisions: str, *options: str) -> list[tuple[str, str]]:
        """(sha, message) of every commit in `revisions` (e.g. `base..head`), newest first; `options`
        such as `--first-parent` and `--max-count=N` narrow the walk."""
        out = self.run("log", "--format=%H%x00%B%x1e", *options, revisions).stdout
        records = [r.strip().split("\0", 1) for r in out.split("\x1e") if r.strip()]
        return [(r[0], r[1] if len(r) > 1 else "") for r in records]

    def log_dated(self, revisions: str, *options: str) -> list[tuple[str, int, str]]:
        """(sha, committer time, message) of every commit in `revisions`, newest first: log_messages with
        each commit's own date (seconds since the epoch, by the committer's clock)."""
        out = self.run("log", "--format=%H %ct%x00%B%x1e", *options, revisions).stdout
        found = []
        for record in out.split("\x1e"):
            head, _, message = record.strip().partition("\0")
            sha, _, stamp = head.partition(" ")
            if re.fullmatch(r"[0-9a-f]{40,64}", sha) and stamp.isdigit():  # a message may hold the separators
                found.append((sha, int(stamp), message))
        return found

    def tree_names(self, rev: str, prefix: str, *, recursive: bool = False) -> list[str]:
        """Paths under `prefix` in `rev`'s tree (one level unless `recursive`)."""
        args = ["ls-tree", "-z", "--name-only"] + (["-r"] if recursive else []) + [rev, "--", prefix]
        return [n for n in self.run(*args).stdout.split("\0") if n]

    def dir_names(self, rev: str, dirs: Sequence[str]) -> dict[str, list[str]]:
        """directory -> the paths of its entries in `rev`'s tree (one level, as `tree_names` lists them; a
        missing directory lists nothing), for every directory in one `cat-file --batch`."""
        trees = self.cat_objects([f"{rev}:{d}" for d in dirs])
        return {d: [f"{d}/{e.name}" for e in parse_tree(t.data)] if t is not None and t.type == "tree" else []
                for d, t in zip(dirs, trees, strict=True)}

    def cat_objects(self, specs: Sequence[str]) -> list[GitObject | None]:
        """Read many objects (`<sha>`, `<rev>:<path>`) in one request to the clone's `cat-file`; None where
        missing. A ref is resolved as it is now, after any fetch since the last read."""
        return [None if found is None else GitObject(found[0].sha, found[0].type, found[1])
                for found in self.reader.contents(specs)]

    def commit_objects(self, shas: Sequence[str]) -> dict[str, bytes | None]:
        """sha -> the commit object's data (headers, a blank line, the message), in one request to the clone's
        `cat-file`; None where missing or not a commit."""
        wanted = list(dict.fromkeys(shas))
        return {sha: obj.data if obj is not None and obj.type == "commit" else None
                for sha, obj in zip(wanted, self.cat_objects(wanted))}

    def object_info(self, specs: Sequence[str]) -> list[ObjectInfo | None]:
        """Each object's sha, type and size, without its data; None where missing."""
        return self.reader.info(specs)

    def _sha1(self) -> bool:
        """Whether the clone names objects by SHA-1, so `git.objects` may write them (read once)."""
        if self._sha1_format is None:
            try:
                config = (self.path / "config").read_text(errors="replace").lower()
            except OSError:
                config = "objectformat"
            self._sha1_format = "objectformat" not in config or "objectformat = sha1" in config
        return self._sha1_format

    def write_blob(self, data: bytes) -> str:
        if self._sha1():
            return write_loose(self.path, "blob", data)
        return self.git.run_bytes("hash-object", "-t", "blob", "-w", "--stdin", cwd=self.path,
                                  input=data).decode().strip()

    def make_tree(self, entries: Iterable[TreeEntry]) -> str:
        """Write a tree from entries (names must not contain NUL; mktree -z takes any other byte)."""
        entries = list(entries)
        if self._sha1():
            return write_loose(self.path, "tree", tree_data((e.mode, e.name, e.sha) for e in entries))
        text = "".join(f"{e.mode} {e.type} {e.sha}\t{e.name}\0" for e in entries)
        return self.run("mktree", "-z", input=text).stdout.strip()

    def tree_entries(self, tree: str | None) -> list[TreeEntry]:
        if tree is None:
            return []
        obj = self.cat_objects([tree])[0]
        return parse_tree(obj.data) if obj is not None and obj.type == "tree" else []

    def edit_tree(self, tree: str | None, path: str, data: bytes | None) -> str:
        """A new tree: `tree` with the file at `path` set to `data`, or removed when None.

        Directories emptied by a removal disappear, as they would in a checkout.
        """
        return self.edit_tree_files(tree, {path: data})

    def edit_tree_files(self, tree: str | None, files: Mapping[str, bytes | None]) -> str:
        """A new tree: `tree` with every file of `files` (path -> data, None removes it) set. The trees
        on the way are read in one `cat-file --batch` and the new ones written without git (one process
        per directory made each edit cost a process per level). Directories a removal empties disappear."""
        dirs: set[str] = set()
        for path in files:
            parts = path.split("/")
            if not path or "\0" in path or any(not p or p in (".", "..", ".git") for p in parts):
                raise ValueError(f"invalid path {path!r}")
            dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))
        old: dict[str, list[TreeEntry]] = {}
        if tree is not None:
            specs = sorted(dirs)
            objs = self.cat_objects([tree, *(f"{tree}:{d}" for d in specs)])
            for at, obj in zip(["", *specs], objs, strict=True):
                if obj is not None and obj.type == "tree":
                    old[at] = parse_tree(obj.data)
            # a tree that is there but cannot be read would be edited as an empty one: every other file dropped
            unread = [at for at, obj in zip(["", *specs], objs, strict=True) if obj is None]
            self.check_listed(f"editing tree {tree[:12]}", old, unread)
        return self._edited(old, "", dict(files)) or self.make_tree([])

    def read_paths(self, commit: str, paths: Sequence[str]) -> tuple[GitObject, dict[str, GitObject | None]]:
        """The root tree of `commit` and the objects at `paths` (None: no such path), in one `cat-file` request.
        A path its folder lists whose object cannot be read raises IncompleteClone: it is not absent."""
        return self._mending([commit], lambda: self._read_paths(commit, paths))

    def _mending(self, commits: Sequence[str], read: Callable[[], T]) -> T:
        """`read()`; when it meets an object the clone lacks, once more after fetching `commits` whole again
        (`--refetch`: a plain fetch sends nothing for a commit the clone says it has). What is left so: a
        commit without its tree, from a fetch an older agentmesh unpacked and was killed in (or read meanwhile)."""
        try:
            return read()
        except IncompleteClone as lacking:
            try:
                with self.locked():
                    self._fetch("--refetch", self.url, *commits)
            except (GitError, GitTimeout):
                raise lacking from None
            return read()

    def _read_paths(self, rev: str, paths: Sequence[str]) -> tuple[GitObject, dict[str, GitObject | None]]:
        dirs = sorted({"/".join(p.split("/")[:i]) for p in paths for i in range(1, p.count("/") + 1)})
        root, *objs = self.cat_objects([f"{rev}^{{tree}}", *(f"{rev}:{at}" for at in [*dirs, *paths])])
        found = dict(zip([*dirs, *paths], objs, strict=True))
        read = [("", root), *found.items()]
        trees = {at: parse_tree(obj.data) for at, obj in read if obj is not None and obj.type == "tree"}
        self.check_listed(f"reading {rev[:12]}", trees, [at for at, obj in read if obj is None])
        assert root is not None  # checked: the root is always listed
        return root, {path: found[path] for path in paths}

    def listed_objects(self, entries: Sequence[TreeEntry], what: str) -> list[GitObject]:
        """The objects of tree `entries`, in order, in one `cat-file` request. One the clone lacks raises
        IncompleteClone: a file its tree lists is never absent (skipped, a month's journal would be rewritten
        without its earlier entries, a reviewer's later 'request changes' lost beside their approval)."""
        objs = self.cat_objects([e.sha for e in entries])
        for entry, obj in zip(entries, objs, strict=True):
            if obj is None:
                raise IncompleteClone(self.path, f"{what}: {entry.name} cannot be read")
        return [obj for obj in objs if obj is not None]

    def check_listed(self, what: str, trees: Mapping[str, list[TreeEntry]], unread: Iterable[str]) -> None:
        """`unread`: folders or files (by path, "" the root) whose objects were not read. The first one the tree
        says is there (the root always; else its folder, read, lists it) raises IncompleteClone: an object
        missing from the clone, which a reader would take for a path missing from the tree."""
        for path in unread:
            parent, _, name = path.rpartition("/")
            # a submodule's commit is never in the clone
            if path == "" or any(e.name == name and e.type != "commit" for e in trees.get(parent, ())):
                raise IncompleteClone(self.path, f"{what}: {path or 'its root'} cannot be read")

    def _edited(self, old: Mapping[str, list[TreeEntry]], at: str, files: dict[str, bytes | None]) -> str | None:
        """The tree at directory `at` (`old[at]` as it was) with `files` (relative to it) applied; None
        when it ends up empty."""
        here: dict[str, bytes | None] = {}
        below: dict[str, dict[str, bytes | None]] = {}
        for path, data in files.items():
            name, _, rest = path.partition("/")
            if rest:
                below.setdefault(name, {})[rest] = data
            else:
                here[name] = data
        entries = {e.name: e for e in old.get(at, [])}
        for name, data in here.items():
            if data is None:
                entries.pop(name, None)
            else:
                entries[name] = TreeEntry("100644", name, self.write_blob(data))
        for name, sub in below.items():
            inner = f"{at}/{name}" if at else name
            previous = entries.get(name)
            # a file where a directory is wanted: it is replaced, as a checkout would do
            sub_old = old if previous is not None and previous.type == "tree" else {}
            sha = self._edited(sub_old, inner, sub)
            if sha is None:
                entries.pop(name, None)
            else:
                entries[name] = TreeEntry("40000", name, sha)
        return self.make_tree(entries.values()) if entries else None

    def pack_loose_refs(self, prefix: str, threshold: int = LOOSE_REFS_KEPT) -> bool:
        """Pack refs when more than `threshold` loose ones sit directly under `prefix`.

        A fetch writes each new ref as its own file, and every later fetch and
        for-each-ref opens them all: packing once keeps listing many items fast.
        """
        directory = self.path / prefix.rstrip("/")
        try:
            loose = sum(1 for entry in directory.iterdir() if entry.is_file())
        except OSError:
            return False
        if loose <= threshold:
            return False
        with self.locked():
            self._write("pack-refs", "--all")
        return True

    def commits_between(self, base: str, head: str) -> list[str]:
        """The commits reachable from `head` but not from `base`, newest first."""
        return self.run("rev-list", f"{base}..{head}").stdout.split()

    def last_writers(self, rev: str, folder: str) -> dict[str, str]:
        """path under `folder` -> the newest commit on `rev`'s first-parent line that wrote it, in one `git log`.
        First parents only, each commit diffed against its first parent (merges included): a plain `git log`
        shows no paths for a merge, so a merge that rewrote a file would leave it to an older writer."""
        writers: dict[str, str] = {}
        for sha, paths in self.paths_by_commit("--first-parent", "--diff-merges=first-parent", rev, "--", folder):
            for path in paths:
                writers.setdefault(path, sha)
        return writers

    def paths_by_commit(self, *log_args: str) -> list[tuple[str, tuple[str, ...]]]:
        """(commit, the paths it changes) for each commit `git log *log_args` lists, newest first, in one
        `git log` (renames as delete and add; unusual names stay C-quoted)."""
        out = self.run("log", "--format=%x01%H", "--name-only", "--no-renames", *log_args).stdout
        found = []
        for record in out.split("\x01")[1:]:
            sha, _, paths = record.partition("\n")
            found.append((sha.strip(), tuple(p for p in paths.split("\n") if p)))
        return found

    def path_history(self, rev: str | Sequence[str], paths: Sequence[str]) -> PathHistory:
        """The commits of `rev`'s history (of several revs: all of theirs) that changed each of `paths`,
        newest first, in one `git log`. The walk stops where none of the paths exists yet
        (`--remove-empty`): older commits cannot have written a line the files hold now."""
        if not paths:
            return PathHistory({}, ())
        revs = [rev] if isinstance(rev, str) else list(rev)
        out = self.run("--literal-pathspecs", "log", "--format=%x01%H %P", "--name-only", "--no-renames", "--root",
                       "--remove-empty", *revs, "--", *paths).stdout
        touched: dict[str, list[str]] = {path: [] for path in paths}
        merges = []
        for record in out.split("\x01")[1:]:
            header, _, names = record.partition("\n")
            sha, *parents = header.split()
            if len(parents) > 1:
                merges.append(sha)  # `--name-only` lists no paths for a merge: the caller must not trust it
            for name in names.split("\n"):
                if name in touched:
                    touched[name].append(sha)
        return PathHistory(touched, tuple(merges))

    def blame(self, rev: str, path: str) -> list[tuple[str, bytes]]:
        """(the commit that wrote it, the line) for every line of `path` at `rev`, in order."""
        out = self.git.run_bytes(f"--git-dir={self.path}", "blame", "--porcelain", rev, "--", path, cwd=self.path)
        lines: list[tuple[str, bytes]] = []
        current = ""
        for line in out.split(b"\n"):
            if line.startswith(b"\t"):
                lines.append((current, line[1:]))
            elif re.fullmatch(_BLAME_HEADER, line):
                current = line.split(b" ", 1)[0].decode()
        return lines

    def ref_shas(self, prefix: str) -> dict[str, str]:
        """ref -> sha of the local refs under `prefix`, in one for-each-ref."""
        out = self.run("for-each-ref", "--format=%(objectname) %(refname)", prefix).stdout
        return {ref: sha for sha, _, ref in (line.partition(" ") for line in out.splitlines())}

    def merge_trees(self, base: str, head: str) -> MergedTree:
        """Merge two commits without a worktree (git >= 2.38); nothing is committed."""
        return self._mending([base, head], lambda: self._merge_trees(base, head))

    def _merge_trees(self, base: str, head: str) -> MergedTree:
        result = self.run("merge-tree", "--write-tree", "--name-only", "--no-messages", base, head, check=False)
        # a tree it could not read was merged as an empty one, and it still exits 0. Not `fatal:` (exit 128, no
        # tree): "refusing to merge unrelated histories" is no missing object, nor mended by a retry
        unread = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        if unread:
            raise IncompleteClone(self.path, f"merging {base[:12]} with {head[:12]}: {unread[0]}")
        lines = result.stdout.splitlines()
        if result.returncode == 1:
            return MergedTree(None, tuple(lines[1:]))  # the first line is the tree with conflict markers
        if result.returncode != 0 or not lines:
            raise git_error(result.args, result.returncode, result.stdout, result.stderr)
        return MergedTree(lines[0])

    def update_ref(self, ref: str, sha: str) -> None:
        """Point a local ref at `sha`, e.g. a mirror ref at what a push just landed."""
        self.update_refs({ref: sha})

    def update_refs(self, refs: Mapping[str, str | None]) -> None:
        """Point local refs at shas (None deletes one) in one `update-ref --stdin` transaction."""
        lines = [f"update {ref} {sha}\n" if sha else f"delete {ref}\n" for ref, sha in refs.items()]
        if any("\n" in ref or " " in ref for ref in refs):
            raise ValueError("ref names for update-ref --stdin must not contain spaces or newlines")
        if lines:
            with self.locked():
                self.run("update-ref", "--stdin", input="".join(lines))

    # For a repository nothing else uses yet (`forge init` building a remote), so without the
    # lock, whose file would be left next to that repository.

    def create_ref(self, ref: str, sha: str) -> None:
        """Point a new ref at `sha`; fails if the ref already exists."""
        self.run("update-ref", ref, sha, "")

    def set_head(self, ref: str) -> None:
        """Point HEAD at `ref` (a bare repository's default branch)."""
        self.run("symbolic-ref", "HEAD", ref)


def init_bare(git: Git, path: Path, *, initial_branch: str | None = None) -> None:
    """Create an empty bare repository at `path`."""
    branch = [f"--initial-branch={initial_branch}"] if initial_branch else []
    git.run("init", "--bare", "--quiet", *branch, str(path))
