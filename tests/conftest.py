"""Suite-wide pytest settings."""

from __future__ import annotations

import os

# Modules run heaviest first, so the long ones do not start last and leave the other workers idle at
# the end: those with a `slow` test, then real agent processes (e2e), then the cheaper layers.
LAYER_ORDER = ("e2e", "integration", "contract", "unit")


def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto`: half again as many workers as cores. Most tests wait on git and agent processes
    (a CI run on 2 cores with 2 workers kept them 149% busy), so one more worker fills the gaps."""
    return max(2, (os.cpu_count() or 1) * 3 // 2)


def pytest_configure(config) -> None:
    # `--dist loadscope` would otherwise hand out modules by their number of tests, most first: a
    # module of three long tests (the chaos run, the claim races) came after hundreds of unit tests.
    if getattr(config.option, "loadscopereorder", None) is not None:
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(session, config, items) -> None:
    """Whole modules, in the order above (a module's own tests keep theirs)."""
    slow_modules = {item.path for item in items if item.get_closest_marker("slow")}

    def rank(item) -> tuple[int, int]:
        layer = item.path.parent.name
        return (item.path not in slow_modules, LAYER_ORDER.index(layer) if layer in LAYER_ORDER else len(LAYER_ORDER))

    items.sort(key=rank)  # stable
