"""Signing keys as the roster and git name them (pure: parsing and fingerprints only)."""

from __future__ import annotations

import binascii  # not base64, which costs a claim ~2 M instructions more to import

from agentmesh.core.digest import sha256
from agentmesh.core.pattern import LazyPattern
from agentmesh.core.record import Record

NAMESPACE = "git"
MAINTAINER_PREFIX = "maintainer:"  # allowed-signers principal of a maintainer's key; agents are named as they are
_PUBLIC_KEY = LazyPattern(r"(ssh-ed25519) ([A-Za-z0-9+/]+={0,2})(?: .*)?")


class PublicKey(Record):
    """An ed25519 public key as `ssh-ed25519 AAAA...`, without its comment."""

    kind: str
    blob: str

    @classmethod
    def parse(cls, text: str) -> PublicKey:
        """Raises ValueError unless `text` is one ed25519 public key line."""
        match = _PUBLIC_KEY.fullmatch(text.strip())
        if match is None:
            raise ValueError("must be an ssh-ed25519 public key: 'ssh-ed25519 AAAA...'")
        try:
            decoded = binascii.a2b_base64(match.group(2), strict_mode=True)
        except ValueError:
            raise ValueError("the key's base64 does not decode") from None
        if not decoded.startswith(b"\x00\x00\x00\x0bssh-ed25519"):
            raise ValueError("the key's blob is not an ssh-ed25519 key")
        return cls(match.group(1), match.group(2))

    @property
    def line(self) -> str:
        return f"{self.kind} {self.blob}"

    @property
    def fingerprint(self) -> str:
        """As `ssh-keygen -l` and git's %GF print it: SHA256:<base64 without padding>."""
        digest = sha256(binascii.a2b_base64(self.blob)).digest()
        return "SHA256:" + binascii.b2a_base64(digest, newline=False).decode().rstrip("=")
