"""Prometheus metrics as a node_exporter textfile (host config `metrics: {textfile: PATH}`).

Each run adds its report's events to counters kept in `<state_dir>/metrics.json`
and rewrites the textfile from them. claim-task and monitor-prs of one agent
run at the same time, so the read-modify-write happens under a file lock,
and the textfile is written inside it too: a slower run never writes counts
older than the file already holds.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from filelock import FileLock

from agentmesh.host.files import write_atomic
from agentmesh.host.state import StateLayout

LOCK_TIMEOUT_S = 30

# counter name -> (the events it counts, HELP text)
COUNTERS: dict[str, tuple[frozenset[str], str]] = {
    "claims": (frozenset({"claimed"}), "Issues this agent claimed."),
    "prs": (frozenset({"pr-opened", "adopted"}), "PRs this agent opened or adopted."),
    "reviews": (frozenset({"approved", "changes-requested"}), "Reviews this agent posted."),
    "merges": (frozenset({"merged"}), "PRs this agent merged."),
    "failures": (frozenset({"failed", "dead-letter"}), "Work attempts that failed (dead-letter included)."),
    "reaps": (frozenset({"reaped"}), "Expired claims this agent reaped."),
    "rework": (frozenset({"reworked"}), "PRs this agent reworked after review or CI."),
}
GAUGES: dict[str, str] = {
    "tick_duration_seconds": "How long the last run of a command took.",
    "last_success_timestamp_seconds": "Unix time of the last run of a command that exited 0.",
}


def update_metrics(path: Path, state_root: Path, *, agent: str, command: str, report, duration_s: float,
                   ok: bool) -> None:
    """Count this run's events, record its duration (and success time), rewrite the textfile."""
    store = StateLayout(state_root).metrics
    with FileLock(str(store) + ".lock", timeout=LOCK_TIMEOUT_S):
        data = _load(store)
        mine = data["agents"].setdefault(agent, {"counters": dict.fromkeys(COUNTERS, 0), "gauges": {}})
        for name, (events, _) in COUNTERS.items():
            mine["counters"][name] += sum(1 for e in report.events if e.event in events)
        gauges = mine["gauges"]
        gauges.setdefault("tick_duration_seconds", {})[command] = round(duration_s, 3)
        if ok:
            gauges.setdefault("last_success_timestamp_seconds", {})[command] = round(time.time(), 3)
        write_atomic(store, json.dumps(data, indent=1, sort_keys=True))
        write_atomic(path, render(data), mode=0o644)  # node_exporter runs as another user


def _load(store: Path) -> dict:
    """The stored counters and gauges; whatever is missing or malformed starts again from zero."""
    try:
        raw = json.loads(store.read_text())
    except (OSError, ValueError):
        raw = None  # no file yet, or a corrupt one: Prometheus treats the restart as a counter reset
    agents = raw.get("agents") if isinstance(raw, dict) else None
    clean: dict = {}
    for agent, values in (agents.items() if isinstance(agents, dict) else ()):
        if not isinstance(values, dict):
            continue
        counters = values.get("counters")
        counters = counters if isinstance(counters, dict) else {}
        gauges = values.get("gauges")
        gauges = gauges if isinstance(gauges, dict) else {}
        clean[agent] = {
            "counters": {name: _count(counters.get(name)) for name in COUNTERS},
            "gauges": {name: {c: v for c, v in gauges[name].items() if _is_number(v)}
                       for name in GAUGES if isinstance(gauges.get(name), dict)},
        }
    return {"version": 1, "agents": clean}


def render(data: dict) -> str:
    """The Prometheus text exposition of the stored counters and gauges."""
    agents = sorted(data["agents"].items())
    lines: list[str] = []
    for name, (_, help_text) in COUNTERS.items():
        metric = f"agentmesh_{name}_total"
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} counter"]
        for agent, values in agents:
            lines.append(f"{metric}{_labels(agent=agent)} {_number(values['counters'][name])}")
    for name, help_text in GAUGES.items():
        metric = f"agentmesh_{name}"
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} gauge"]
        for agent, values in agents:
            for command, value in sorted(values["gauges"].get(name, {}).items()):
                lines.append(f"{metric}{_labels(agent=agent, command=command)} {_number(value)}")
    return "\n".join(lines) + "\n"


def _labels(**labels: str) -> str:
    def escape(value: str) -> str:
        return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in labels.items()) + "}"


def _count(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(float(value))
