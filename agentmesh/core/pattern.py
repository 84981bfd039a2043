"""Regular expressions compiled when first used, not when their module is imported.

`re.compile` runs the pattern compiler in Python: ~0.3 to 1 M instructions a pattern. A module-level
`re.compile` is paid by every process that imports the module, whether or not it ever matches anything: a
claim from cron imports ~20 such patterns and uses a few (docs/benchmarks.md, "What cron pays"). A
`LazyPattern` is written where `re.compile` was and used the same way; tests/unit/test_pattern.py fails if a
module compiles a pattern at import again. Only `str` patterns: a bytes pattern goes through `re`'s own
cache at its one call site.
"""

from __future__ import annotations

import re

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing on the claim path
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from re import Match, Pattern


class LazyPattern:
    """`re.compile(pattern, flags)`, done on the first match; the compiled pattern is kept (a cache of a
    constant: two threads racing compile it twice and keep either)."""

    __slots__ = ("_compiled", "flags", "pattern")

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self.pattern = pattern
        self.flags = flags
        self._compiled: Pattern[str] | None = None

    def __repr__(self) -> str:
        return f"LazyPattern({self.pattern!r}, {self.flags!r})"

    @property
    def compiled(self) -> Pattern[str]:
        if self._compiled is None:
            self._compiled = re.compile(self.pattern, self.flags)
        return self._compiled

    def fullmatch(self, string: str) -> Match[str] | None:
        return self.compiled.fullmatch(string)

    def match(self, string: str) -> Match[str] | None:
        return self.compiled.match(string)

    def search(self, string: str) -> Match[str] | None:
        return self.compiled.search(string)

    def findall(self, string: str) -> list:
        return self.compiled.findall(string)

    def finditer(self, string: str) -> Iterator[Match[str]]:
        return self.compiled.finditer(string)

    def sub(self, repl: str | Callable[[Match[str]], str], string: str, count: int = 0) -> str:
        return self.compiled.sub(repl, string, count)

    def subn(self, repl: str | Callable[[Match[str]], str], string: str, count: int = 0) -> tuple[str, int]:
        return self.compiled.subn(repl, string, count)

    def split(self, string: str, maxsplit: int = 0) -> list:
        return self.compiled.split(string, maxsplit)
