"""Suite-wide pytest settings."""

from __future__ import annotations

import os


def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto`: half again as many workers as cores. Most tests wait on git and agent processes
    (a CI run on 2 cores with 2 workers kept them 149% busy), so one more worker fills the gaps."""
    return max(2, (os.cpu_count() or 1) * 3 // 2)
