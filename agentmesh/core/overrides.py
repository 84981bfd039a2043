"""Per-issue overrides: a `timeout:<minutes>m` label sets the executor timeout of one issue, an
`executor:<name>` label picks one of the host's configured executors for it. Pure.

Labels are forge text: each value is parsed strictly (a bounded number of minutes; an executor name
that the host configured, never a command), and only labels a maintainer or a roster agent set count
(the caller finds who set each label and passes the others in `distrusted`). A label that does not
count is ignored and said why; two labels of one kind cancel each other out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from agentmesh.core.model import LabelEvent
from agentmesh.core.pattern import LazyPattern

TIMEOUT_PREFIX = "timeout:"
EXECUTOR_PREFIX = "executor:"
MAX_TIMEOUT_MINUTES = 24 * 60  # an executor run longer than a day is a runaway, not a task
_MINUTES = LazyPattern(r"[1-9][0-9]{0,3}m")


def is_override(label: str) -> bool:
    return label.startswith((TIMEOUT_PREFIX, EXECUTOR_PREFIX))


@dataclass(frozen=True)
class Overrides:
    timeout_seconds: int | None = None
    executor: str | None = None
    applied: tuple[str, ...] = ()  # the labels that took effect
    ignored: tuple[str, ...] = ()  # "<label>: why", one per label that did not


def setters(events: Iterable[LabelEvent]) -> dict[str, str]:
    """label -> who added it last (events oldest first); a label removed since has no setter."""
    found: dict[str, str] = {}
    for event in events:
        if event.added:
            found[event.label] = event.author
        else:
            found.pop(event.label, None)
    return found


def not_trusted(setter: str | None) -> str:
    """Why a label `setter` added (None: no one known) does not count."""
    return f"set by `{setter or 'unknown'}`, not a maintainer or roster agent"


def distrusted(labels: Iterable[str], setters: Mapping[str, str], trusted: Callable[[str], bool]) -> dict[str, str]:
    """label -> why it does not count, for each of `labels` that no `trusted` setter added last."""
    return {label: not_trusted(setters.get(label)) for label in labels
            if not (label in setters and trusted(setters[label]))}


def counted(labels: Sequence[str], steers: Callable[[str], bool], setters: Mapping[str, str],
            trusted: Callable[[str], bool]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the labels that count, the steering labels that do not): a label that `steers` (preempts, ranks,
    ...) counts only when its setter (`setters`: label -> who added it last) is `trusted`."""
    dropped = distrusted([label for label in labels if steers(label)], setters, trusted)
    return tuple(label for label in labels if label not in dropped), tuple(dropped)


def _timeout(value: str) -> tuple[int | None, str]:
    if not _MINUTES.fullmatch(value):
        return None, "not a number of minutes like `30m`"
    minutes = int(value[:-1])
    if minutes > MAX_TIMEOUT_MINUTES:
        return None, f"more than {MAX_TIMEOUT_MINUTES}m"
    return minutes * 60, ""


def parse_overrides(labels: Sequence[str], *, executors: Sequence[str],
                    distrusted: Mapping[str, str] | None = None) -> Overrides:
    """The overrides of an issue with `labels`, on a host whose executors are named `executors`.
    `distrusted`: label -> why it does not count (set by someone who may not steer agents)."""
    distrusted = distrusted or {}
    timeouts: dict[str, int] = {}
    names: dict[str, str] = {}
    ignored: list[str] = []
    for label in dict.fromkeys(labels):
        if not is_override(label):
            continue
        if label in distrusted:
            ignored.append(f"{label}: {distrusted[label]}")
        elif label.startswith(TIMEOUT_PREFIX):
            seconds, why = _timeout(label[len(TIMEOUT_PREFIX):])
            if seconds is None:
                ignored.append(f"{label}: {why}")
            else:
                timeouts[label] = seconds
        else:
            name = label[len(EXECUTOR_PREFIX):]
            if name in executors:
                names[label] = name
            else:
                ignored.append(f"{label}: not one of this host's executors ({', '.join(executors)})")
    applied: list[str] = []
    timeout_seconds: int | None = None
    executor: str | None = None
    for found, kind in ((timeouts, "timeout"), (names, "executor")):
        if len(found) > 1:
            ignored += [f"{label}: more than one {kind} label" for label in found]
        elif found:
            [(label, value)] = found.items()
            applied.append(label)
            if kind == "timeout":
                timeout_seconds = int(value)
            else:
                executor = str(value)
    return Overrides(timeout_seconds, executor, tuple(applied), tuple(ignored))
