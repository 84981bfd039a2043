"""SHA-1 and SHA-256, the only hashes agentmesh computes, without `hashlib`'s start-up.

Importing `hashlib` starts OpenSSL and tries every algorithm it offers: ~11 M instructions, a tenth of what
a claim from cron costs above the interpreter (docs/benchmarks.md, "What cron pays"). CPython's own
implementations of these two give the same digests from a module that costs nearly nothing; where a build
lacks them (they are private modules: 3.12 renamed `_sha256` to `_sha2`), `hashlib` is the fallback, so
only the start-up cost can change, never a digest. tests/unit/test_digest.py checks both against
`hashlib`, and that no agentmesh module imports `hashlib` itself.
"""

from __future__ import annotations

try:
    from _sha1 import sha1  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - a CPython built without it
    from hashlib import sha1
try:
    from _sha256 import sha256  # type: ignore[import-not-found]  # CPython 3.11
except ImportError:
    try:
        from _sha2 import sha256  # type: ignore[import-not-found]  # CPython 3.12 and later
    except ImportError:  # pragma: no cover - a CPython built without it
        from hashlib import sha256

__all__ = ["sha1", "sha256"]
