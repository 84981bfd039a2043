"""What `agentmesh migrate` imports from the old cron scripts' memory, and what is left to import. Pure.

The old scripts kept a `MEMORY.md` (long-lived notes) and a `memory/` folder of hourly logs beside
the repository. They map into ai-memory/ (docs/migration.md):

- `MEMORY.md` -> `ai-memory/architecture/legacy-memory.md`, a curated note that executors then get
  as context when it is relevant to an issue (core/memory.py `select_docs`);
- `memory/<name>` -> `ai-memory/legacy/memory/<name>`, kept verbatim as history (not given to
  executors: hourly logs are too noisy to be context).

Every file is UTF-8 text with known and recognisable secrets redacted; a name that is not plain
(`[A-Za-z0-9._-]`, no leading dot), a binary or oversized file is skipped with a reason. Nothing that
already exists on the default branch is overwritten, so a rerun after the merge imports nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from agentmesh.core.memory import ROOT
from agentmesh.core.pattern import LazyPattern
from agentmesh.core.secrets import redact
from agentmesh.core.vocab import MigrateStep

MEMORY_FILE = "MEMORY.md"
LOGS_DIR = "memory"
MEMORY_NOTE = f"{ROOT}/architecture/legacy-memory.md"
LOGS_TARGET = f"{ROOT}/legacy/memory"
MAX_FILE_BYTES = 512 * 1024
MAX_FILES = 5000
_NAME = LazyPattern(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
NOTE_HEADER = ("<!-- Imported by `agentmesh migrate` from the old scripts' MEMORY.md; edit freely: "
               "a rerun never overwrites it. -->\n\n")


@dataclass(frozen=True)
class Skipped:
    path: str
    why: str


@dataclass(frozen=True)
class ImportPlan:
    files: dict[str, str]  # ai-memory path -> text
    skipped: tuple[Skipped, ...] = ()

    def to_json(self) -> dict:
        return {"files": sorted(self.files), "skipped": [{"path": s.path, "why": s.why} for s in self.skipped]}


def target_path(source: str) -> str | None:
    """Where an old-scripts memory file goes in ai-memory/, or None: not theirs, or not a plain name."""
    if source == MEMORY_FILE:
        return MEMORY_NOTE
    top, *rest = source.split("/")
    if top != LOGS_DIR or not rest or not all(_NAME.fullmatch(part) for part in rest):
        return None
    return f"{LOGS_TARGET}/{'/'.join(rest)}"


def plan_import(sources: Mapping[str, bytes], *, known_secrets: Sequence[str] = ()) -> ImportPlan:
    """The ai-memory files for `sources` (path relative to the old scripts' directory -> content)."""
    files: dict[str, str] = {}
    skipped: list[Skipped] = []
    for source in sorted(sources):
        target = target_path(source)
        data = sources[source]
        why = ("not MEMORY.md or a plain file name under memory/" if target is None
               else f"larger than {MAX_FILE_BYTES} bytes" if len(data) > MAX_FILE_BYTES
               else f"more than {MAX_FILES} files" if len(files) >= MAX_FILES else "")
        if not why:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text, why = "", "not UTF-8 text"
            if "\0" in text:
                why = "binary"
        if why or target is None:
            skipped.append(Skipped(source, why))
            continue
        text = redact(text, known_secrets=known_secrets)
        files[target] = NOTE_HEADER + text if target == MEMORY_NOTE else text
    return ImportPlan(files, tuple(skipped))


def still_missing(files: Mapping[str, str], *, on_base: Mapping[str, bool]) -> dict[str, str]:
    """The files of an import that the default branch does not have yet (`on_base`: path -> exists)."""
    return {path: text for path, text in files.items() if not on_base.get(path, False)}



def migration_step(missing: Mapping[str, str], *, on_branch: Mapping[str, str | None], branch_exists: bool,
                   pull_state: str | None) -> MigrateStep:
    """The step for the files the default branch lacks. `on_branch`: their text on the import branch (None:
    absent); `pull_state`: its newest PR's state, None without one. A merged PR's leftover branch is
    rebuilt off the default branch; a closed one is a human's no, which only deleting the branch undoes."""
    if not missing:
        return MigrateStep.NOTHING
    if pull_state == "closed":
        return MigrateStep.REFUSED
    if branch_exists and pull_state in ("open", None):
        return MigrateStep.ADOPT if all(on_branch.get(p) == text for p, text in missing.items()) else MigrateStep.ADD
    return MigrateStep.OPEN
