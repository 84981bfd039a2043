"""core/overrides.py on tables: which `timeout:`/`executor:` labels of an issue take effect, and why
the others do not."""

from __future__ import annotations

import pytest

from agentmesh.core.model import LabelEvent
from agentmesh.core.overrides import MAX_TIMEOUT_MINUTES, Overrides, parse_overrides, setters

CHAIN = ("claude-code", "codex")


@pytest.mark.parametrize(("labels", "timeout", "executor"), [
    ((), None, None),
    (("task", "priority:high"), None, None),
    (("timeout:30m",), 1800, None),
    (("timeout:1m",), 60, None),
    ((f"timeout:{MAX_TIMEOUT_MINUTES}m",), MAX_TIMEOUT_MINUTES * 60, None),
    (("executor:codex",), None, "codex"),
    (("timeout:90m", "executor:claude-code", "task"), 5400, "claude-code"),
    (("timeout:30m", "timeout:30m"), 1800, None),  # one label listed twice is one label
])
def test_valid_overrides_apply(labels, timeout, executor):
    found = parse_overrides(labels, executors=CHAIN)
    assert (found.timeout_seconds, found.executor, found.ignored) == (timeout, executor, ())
    assert set(found.applied) == {label for label in labels if label.startswith(("timeout:", "executor:"))}


@pytest.mark.parametrize(("label", "why"), [
    ("timeout:0m", "not a number of minutes"),
    ("timeout:030m", "not a number of minutes"),
    ("timeout:30", "not a number of minutes"),
    ("timeout:30s", "not a number of minutes"),
    ("timeout:1h", "not a number of minutes"),
    ("timeout:-5m", "not a number of minutes"),
    ("timeout:5m ", "not a number of minutes"),
    ("timeout:\u0661\u0662m", "not a number of minutes"),  # Arabic-Indic digits are not ASCII digits
    ("timeout:", "not a number of minutes"),
    (f"timeout:{MAX_TIMEOUT_MINUTES + 1}m", f"more than {MAX_TIMEOUT_MINUTES}m"),
    ("timeout:99999m", "not a number of minutes"),
    ("executor:aider", "not one of this host's executors (claude-code, codex)"),
    ("executor:", "not one of this host's executors"),
    ("executor:codex; rm -rf /", "not one of this host's executors"),
    ("executor:Codex", "not one of this host's executors"),
])
def test_malformed_values_are_ignored_with_the_reason(label, why):
    found = parse_overrides([label], executors=CHAIN)
    assert found.timeout_seconds is None and found.executor is None and found.applied == ()
    [said] = found.ignored
    assert said.startswith(f"{label}: ") and why in said


def test_labels_someone_untrusted_set_are_ignored_and_the_trusted_ones_apply():
    found = parse_overrides(["timeout:5m", "executor:codex"], executors=CHAIN,
                            distrusted={"executor:codex": "set by `unverified:eve`"})
    assert found == Overrides(300, None, ("timeout:5m",), ("executor:codex: set by `unverified:eve`",))


def test_two_labels_of_one_kind_cancel_each_other_out():
    found = parse_overrides(["timeout:5m", "timeout:10m", "executor:codex"], executors=CHAIN)
    assert found.timeout_seconds is None and found.executor == "codex" and found.applied == ("executor:codex",)
    assert found.ignored == ("timeout:5m: more than one timeout label", "timeout:10m: more than one timeout label")


def test_a_prefix_in_another_case_is_no_override():
    assert parse_overrides(["Timeout:5m", "EXECUTOR:codex"], executors=CHAIN) == Overrides()


@pytest.mark.parametrize(("events", "expected"), [
    ([], {}),
    ([LabelEvent("timeout:5m", True, "ada")], {"timeout:5m": "ada"}),
    ([LabelEvent("timeout:5m", True, "ada"), LabelEvent("timeout:5m", False, "bob")], {}),
    # removed and added again: whoever added it last is its setter
    ([LabelEvent("x", True, "maintainer:human"), LabelEvent("x", False, "eve"), LabelEvent("x", True, "eve")],
     {"x": "eve"}),
    ([LabelEvent("x", True, "eve"), LabelEvent("y", True, "ada"), LabelEvent("x", False, "ada")], {"y": "ada"}),
])
def test_setters_is_who_added_each_label_last(events, expected):
    assert setters(events) == expected
