"""core/notify.py and the `notify:` config on tables: which run events are notices, their keys, the
text chat endpoints show (agentmesh's own words only) and the JSON every notifier gets."""

from __future__ import annotations

from datetime import date

import pytest

from agentmesh.core.errors import ConfigError
from agentmesh.core.notify import Notice, notice_event, notice_key
from agentmesh.core.vocab import Event, NotifyEvent
from agentmesh.host.config import HostConfig, NotifyConfig, validate


@pytest.mark.parametrize(("event", "attempt", "failures", "expected"), [
    (Event.NEEDS_HUMAN, None, 2, NotifyEvent.NEEDS_HUMAN),
    (Event.DEAD_LETTER, 3, 2, NotifyEvent.DEAD_LETTER),
    (Event.DEAD_LETTER, 1, 5, NotifyEvent.DEAD_LETTER),  # dead is dead, whatever the threshold
    (Event.BUDGET_EXHAUSTED, None, 2, NotifyEvent.BUDGET_EXHAUSTED),
    (Event.FAILED, 1, 2, None),  # a first failure is routine
    (Event.FAILED, 2, 2, NotifyEvent.REPEATED_FAILURE),
    (Event.FAILED, 4, 2, NotifyEvent.REPEATED_FAILURE),
    (Event.FAILED, 1, 1, NotifyEvent.REPEATED_FAILURE),
    (Event.FAILED, None, 1, None),  # no attempt number: not a counted attempt
    (Event.RETURNED, 2, 2, NotifyEvent.REPEATED_FAILURE),  # its PR was closed unmerged: an attempt too
    (Event.HANDED_OVER, None, 2, None),  # a human pushed: they know
    (Event.BUDGET_STOPPED, None, 2, None),  # the next tick's budget-exhausted says it
    (Event.HALT_STOPPED, None, 2, None),  # the halt itself is notified by `agentmesh halt`
    (Event.MERGED, None, 2, None),
    (Event.IDLE, None, 2, None),
    (Event.WARNING, None, 2, None),
])
def test_which_run_events_are_notices(event, attempt, failures, expected):
    assert notice_event(event, attempt=attempt, failures=failures) == expected


DAY = date(2026, 11, 27)


@pytest.mark.parametrize(("kind", "facts", "expected"), [
    # the run line's key (the journal entry's): a rerun that re-derives the outcome has the same one
    (NotifyEvent.DEAD_LETTER, {"line_key": "failed-7-5", "issue": 7, "attempt": 3}, "dead-letter-failed-7-5"),
    (NotifyEvent.NEEDS_HUMAN, {"line_key": "needs-human-9-0123456789abcdef", "issue": 4, "pr": 9},
     "needs-human-needs-human-9-0123456789abcdef"),
    # no line key: the facts
    (NotifyEvent.NEEDS_HUMAN, {"issue": 4, "pr": 9}, "needs-human-i4-p9-anone"),
    # a budget once per UTC day, whatever the line says
    (NotifyEvent.BUDGET_EXHAUSTED, {"line_key": "x", "day": DAY}, "budget-exhausted-2026-11-27"),
    # whatever comes in, a file name of [a-z0-9-]
    (NotifyEvent.HALT, {"line_key": "../../etc/passwd X"}, "halt-etc-passwd-x"),
])
def test_notice_keys(kind, facts, expected):
    assert notice_key(kind, **facts) == expected


def test_every_kind_has_a_key_fit_for_a_file_name():
    for kind in NotifyEvent:
        key = notice_key(kind, issue=1, pr=None, attempt=None, day=DAY)
        assert key and set(key) <= set("abcdefghijklmnopqrstuvwxyz0123456789-"), key


HOSTILE = "<!channel> [click](https://evil.example) @here `x`"


def notice(kind: NotifyEvent, **facts) -> Notice:
    base = {"key": "k", "agent": "ada", "host": "box", "at": "2026-11-27T01:00:00Z", "title": HOSTILE,
            "detail": HOSTILE}
    return Notice(kind, **{**base, **facts})


