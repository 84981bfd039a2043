"""A read-only state dir: `mount --bind d d`, then `mount -o remount,bind,ro d`; `umount d` heals.

Only root may mount. Where mounting is not permitted the fault is skipped with a note: the rest
of the run is still worth having.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from agentmesh.host.process import run_process

TIMEOUT = 15.0
UMOUNT_TRIES = 10  # a git process with its cwd inside keeps the mount busy for a moment


class MountError(RuntimeError):
    pass


def why_not_permitted() -> str | None:
    """Why this process cannot remount a folder read-only, or None when it can."""
    if os.geteuid() != 0:
        return "not root"
    if not (shutil.which("mount") and shutil.which("umount")):
        return "mount/umount not installed"
    return None


def _run(*argv: str) -> str | None:
    """None when it worked, else what it said."""
    done = run_process(list(argv), capture=True, timeout=TIMEOUT)
    if done.ok:
        return None
    return (done.stderr or done.stdout).decode("utf-8", "replace").strip() or str(done.outcome)


def make_read_only(folder: Path) -> None:
    """Bind, then remount read-only; one retry, because a loaded machine once failed the first try."""
    first = _bind_read_only(folder)
    if first is None:
        return
    time.sleep(0.5)
    second = _bind_read_only(folder)
    if second is not None:
        raise MountError(f"{first}; again: {second}")


def _bind_read_only(folder: Path) -> str | None:
    """None when the folder is now a read-only bind of itself, else what went wrong."""
    error = _run("mount", "--bind", str(folder), str(folder))
    if error is not None:
        return f"mount --bind: {error}"
    error = _run("mount", "-o", "remount,bind,ro", str(folder))
    if error is not None:
        _run("umount", str(folder))
        return f"remount read-only: {error}"
    return None


def is_mount_point(folder: Path) -> bool:
    """From /proc/self/mountinfo: a bind mount on the same file system fools os.path.ismount."""
    target = str(folder.resolve())
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return False
    # field 5 is the mount point, with space, tab, newline and backslash as octal escapes
    points = {line.split(" ")[4].encode().decode("unicode_escape") for line in lines if line.count(" ") >= 4}
    return target in points


def restore(folder: Path) -> str:
    """Unmount the read-only bind; lazily if something keeps it busy past the retries."""
    for _ in range(UMOUNT_TRIES):
        if not is_mount_point(folder):
            return "writable again"
        _run("umount", str(folder))
        if not is_mount_point(folder):
            return "writable again"
        time.sleep(0.3)
    error = _run("umount", "-l", str(folder))
    if error is not None:
        raise MountError(f"umount -l {folder}: {error}")
    return "writable again (lazy unmount: it was busy)"
