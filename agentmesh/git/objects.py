"""Writing blob and tree objects into a repository without starting git.

A step of the local forge or a journal flush writes a handful of small blobs and trees; one
`hash-object` or `mktree` process each made up a large share of a tick's git processes. These
objects are plain data in git's documented loose format (zlib of `<type> <size>\\0<content>`, named
by its SHA-1): writing them here costs no process. So are signed commits of the cache clone
(git/signing.py: one ssh-keygen, no git process); other commits are written by `git commit-tree`.
Only SHA-1 repositories: the callers fall back to git for any other.
"""

from __future__ import annotations

import os
import time
import zlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from agentmesh.core.digest import sha1
from agentmesh.core.pattern import LazyPattern
from agentmesh.host.files import create_new

TREE_MODES = {"40000", "100644", "100755", "120000", "160000"}


def object_bytes(kind: str, data: bytes) -> bytes:
    return f"{kind} {len(data)}\0".encode() + data


def object_id(kind: str, data: bytes) -> str:
    """The SHA-1 name git gives an object of this type and content."""
    return sha1(object_bytes(kind, data)).hexdigest()


# A name or email git writes exactly as given (ident.c strips "crud" at either end and drops <, > and newlines)
_PLAIN_IDENT = LazyPattern(r"[A-Za-z0-9_+@-](?:[A-Za-z0-9._+@-]*[A-Za-z0-9_+@-])?")


def plain_ident(name: str, email: str) -> str | None:
    """`name <email>` as git writes it in a commit; None when git would change either (then git writes it)."""
    if _PLAIN_IDENT.fullmatch(name) and _PLAIN_IDENT.fullmatch(email):
        return f"{name} <{email}>"
    return None


def git_now(now: float | None = None) -> str:
    """The time git stamps a commit with: `<seconds> <+hhmm>`, in the local time zone as git takes it."""
    seconds = int(time.time() if now is None else now)
    offset = time.localtime(seconds).tm_gmtoff // 60
    sign = "+" if offset >= 0 else "-"
    return f"{seconds} {sign}{abs(offset) // 60:02d}{abs(offset) % 60:02d}"


def commit_data(tree: str, parents: Sequence[str], ident: str, when: str, message: str) -> bytes:
    """A commit object's content as `git commit-tree` writes it, unsigned: `ident` as author and committer at
    `when` (git_now), a parent named twice once, and the message as given (commit-tree takes its stdin verbatim)."""
    headers = [f"tree {tree}", *(f"parent {parent}" for parent in dict.fromkeys(parents)), f"author {ident} {when}",
               f"committer {ident} {when}"]
    return ("\n".join(headers) + "\n\n" + message).encode()


def commit_fields(data: bytes) -> tuple[str, int | None]:
    """(the message, the committer time) of a commit object's data, as `git for-each-ref`'s `%(contents)` and
    `%(committerdate:unix)` give them: the message is all after the headers' blank line (the whole of it, as
    the claims' fence reads it, where git stops at a NUL and drops leading blank lines); the time as
    `committer_time` reads it."""
    message = data.partition(b"\n\n")[2]
    return message.decode("utf-8", "replace"), committer_time(data)


_TIME_MAX = 2**64 - 1  # git's timestamp_t (uintmax_t): strtoumax's answer to a number past it, which git rejects
_LONG = (-(2**63), 2**63 - 1)
_C_SPACE = b" \t\n\v\f\r"


def _c_number(text: bytes) -> tuple[int | None, bytes]:
    """C's base-10 `strtoumax`/`strtol` of `text`: (its signed value, None without digits; what follows it)."""
    body = text.lstrip(_C_SPACE)
    sign = body[:1] if body[:1] in (b"+", b"-") else b""
    rest = body[len(sign):]
    digits = rest[:len(rest) - len(rest.lstrip(b"0123456789"))]
    if not digits:
        return None, text
    return (-int(digits) if sign == b"-" else int(digits)), rest[len(digits):]


