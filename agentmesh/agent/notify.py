"""Notifications: tell a person when the mesh needs one (the host config's `notify:`).

A notice goes to a command (argv, never a shell, the event as JSON on stdin) and/or a webhook (POSTed
the same JSON, whose `text` field chat endpoints show). Neither ever gets a token: the command runs
with the executors' scrubbed environment (no forge token, no variable holding its value, nothing
naming the signing key), and every string of the event is made public (core/public.py) first. The
webhook URL may hold a secret: Mesh counts it among the host's known secrets, so logs, the journal
and public text redact it, and no failure message here quotes it.

A failing or hanging notifier never fails a run: it is bounded by `notify.timeout_seconds` and reported
as a warning. Each notice is sent once per key per host (core/notify.py): its key file is created,
exclusively, before the delivery, so a rerun that re-derives the outcome, or a claim-task and a
monitor-prs running at once, never send it twice (a crash during the delivery loses that notice
rather than repeating it).
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from agentmesh.agent.executor import executor_env
from agentmesh.agent.mesh import Mesh
from agentmesh.agent.report import Line, Report
from agentmesh.agent.run import forbidden_env
from agentmesh.core.errors import AgentmeshError
from agentmesh.core.notify import Notice, notice_event, notice_key
from agentmesh.core.public import public_text
from agentmesh.core.vocab import Event, NotifyEvent
from agentmesh.forge.base import Forge
from agentmesh.host.config import NotifyConfig
from agentmesh.host.process import ProcessOutcome, run_process

KEEP_DAYS = 90  # sent keys older than this are forgotten: no rerun re-derives an outcome that old
_ENV_KEPT = ("HOME",)  # beside the executors' base variables (PATH, LANG, ...): tools such as curl read it


class Notifier:
    """Sends notices to this host's `notify:` command and webhook."""

    def __init__(self, config: NotifyConfig, *, agent: str, host: str, sent_dir: Path, url: str | None,
                 command_env: Mapping[str, str], public: Callable[[str], str], warn: Callable[[str], None]):
        self.config = config
        self.agent = agent
        self.host = host
        self.sent_dir = sent_dir
        self.url = url
        self.command_env = command_env  # scrubbed already
        self.public = public
        self.warn = warn
        self._forget_old()

    @classmethod
    def of(cls, mesh: Mesh, env: Mapping[str, str], warn: Callable[[str], None]) -> Notifier | None:
        """This host's notifier, or None when `notify:` sets neither a command nor a webhook."""
        config = mesh.host.notify
        url = config.webhook(env)
        if config.webhook_url_env and url is None:
            warn(f"notify: ${config.webhook_url_env} holds no http(s) URL: no webhook is sent")
        if not config.command and url is None:
            return None
        return cls(config, agent=mesh.host.agent, host=mesh.host.host, sent_dir=mesh.state.notify_sent, url=url,
                   command_env=executor_env(env, _ENV_KEPT, forbidden_env(mesh, env), {}), warn=warn,
                   public=lambda text: public_text(text, known_secrets=mesh.known_secrets, places=mesh.places))

    def send(self, kind: NotifyEvent, *, key: str, issue: int | None = None, pr: int | None = None,
             attempt: int | None = None, max_attempts: int | None = None, title: Callable[[], str] = str,
             detail: str = "") -> bool:
        """Deliver a notice unless its kind is not wanted or its key was sent from this host (`title` is
        read only then); whether it reached everything configured. Never raises for a notifier's failure."""
        if kind not in self.config.events or not self._first(key):
            return False
        stamp = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        notice = Notice(kind, key, self.agent, self.host, stamp, issue, pr, attempt, max_attempts, title(), detail)
        event = {name: self.public(value) if isinstance(value, str) else value
                 for name, value in notice.to_json().items()}
        body = json.dumps(event).encode()
        delivered = True
        if self.config.command:
            delivered &= self._run(body, kind)
        if self.url is not None:
            delivered &= self._post(self.url, body, kind)
        return delivered

    def _run(self, body: bytes, kind: NotifyEvent) -> bool:
        result = run_process(self.config.command or [], env=self.command_env, input=body, capture=True,
                             timeout=self.config.timeout_seconds, grace=1.0)
        if result.ok:
            return True
        what = {ProcessOutcome.TIMEOUT: f"timed out after {self.config.timeout_seconds:g}s",
                ProcessOutcome.UNAVAILABLE: "could not start"}.get(result.outcome, f"exit {result.returncode}")
        self.warn(f"notify: the command for {kind} {what}; the run goes on")
        return False

    def _post(self, url: str, body: bytes, kind: NotifyEvent) -> bool:
        import requests  # heavy: only a webhook needs it, and a run on the local forge has none to load it for

        try:
            answer = requests.post(url, data=body, headers={"Content-Type": "application/json"},
                                   timeout=self.config.timeout_seconds, allow_redirects=False)
        except requests.RequestException as exc:  # its message names the URL: only its kind is said
            self.warn(f"notify: the webhook for {kind} failed ({type(exc).__name__}); the run goes on")
            return False
        if answer.status_code >= 300:
            self.warn(f"notify: the webhook for {kind} answered HTTP {answer.status_code}; the run goes on")
            return False
        return True

    def _first(self, key: str) -> bool:
        """Take `key` for this delivery: False when it was taken before (sent, or being sent)."""
        try:
            self.sent_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.close(os.open(self.sent_dir / key, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            return False
        except OSError as exc:  # a state dir that cannot be written: better a repeat than silence
            self.warn(f"notify: cannot record that {key} was sent ({exc.strerror})")
        return True

    def _forget_old(self) -> None:
        cutoff = time.time() - KEEP_DAYS * 86400
        try:
            for path in self.sent_dir.iterdir():
                if path.stat().st_mtime < cutoff:
                    path.unlink(missing_ok=True)
        except OSError:
            pass  # no sent keys yet, or none readable: nothing to forget


def notify_listener(mesh: Mesh, forge: Forge, report: Report, env: Mapping[str, str]) -> Callable[[Line], None] | None:
    """What a run reports, turned into notices as it happens (None: `notify:` is off)."""
    notifier = Notifier.of(mesh, env, lambda text: report.add(Event.WARNING, detail=text))
    if notifier is None:
        return None
    failures = mesh.host.notify.failures

    def listen(line: Line) -> None:
        if not isinstance(line.event, Event):
            return  # a dry run's plan
        kind = notice_event(line.event, attempt=line.attempt, failures=failures)
        if kind is None:
            return
        failed = kind in (NotifyEvent.DEAD_LETTER, NotifyEvent.REPEATED_FAILURE)
        notifier.send(kind, key=notice_key(kind, line_key=line.key, issue=line.issue, pr=line.pr,
                                           attempt=line.attempt, day=datetime.now(UTC).date()),
                      issue=line.issue, pr=line.pr, attempt=line.attempt,
                      max_attempts=mesh.policy.max_attempts if failed else None,
                      title=lambda: issue_title(forge, line.issue), detail=line.detail)

    return listen


def issue_title(forge: Forge, number: int | None) -> str:
    """The issue's title, best effort: a notice without it is better than none."""
    if number is None:
        return ""
    try:
        return forge.get_issue(number).title
    except AgentmeshError:  # a forge error, a remote down: the notice goes without it
        return ""


def notify_switch(mesh: Mesh, kind: NotifyEvent, detail: str, *, env: Mapping[str, str],
                  warn: Callable[[str], None]) -> None:
    """`agentmesh halt` or `resume` changed the kill switch: one notice per such command. Nothing re-derives
    it, so its key is new each time (a halt run twice is two halts, the second with a new reason)."""
    notifier = Notifier.of(mesh, env, warn)
    if notifier is not None:
        notifier.send(kind, key=notice_key(kind, line_key=f"{time.time_ns():x}-{secrets.token_hex(4)}"),
                      detail=detail)
