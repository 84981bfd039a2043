#!/usr/bin/env python3
"""Regenerate docs/img/report.png, the README's picture of `agentmesh report --html`, from the demo.

Runs `agentmesh demo` on the local forge in a temporary folder for 20 seconds, renders the report page of its
remote as a fresh observer would (`agentmesh --remote REMOTE report --html`), and takes a
screenshot of it in headless Chromium (Debian's `chromium`), about 200 KiB.

    .venv/bin/python scripts/report_screenshot.py [--out PNG] [--days 7] [--issues 14] [--seconds 20] [--keep]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# the page laid out for a 1280-pixel screen, drawn at 3/4 scale: 960 pixels wide, about the README's width
WIDTH, HEIGHT, SCALE = 1280, 2500, 0.75


def agentmesh(*args: str, cwd: Path, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTMESH_")}
    env["XDG_STATE_HOME"] = str(cwd / "state")  # the observer's cache clone, not the user's
    done = subprocess.run([sys.executable, "-m", "agentmesh", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)
    if done.returncode not in ok:
        sys.exit(f"agentmesh {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done


def screenshot(page: Path, out: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("chromium is not installed (Debian: apt-get install --no-install-recommends chromium)")
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--force-device-scale-factor={SCALE}", f"--window-size={WIDTH},{HEIGHT}", f"--screenshot={out}",
                    page.as_uri()],
                   check=True, capture_output=True, timeout=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img" / "report.png")
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--issues", type=int, default=14, help="issues seeded in the demo")
    parser.add_argument("--seconds", type=int, default=20, help="how long the demo agents work (at least 10)")
    parser.add_argument("--keep", action="store_true", help="keep the demo folder and the page")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="agentmesh-report-"))
    try:
        # stopped before the backlog is done, so the board has work in every stage (exit 75: issues left)
        agentmesh("demo", "--agents", "3", "--issues", str(args.issues), "--timeout", str(args.seconds), "--dir",
                  str(work / "demo"), cwd=work, ok=(0, 75))
        page = work / "report.html"
        agentmesh("--remote", str(work / "demo" / "remote.git"), "report", "--html", str(page), "--days",
                  str(args.days), cwd=work)
        screenshot(page, args.out.resolve())
        print(f"{args.out} ({args.out.stat().st_size // 1024} KiB)" + (f"; the page: {page}" if args.keep else ""))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