def committer_time(data: bytes) -> int | None:
    """A commit's committer time as git's ref-filter reads it (`grab_date`): None where git prints none (no
    committer line, no "> " after it, a number past its range), which a date anyone can push may be; a
    number it cannot read is 0. Not the line's last fields: git reads the number after the first "> " from
    the committer line on."""
    data = data.partition(b"\0")[0]  # git reads the object as a C string
    at = 0
    while not data.startswith(b"committer ", at):
        end = data.find(b"\n", at)
        if end < 0 or data[end + 1:end + 2] in (b"\n", b""):
            return None  # the headers end without a committer line
        at = end + 1
    email_end = data.find(b"> ", at)
    if email_end < 0:
        return None
    value, rest = _c_number(data[email_end + 2:])
    stamp = 0 if value is None else _TIME_MAX if abs(value) > _TIME_MAX else value % 2**64  # a negative one wraps
    zone, _ = _c_number(rest)
    if stamp == _TIME_MAX or (zone is not None and not _LONG[0] <= zone <= _LONG[1]):
        return None
    return stamp


def with_signature(data: bytes, signature: bytes) -> bytes:
    """The commit `data` signed: `signature` (what ssh-keygen wrote for `data`) in a `gpgsig` header after the
    last header line, each of its lines after a space, as git's own `commit-tree -S` inserts it."""
    end = data.find(b"\n\n")
    at = len(data) if end < 0 else end + 1
    header = b"gpgsig" + b"".join(b" " + line for line in signature.replace(b"\r", b"").splitlines(keepends=True))
    return data[:at] + header + data[at:]


def tree_data(entries: Iterable[tuple[str, str, str]]) -> bytes:
    """A tree object's content from (mode, name, sha) entries, in git's order (a tree sorts as if
    its name ended in `/`). Refuses what `git mktree` refuses: bad modes, names and ids, duplicates."""
    keyed = []
    for mode, name, sha in entries:
        if mode not in TREE_MODES:
            raise ValueError(f"invalid tree entry mode {mode!r}")
        raw = name.encode("utf-8", "surrogateescape")
        if not raw or b"/" in raw or b"\0" in raw or raw in (b".", b".."):
            raise ValueError(f"invalid tree entry name {name!r}")
        if len(sha) != 40:
            raise ValueError(f"invalid object id {sha!r}")
        keyed.append((raw + (b"/" if mode == "40000" else b""), raw, mode, bytes.fromhex(sha)))
    keyed.sort()
    names = [raw for _, raw, _, _ in keyed]
    if len(set(names)) != len(names):
        raise ValueError("duplicate names in a tree")
    return b"".join(mode.encode() + b" " + raw + b"\0" + oid for _, raw, mode, oid in keyed)


def write_loose(git_dir: Path, kind: str, data: bytes) -> str:
    """Store the object in `git_dir` (unless it is there) and return its id. Written to a temporary
    file in the same directory and linked into place, as git does: a reader never sees half of it."""
    raw = object_bytes(kind, data)
    sha = sha1(raw).hexdigest()
    folder = git_dir / "objects" / sha[:2]
    target = folder / sha[2:]
    try:
        os.utime(target)  # there already: fresh again, so a concurrent `gc --prune` keeps it (git does the same)
        return sha
    except FileNotFoundError:
        pass
    except OSError:
        if target.exists():  # there, but not ours to touch
            return sha
    try:
        fd, tmp = create_new(folder, "tmp_obj_")
    except FileNotFoundError:  # the fan-out folder's first object: made only then, not checked for every object
        folder.mkdir(exist_ok=True)
        fd, tmp = create_new(folder, "tmp_obj_")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(zlib.compress(raw, 1))
        os.chmod(tmp, 0o444)
        try:
            os.link(tmp, target)
        except FileExistsError:
            pass  # written meanwhile by someone else: the same bytes
    finally:
        os.unlink(tmp)
    return sha
