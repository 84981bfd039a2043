"""`agentmesh report --html` of a real demo mesh, opened in headless Chromium (issue 17's "done when").

The demo's agents work and merge on the local forge; then an issue with a hostile title is filed.
The page is rendered from the remote alone, as a fresh observer, and Chromium reads it: `--dump-dom`
gives the DOM as the browser built it, and a screenshot shows that it draws. Skipped where chromium
is missing, except in CI, where .ci/run installs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from agentmesh.core.html import clean
from tests.support.cli import run_cli
from tests.support.report import SECTIONS, Page

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DAYS = 5
HOSTILE = ("<script>alert(1)</script><img src=x onerror=alert(2)> \u202eevil\u2066 \x1b[31m\x07\t"
           "\" onmouseover=alert(3) javascript:alert(4)")

pytestmark = pytest.mark.skipif(CHROMIUM is None and os.environ.get("CI") != "true",
                                reason="chromium is not installed (.ci/run installs it)")


def chromium(*args: str) -> subprocess.CompletedProcess:
    assert CHROMIUM is not None, "chromium is not installed (.ci/run installs it)"
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args],
                          capture_output=True, text=True, timeout=120, check=True)


def test_the_report_page_of_a_demo_mesh_in_chromium(tmp_path):
    demo = run_cli("demo", "--agents", "2", "--issues", "1", "--dir", str(tmp_path / "demo"), "--json",
                   cwd=tmp_path, timeout=240)
    assert demo.returncode == 0, demo.stderr
    remote = str(tmp_path / "demo" / "remote.git")
    filed = run_cli("--remote", remote, "--agent", "mallory", "issue", "create", HOSTILE, "--label", "task",
                    cwd=tmp_path)
    assert filed.returncode == 0, filed.stderr
    page = tmp_path / "report.html"
    report = run_cli("--remote", remote, "report", "--html", str(page), "--days", str(DAYS), cwd=tmp_path)
    assert report.returncode == 0, report.stderr

    dom = Page(chromium("--dump-dom", page.as_uri()).stdout)
    assert dom.sections == SECTIONS
    # throughput: the fleet and each agent; budgets: tasks, minutes and cost of the fleet and each agent
    assert len(dom.charts) == (1 + 2) + 3 * (1 + 2)
    last = datetime.fromisoformat(dom.charts[0][-1]).date()
    assert last - datetime.now(UTC).date() in (timedelta(0), timedelta(days=-1))  # -1: run across midnight
    days = [(last - timedelta(days=DAYS - 1 - i)).isoformat() for i in range(DAYS)]
    assert all(points == days for points in dom.charts), dom.charts
    assert dom.values[0][-1] >= 1 and sum(dom.values[0][:-1]) == 0  # the fleet's one merged PR, today
    # the hostile title is there as text, cleaned, and nothing came of it: no element, handler or attribute
    assert clean(HOSTILE) in dom.content
    assert not [tag for tag, _ in dom.tags if tag in ("script", "img", "iframe", "object", "embed")]
    assert not [a for a in dom.attrs if a[1].startswith("on") or "alert" in (a[2] or "")]
    assert "\u202e" not in dom.content and "\x1b" not in dom.content

    shot = tmp_path / "report.png"
    chromium("--window-size=1280,2000", f"--screenshot={shot}", page.as_uri())
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
