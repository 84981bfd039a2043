"""An agent's SSH signing key, and verifying commits against the roster's allowed signers.

Every commit an agent writes is signed with git's SSH signing (`gpg.format=ssh`), so the
remote can tell an agent's claims, presence, work and reviews from anything a writer pushed.
Verification is batched: one `git log --no-walk` reports every commit's signer, checked
against an allowed-signers file built from the roster on the base branch.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from agentmesh.core.errors import ConfigError, TemporaryError
from agentmesh.core.identity import NAMESPACE, PublicKey
from agentmesh.git.run import Git
from agentmesh.host.files import write_atomic
from agentmesh.host.process import run_process


def ensure_key(private: Path, comment: str) -> PublicKey:
    """The agent's signing key at `private` (0600, in a 0700 folder), created when missing."""
    public = private.with_name(private.name + ".pub")
    if not private.exists():
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


def allowed_signers(entries: Iterable[tuple[str, PublicKey]]) -> str:
    """The allowed-signers file for `(principal, key)` pairs, valid for git signatures only."""
    return "".join(f'{principal} namespaces="{NAMESPACE}" {key.line}\n' for principal, key in entries)


def ensure_allowed_signers(directory: Path, text: str) -> Path:
    """The allowed-signers file of this text, named by its hash (a roster change is a new file)."""
    path = directory / f"allowed-signers-{hashlib.sha256(text.encode()).hexdigest()[:16]}"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(path, text, 0o600)
    return path


def signers(git: Git, repo: Path, shas: Sequence[str], allowed: Path) -> Mapping[str, str | None]:
    """sha -> the principal whose roster key made a good signature on it, or None (unsigned, bad,
    or signed by a key the roster does not list). One git process for all of them."""
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
