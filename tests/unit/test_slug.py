"""Slugs and work-branch names from hostile issue titles."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentmesh.core.slug import SLUG_MAX, is_agent_name, is_work_branch, slugify, work_branch
from tests.support import HOSTILE_TITLES

SAFE = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")


@pytest.mark.parametrize("title", HOSTILE_TITLES)
def test_slug_of_hostile_title_is_safe(title):
    slug = slugify(title)
    assert SAFE.fullmatch(slug), slug
    assert 1 <= len(slug) <= SLUG_MAX


@pytest.mark.parametrize("title", HOSTILE_TITLES)
def test_work_branch_of_hostile_title_is_valid(title):
    branch = work_branch("host1-a", 42, title)
    assert is_work_branch(branch)
    assert branch.startswith("host1-a/42-")


def test_slug_keeps_meaning():
    assert slugify("Fix login timeout") == "fix-login-timeout"
    assert slugify("Ünïcödé Çafé") == "unicode-cafe"
    assert slugify("$(rm -rf /)") == "rm-rf"
    assert slugify("日本語") == "task"


def test_long_title_cut_at_word_boundary():
    slug = slugify("implement the new scheduler for background jobs with retries")
    assert len(slug) <= SLUG_MAX
    assert slug == "implement-the-new-scheduler-for"


@given(st.text(max_size=600))
def test_any_text_gives_a_safe_slug(title):
    slug = slugify(title)
    assert SAFE.fullmatch(slug) and len(slug) <= SLUG_MAX


@pytest.mark.parametrize("name,ok", [
    ("host1-a", True), ("a", True), ("0", True), ("a" * 40, True), ("a" * 41, False),
    ("-a", False), ("A", False), ("a_b", False), ("a/b", False), ("", False), ("a.b", False),
])
def test_agent_names(name, ok):
    assert is_agent_name(name) is ok


def test_work_branch_rejects_bad_inputs():
    with pytest.raises(ValueError):
        work_branch("Bad Agent", 1, "x")
    with pytest.raises(ValueError):
        work_branch("a", 0, "x")
