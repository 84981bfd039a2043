"""Structured logs: JSON lines in the state directory, human lines on stderr with -v.

Every run of a command appends to `<state_dir>/logs/agentmesh.jsonl` (0600,
rotated at 5 MB, 5 old files kept). One line is one JSON object with the
fields `ts level logger message agent issue pr event duration_ms command
detail` (null when absent) and `exc` when an exception was logged.

Every handler installed here carries the same redaction filter, so a token
never reaches a log line, whoever logged it: agentmesh, requests, urllib3 or
an exception's message. Handlers (not loggers) carry it because a logger's
filters do not see records that propagate up from child loggers.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path

from filelock import FileLock, Timeout

from agentmesh.core.secrets import redact
from agentmesh.core.terminal import terminal_text
from agentmesh.host.state import StateLayout

LOG_FILE = "agentmesh.jsonl"
LOG_MAX_BYTES = 5 * 1024 * 1024
LOG_BACKUPS = 5
FIELDS = ("agent", "issue", "pr", "event", "duration_ms", "command", "detail")
RUN_LOGGER = "agentmesh.run"
WARNING_EVENTS = frozenset({"warning", "error", "claim-lost", "budget-exhausted"})
_MARK = "_agentmesh_handler"  # set on the handlers configure_logging installs, so it can replace them


class RedactFilter(logging.Filter):
    """Rewrites a record's message, exception text and string fields through `redact`."""

    def __init__(self, secrets: Sequence[str]):
        super().__init__()
        self.secrets = tuple(secrets)

    def _clean(self, text: str) -> str:
        return redact(text, known_secrets=self.secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 -- bad args: a filter that raises would break the caller's logging call
            message = f"{record.msg!r} (unformattable arguments)"
        record.msg, record.args = self._clean(message), None
        if record.exc_info and not record.exc_text:
            # formatted once here and cached on the record, where every formatter looks first
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._clean(record.exc_text)
        if record.stack_info:
            record.stack_info = self._clean(record.stack_info)
        for name in FIELDS:
            value = record.__dict__.get(name)
            if isinstance(value, str):
                record.__dict__[name] = self._clean(value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line; the fields of FIELDS come from `extra=`."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        data = {
            "ts": ts.replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **{name: record.__dict__.get(name) for name in FIELDS},
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            data["exc"] = record.exc_text
        # ASCII only: U+2028 and friends in forge text would split a line for some readers
        return json.dumps(data, ensure_ascii=True, default=str)


class HumanFormatter(logging.Formatter):
    """`time LEVEL logger: message` for a person watching stderr: no escape sequence in forge text
    or a traceback reaches the terminal (core/terminal.py)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        return terminal_text(super().format(record))


class PrivateRotatingFileHandler(RotatingFileHandler):
    """Rotating log file created 0600, rotated under a file lock.

    claim-task and monitor-prs of one agent run side by side and share the
    file; the lock and the inode check keep two processes from rotating it
    twice in a row (which would push a fresh file out as `.1`).
    """

    def _open(self):
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)  # an older file may have been created with a wider mode
        return open(fd, "a", encoding=self.encoding, errors=self.errors)

    def doRollover(self) -> None:
        try:
            with FileLock(self.baseFilename + ".lock", timeout=5):
                if self.stream is None or _same_file(self.stream.fileno(), self.baseFilename):
                    super().doRollover()
                else:  # another process rotated it already: follow it to the new file
                    self.stream.close()
                    self.stream = self._open()
        except Timeout:
            pass  # keep writing to the current file; a later line rotates it


def _same_file(fd: int, path: str) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except OSError:
        return False


def configure_logging(state_root: Path, *, verbose: int, secrets: Sequence[str]) -> None:
    """Install the JSON file handler (and with verbose >= 1 a stderr one) on the root logger.

    The file takes INFO and up (DEBUG with -vv, libraries included); stderr
    takes INFO with -v and DEBUG with -vv. Calling it again replaces the
    handlers an earlier call installed.
    """
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(handler)
        handler.close()
    level = logging.DEBUG if verbose >= 2 else logging.INFO
    redaction = RedactFilter(secrets)
    directory = StateLayout(state_root).logs
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    file_handler = PrivateRotatingFileHandler(directory / LOG_FILE, maxBytes=LOG_MAX_BYTES,
                                              backupCount=LOG_BACKUPS, encoding="utf-8")
    file_handler.setFormatter(JsonFormatter())
    handlers: list[logging.Handler] = [file_handler]
    if verbose >= 1:
        stderr_handler = logging.StreamHandler(sys.stderr)
        stderr_handler.setFormatter(HumanFormatter())
        handlers.append(stderr_handler)
    for handler in handlers:
        handler.setLevel(level)
        handler.addFilter(redaction)
        setattr(handler, _MARK, True)
        root.addHandler(handler)
    root.setLevel(level)
    # filelock logs every acquire and release twice: noise that would bury the -vv lines that matter
    logging.getLogger("filelock").setLevel(logging.INFO)


def log_report(report, *, command: str, duration_ms: int) -> None:
    """One line per event of a run's report, then a `<command>-done` line with status and duration."""
    log = logging.getLogger(RUN_LOGGER)
    for event in report.events:
        level = logging.WARNING if event.event in WARNING_EVENTS else logging.INFO
        log.log(level, "%s", event, extra={
            "agent": report.agent, "issue": event.issue, "pr": event.pr, "event": event.event,
            "duration_ms": round(event.duration_s * 1000) if event.duration_s else None,
            "command": command, "detail": event.detail or None,
        })
    status = f"{report.status}: {report.reason}" if report.reason else report.status
    log.log(logging.INFO if report.exit_code == 0 else logging.WARNING,
            "%s %s in %d ms (exit %d)", command, status, duration_ms, report.exit_code, extra={
                "agent": report.agent, "issue": None, "pr": None, "event": f"{command}-done",
                "duration_ms": duration_ms, "command": command, "detail": status,
            })