@pytest.mark.parametrize(("kind", "facts", "says"), [
    (NotifyEvent.NEEDS_HUMAN, {"issue": 4, "pr": 9}, "PR #9 issue #4 needs a human"),
    (NotifyEvent.NEEDS_HUMAN, {"issue": 4}, "issue #4 needs a human"),
    (NotifyEvent.DEAD_LETTER, {"issue": 7, "attempt": 3, "max_attempts": 3},
     "issue #7 is dead-lettered: attempt 3 of 3 failed"),
    (NotifyEvent.REPEATED_FAILURE, {"issue": 7, "attempt": 2, "max_attempts": 3},
     "issue #7 failed again: attempt 2 of 3"),
])
def test_forge_and_executor_text_stays_out_of_the_text(kind, facts, says):
    """`text` is what a chat endpoint renders: a title or an executor's words there could ping a channel
    or link anywhere, so they travel only in `title` and `detail`."""
    made = notice(kind, **facts)
    text = made.text()
    assert text.startswith(f"agentmesh: {says}")
    assert text.endswith("(`ada` on `box`)")
    for piece in ("channel", "evil", "@here", "click"):
        assert piece not in text
    data = made.to_json()
    assert data["title"] == HOSTILE and data["detail"] == HOSTILE  # as data, untouched: JSON is safe
    assert data["text"] == text


@pytest.mark.parametrize("kind", [NotifyEvent.HALT, NotifyEvent.RESUME, NotifyEvent.BUDGET_EXHAUSTED])
def test_an_operators_or_agentmeshs_own_words_are_shown_escaped(kind):
    text = notice(kind, detail="deploy freeze <!channel> & co\nsecond line").text()
    assert "deploy freeze &lt;!channel&gt; &amp; co second line" in text
    assert "<" not in text and "\n" not in text


def test_the_json_names_every_field():
    data = notice(NotifyEvent.DEAD_LETTER, issue=7, attempt=3, max_attempts=3, title="Fix it\x1b[31m").to_json()
    assert set(data) == {"text", "event", "id", "agent", "host", "time", "issue", "pr", "attempt", "max_attempts",
                         "title", "detail"}
    assert data["event"] == "dead-letter" and data["id"] == "k" and data["issue"] == 7 and data["pr"] is None
    assert data["title"] == "Fix it[31m"  # control characters cleaned


# --- config ------------------------------------------------------------------------------------

def host(notify: dict) -> HostConfig:
    return validate(HostConfig, {"agent": "ada", "remote": "/tmp/r.git", "notify": notify}, "agentmesh.yaml")


def test_notify_is_off_by_default_and_sends_every_event_when_on():
    config = host({}).notify
    assert config.command is None and config.webhook({}) is None
    assert config.events == list(NotifyEvent) and config.failures == 2


@pytest.mark.parametrize(("notify", "error"), [
    ({"command": []}, "notify.command: must be a non-empty argv list"),
    ({"command": "curl -d @- https://x"}, "notify.command: "),  # a string would need a shell
    ({"webhook_url": "ftp://hooks.example/s3cr3t-path"}, "notify.webhook_url: must be an http:// or https:// URL"),
    ({"webhook_url_env": "https://hooks.example/x"}, "notify.webhook_url_env: must be the name of"),
    ({"events": ["everything"]}, "notify.events.0: "),
    ({"failures": 0}, "notify.failures: must be ≥ 1"),
])
def test_bad_notify_configs_are_refused_without_echoing_the_url(notify, error):
    with pytest.raises(ConfigError) as caught:
        host(notify)
    assert error in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


def test_the_webhook_url_from_a_variable_and_what_of_it_is_secret():
    config = NotifyConfig(webhook_url_env="HOOK")
    assert config.webhook({}) is None
    assert config.webhook({"HOOK": "not a url"}) is None
    url = "https://user:pw@hooks.example/services/T0/B0/s3cr3t?token=t0k3n"
    assert config.webhook({"HOOK": url}) == url
    assert config.secrets({"HOOK": url}) == [url, "user:pw@hooks.example", "/services/T0/B0/s3cr3t?token=t0k3n"]
    # a short common path alone would make every diff that quotes it look like a leak
    assert config.secrets({"HOOK": "https://chat.example/webhook"}) == ["https://chat.example/webhook"]
