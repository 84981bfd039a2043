"""The backend-agnostic Forge conformance suite, run against GitHubForge and the GitHub fake."""

from __future__ import annotations

import pytest

from tests.contract.spec import fake_env
from tests.support.conformance import *  # noqa: F403


@pytest.fixture
def forge_env(tmp_path):
    with fake_env("github", tmp_path / "etags") as env:
        yield env
