"""No test kills by name: that reaches processes of other tests, other checkouts and other users."""

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
BY_NAME = re.compile(r"\b(pkill|killall)\b")


def test_no_test_kills_processes_by_name():
    found = [f"{path.relative_to(TESTS)}:{number}: {line.strip()}"
             for path in sorted(TESTS.rglob("*.py")) if path != Path(__file__).resolve()
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if BY_NAME.search(line)]
    assert not found, "kill only what the test started (its pid or process group):\n" + "\n".join(found)
