"""crontab.example and contrib/systemd stay valid and match the host config's schedule defaults."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import pytest

from agentmesh.host.config import ScheduleConfig

ROOT = Path(__file__).resolve().parents[2]
SCHEDULE = ScheduleConfig()
CADENCE = {"claim-task": SCHEDULE.claim_minutes, "monitor-prs": SCHEDULE.monitor_minutes}
_FIELD_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


def cron_field_ok(field: str, low: int, high: int) -> bool:
    for part in field.split(","):
        match = re.fullmatch(r"(\*|(\d+)(?:-(\d+))?)(?:/(\d+))?", part)
        if match is None:
            return False
        numbers = [int(n) for n in match.groups()[1:3] if n is not None]
        if any(not low <= n <= high for n in numbers) or (match[4] is not None and int(match[4]) < 1):
            return False
    return True


def cron_entries(text: str) -> list[tuple[list[str], str]]:
    """(five schedule fields, command) of each entry; assignments and comments skipped."""
    entries = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or re.match(r"[A-Z_]+=", line):
            continue
        fields = line.split(None, 5)
        assert len(fields) == 6, f"not a cron entry: {line!r}"
        entries.append((fields[:5], fields[5]))
    return entries


def check_entry(fields: list[str], command: str) -> str:
    """The agentmesh subcommand an entry runs, after checking its schedule, jitter and log."""
    for field, (low, high) in zip(fields, _FIELD_RANGES):
        assert cron_field_ok(field, low, high), f"bad cron field {field!r} in {fields}"
    assert "%" not in command  # cron turns % into a newline
    assert f"sleep $(shuf -i 0-{SCHEDULE.jitter_seconds - 1} -n 1)" in command
    log = re.search(r">> (\S+) 2>&1$", command)
    assert log and "/.local/state/agentmesh/" in log[1], "output must be appended to a log in the state directory"
    assert "flock" not in command
    return re.search(r"\bagentmesh ([a-z-]+)", command)[1]


def test_crontab_example():
    text = (ROOT / "crontab.example").read_text()
    entries = cron_entries(text)
    commands = {check_entry(fields, command): fields for fields, command in entries}
    assert set(commands) == set(CADENCE) and len(entries) == 2  # tick only as a commented alternative
    for name, fields in commands.items():
        assert fields == [f"*/{CADENCE[name]}", "*", "*", "*", "*"]
    commented = [line.lstrip("# ") for line in text.splitlines() if re.match(r"#\s*[*\d]", line)]
    assert [check_entry(*entry) for entry in cron_entries("\n".join(commented))] == ["tick"]
    assigned = dict(line.split("=", 1) for line in text.splitlines() if re.match(r"[A-Z_]+=", line))
    assert "AGENTMESH_CONFIG" in assigned and not any("TOKEN" in key for key in assigned)


def read_unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True, delimiters=("=",),
                                       comment_prefixes=("#", ";"), inline_comment_prefixes=None)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read_string(path.read_text(), source=str(path))
    for section in parser.sections():
        for key, value in parser[section].items():
            assert "#" not in value, f"{path.name}: {key}: systemd has no inline comments"
    return parser


UNITS = {"claim": "claim-task", "monitor": "monitor-prs"}


def test_every_unit_has_its_pair():
    names = sorted(p.name for p in (ROOT / "contrib" / "systemd").iterdir())
    assert names == sorted(f"agentmesh-{kind}.{ext}" for kind in UNITS for ext in ("service", "timer"))


@pytest.mark.parametrize("kind", UNITS)
def test_service(kind):
    path = ROOT / "contrib" / "systemd" / f"agentmesh-{kind}.service"
    unit = read_unit(path)
    assert unit["Unit"]["Description"]
    service = unit["Service"]
    assert service["Type"] == "oneshot"
    assert service["KillMode"] == "control-group"
    assert re.fullmatch(rf"(\S*/)?agentmesh {UNITS[kind]}", service["ExecStart"])
    assert "Install" not in unit  # started by its timer, never enabled itself
    assert "systemctl --user enable --now" in path.read_text().split("[Unit]")[0]


@pytest.mark.parametrize("kind", UNITS)
def test_timer(kind):
    path = ROOT / "contrib" / "systemd" / f"agentmesh-{kind}.timer"
    unit = read_unit(path)
    timer = unit["Timer"]
    assert timer["Persistent"] == "true"
    assert int(timer["RandomizedDelaySec"]) == SCHEDULE.jitter_seconds
    minutes = CADENCE[UNITS[kind]]
    if "OnCalendar" in timer:
        assert timer["OnCalendar"] == f"*:0/{minutes}"
    else:
        assert timer["OnUnitActiveSec"] in (f"{minutes}min", f"{minutes}m")
    assert timer.get("Unit", f"agentmesh-{kind}.service") == f"agentmesh-{kind}.service"
    assert unit["Install"]["WantedBy"] == "timers.target"
    assert f"systemctl --user enable --now agentmesh-{kind}.timer" in path.read_text().split("[Unit]")[0]
