"""Small file helpers shared by the state directory, the git layer and the HTTP cache."""

from __future__ import annotations

import errno
import os
from pathlib import Path

_NEW_FILE = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def create_new(directory: Path, prefix: str, suffix: str = "") -> tuple[int, Path]:
    """A new file (0600) with an unused random name in `directory`, open for writing: what
    `tempfile.mkstemp` does, without importing tempfile (shutil, random) on the claim path."""
    for _ in range(100):
        path = directory / f"{prefix}{os.urandom(6).hex()}{suffix}"
        try:
            return os.open(path, _NEW_FILE, 0o600), path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary name", str(directory))


def write_atomic(path: Path, text: str | bytes, mode: int = 0o600) -> None:
    """Replace path with text (or bytes) so readers see the old or the new file, never a partial one."""
    try:
        fd, tmp = create_new(path.parent, f".{path.name}.", ".tmp")
    except FileNotFoundError:  # the folder's first file: made only then, not checked at every write
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = create_new(path.parent, f".{path.name}.", ".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(text if isinstance(text, bytes) else text.encode("utf-8"))
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename is None:  # a failed write() names no file: a full disk must still say where
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
