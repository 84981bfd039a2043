"""agentmesh.ops.logging: JSON fields, redaction on every handler, rotation, idempotent set-up."""

from __future__ import annotations

import json
import logging
import os
import stat
import sys
from datetime import datetime
from logging.handlers import RotatingFileHandler

import pytest

from agentmesh.agent.report import Line, Report
from agentmesh.core.vocab import Event
from agentmesh.ops.logging import (
    _MARK,
    LOG_BACKUPS,
    LOG_MAX_BYTES,
    JsonFormatter,
    RedactFilter,
    configure_logging,
    log_report,
)

TOKEN = "tok-3f9a8c7d1e2b4a6f"  # no pattern matches it: only the known-secret list can redact it


@pytest.fixture
def root_logging():
    """Leaves the root logger as it found it: handlers, level and the filelock level."""
    root = logging.getLogger()
    level, filelock_level = root.level, logging.getLogger("filelock").level
    yield root
    for handler in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)
    logging.getLogger("filelock").setLevel(filelock_level)


def ours(root: logging.Logger) -> list[logging.Handler]:
    return [h for h in root.handlers if getattr(h, _MARK, False)]


def flush(root: logging.Logger) -> None:
    for handler in ours(root):
        handler.flush()


def lines(state_root) -> list[dict]:
    return [json.loads(line) for line in (state_root / "logs" / "agentmesh.jsonl").read_text().splitlines()]


def record(msg: str = "hello %s", args: tuple = ("world",), **extra) -> logging.LogRecord:
    rec = logging.LogRecord("agentmesh.test", logging.INFO, __file__, 1, msg, args, None)
    rec.__dict__.update(extra)
    return rec


# --- formatter ------------------------------------------------------------------


def test_formatter_writes_every_field_null_when_absent():
    data = json.loads(JsonFormatter().format(record()))
    assert data["message"] == "hello world" and data["level"] == "INFO" and data["logger"] == "agentmesh.test"
    for name in ("agent", "issue", "pr", "event", "duration_ms", "command", "detail"):
        assert name in data and data[name] is None
    assert data["ts"].endswith("Z")
    assert datetime.fromisoformat(data["ts"].replace("Z", "+00:00")).utcoffset().total_seconds() == 0
    assert "exc" not in data


def test_formatter_reads_fields_from_extra():
    rec = record(agent="host1-a", issue=7, pr=9, event="claimed", duration_ms=1234, command="claim-task",
                 detail="score 15")
    data = json.loads(JsonFormatter().format(rec))
    assert {k: data[k] for k in ("agent", "issue", "pr", "event", "duration_ms", "command", "detail")} == {
        "agent": "host1-a", "issue": 7, "pr": 9, "event": "claimed", "duration_ms": 1234,
        "command": "claim-task", "detail": "score 15"}


def test_formatter_keeps_one_record_on_one_line():
    rec = record("line one\nline two \u2028 three", ())
    text = JsonFormatter().format(rec)
    assert len(text.splitlines()) == 1 and json.loads(text)["message"] == "line one\nline two \u2028 three"


# --- redaction ------------------------------------------------------------------


def test_filter_redacts_message_args_extra_and_exception():
    redaction = RedactFilter([TOKEN])
    try:
        raise RuntimeError(f"401 for token {TOKEN}")
    except RuntimeError:
        exc_info = sys.exc_info()
    rec = logging.LogRecord("x", logging.ERROR, __file__, 1, "auth %s failed", (TOKEN,), exc_info)
    rec.detail = f"Authorization: token {TOKEN}"
    assert redaction.filter(rec) is True
    text = JsonFormatter().format(rec)
    assert TOKEN not in text
    data = json.loads(text)
    assert data["message"] == "auth [REDACTED] failed"
    assert "RuntimeError: 401 for token [REDACTED]" in data["exc"]
    assert TOKEN not in data["detail"]


def test_filter_survives_a_record_whose_args_do_not_fit():
    rec = logging.LogRecord("x", logging.INFO, __file__, 1, f"%d {TOKEN}", ("not a number",), None)
    assert RedactFilter([TOKEN]).filter(rec) is True
    assert TOKEN not in rec.getMessage() and "unformattable" in rec.getMessage()


def test_no_token_in_any_line_whoever_logs_it(tmp_path, root_logging, capsys):
    configure_logging(tmp_path, verbose=2, secrets=[TOKEN])
    # what urllib3.connectionpool logs at DEBUG for every request, with the token in the query string
    logging.getLogger("urllib3.connectionpool").debug(
        '%s://%s:%s "%s %s %s" %s %s', "https", "gitea.example.com", 443, "GET",
        f"/api/v1/repos/team/app?access_token={TOKEN}", "HTTP/1.1", 200, None)
    logging.getLogger("requests.adapters").warning("retrying with Authorization: token %s", TOKEN)
    try:
        raise ConnectionError(f"https://agent:{TOKEN}@gitea.example.com refused")
    except ConnectionError:
        logging.getLogger("agentmesh.forge.http").exception("request failed")
    logging.getLogger("agentmesh.run").info("done", extra={"event": "claimed", "detail": f"used {TOKEN}"})
    flush(root_logging)
    text = (tmp_path / "logs" / "agentmesh.jsonl").read_text()
    assert TOKEN not in text
    assert TOKEN not in capsys.readouterr().err
    records = lines(tmp_path)
    assert [r["logger"] for r in records] == [
        "urllib3.connectionpool", "requests.adapters", "agentmesh.forge.http", "agentmesh.run"]
    assert records[0]["level"] == "DEBUG" and "access_token=[REDACTED]" in records[0]["message"]
    assert "ConnectionError" in records[2]["exc"] and "[REDACTED]" in records[2]["exc"]
    assert records[3]["detail"] == "used [REDACTED]"


def test_every_installed_handler_shares_the_one_filter(tmp_path, root_logging):
    configure_logging(tmp_path, verbose=1, secrets=[TOKEN])
    handlers = ours(root_logging)
    assert len(handlers) == 2
    filters = [f for h in handlers for f in h.filters]
    assert len(filters) == 2 and filters[0] is filters[1] and isinstance(filters[0], RedactFilter)


# --- levels, files, rotation ----------------------------------------------------


def test_file_only_at_info_by_default(tmp_path, root_logging, capsys):
    configure_logging(tmp_path, verbose=0, secrets=[])
    [handler] = ours(root_logging)
    assert isinstance(handler, RotatingFileHandler)
    logging.getLogger("agentmesh.test").debug("not kept")
    logging.getLogger("agentmesh.test").info("kept")
    flush(root_logging)
    assert [r["message"] for r in lines(tmp_path)] == ["kept"]
    assert capsys.readouterr().err == ""


def test_verbose_adds_human_stderr(tmp_path, root_logging, capsys):
    configure_logging(tmp_path, verbose=1, secrets=[])
    logging.getLogger("agentmesh.test").debug("hidden")
    logging.getLogger("agentmesh.test").info("claimed #%d", 3)
    err = capsys.readouterr().err
    assert "INFO agentmesh.test: claimed #3" in err and "hidden" not in err
    configure_logging(tmp_path, verbose=2, secrets=[])
    logging.getLogger("agentmesh.test").debug("now shown")
    assert "DEBUG agentmesh.test: now shown" in capsys.readouterr().err


def test_log_file_is_private_and_rotates(tmp_path, root_logging):
    configure_logging(tmp_path, verbose=0, secrets=[])
    [handler] = ours(root_logging)
    assert isinstance(handler, RotatingFileHandler)
    assert (handler.maxBytes, handler.backupCount) == (LOG_MAX_BYTES, LOG_BACKUPS) == (5 * 1024 * 1024, 5)
    log_file = tmp_path / "logs" / "agentmesh.jsonl"
    assert handler.baseFilename == str(log_file)
    logging.getLogger("agentmesh.test").info("first")
    handler.doRollover()
    logging.getLogger("agentmesh.test").info("second")
    flush(root_logging)
    rotated = tmp_path / "logs" / "agentmesh.jsonl.1"
    assert "first" in rotated.read_text() and "second" in log_file.read_text()
    for path in (log_file, rotated):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "logs").stat().st_mode) == 0o700


def test_existing_log_file_is_made_private(tmp_path, root_logging):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "agentmesh.jsonl").write_text("")
    os.chmod(tmp_path / "logs" / "agentmesh.jsonl", 0o644)
    configure_logging(tmp_path, verbose=0, secrets=[])
    assert stat.S_IMODE((tmp_path / "logs" / "agentmesh.jsonl").stat().st_mode) == 0o600


def test_a_file_another_process_rotated_is_followed_not_rotated_again(tmp_path, root_logging):
    configure_logging(tmp_path, verbose=0, secrets=[])
    [handler] = ours(root_logging)
    log = logging.getLogger("agentmesh.test")
    log.info("before")
    flush(root_logging)
    log_file = tmp_path / "logs" / "agentmesh.jsonl"
    os.replace(log_file, tmp_path / "logs" / "agentmesh.jsonl.1")  # as the other process's rollover does
    log_file.write_text("")
    handler.doRollover()  # this process, a moment later, also found the file full
    log.info("after")
    flush(root_logging)
    assert not (tmp_path / "logs" / "agentmesh.jsonl.2").exists()
    assert "before" in (tmp_path / "logs" / "agentmesh.jsonl.1").read_text()
    assert "after" in log_file.read_text()


# --- idempotence ----------------------------------------------------------------


def test_configure_twice_replaces_its_handlers_and_keeps_others(tmp_path, root_logging):
    other = logging.NullHandler()
    root_logging.addHandler(other)
    try:
        configure_logging(tmp_path, verbose=1, secrets=["first-secret-value"])
        configure_logging(tmp_path, verbose=1, secrets=[TOKEN])
        configure_logging(tmp_path, verbose=0, secrets=[TOKEN])
        [handler] = ours(root_logging)
        assert isinstance(handler, RotatingFileHandler)
        assert other in root_logging.handlers
        logging.getLogger("agentmesh.test").info("once %s", TOKEN)
        flush(root_logging)
        assert [r["message"] for r in lines(tmp_path)] == ["once [REDACTED]"]
    finally:
        root_logging.removeHandler(other)


# --- log_report -----------------------------------------------------------------


def test_log_report_one_line_per_event_then_a_summary(tmp_path, root_logging):
    configure_logging(tmp_path, verbose=0, secrets=[TOKEN])
    report = Report("host1-a", status="worked")
    report.record(Line(Event("claimed"), issue=4, detail="score 15"))
    report.record(Line(Event("executed"), issue=4, detail="ok (demo)", duration_s=2.5))
    report.record(Line(Event("claim-lost"), issue=4, detail=f"lost to {TOKEN}"))
    report.record(Line(Event("pr-opened"), issue=4, pr=5))
    for name in ("warning", "error", "budget-exhausted"):
        report.record(Line(Event(name)))
    log_report(report, command="claim-task", duration_ms=1500)
    flush(root_logging)
    records = lines(tmp_path)
    assert [r["event"] for r in records] == [
        "claimed", "executed", "claim-lost", "pr-opened", "warning", "error", "budget-exhausted", "claim-task-done"]
    assert [r["level"] for r in records] == ["INFO", "INFO", "WARNING", "INFO", "WARNING", "WARNING", "WARNING", "INFO"]
    assert all(r["agent"] == "host1-a" and r["command"] == "claim-task" for r in records)
    assert (records[0]["issue"], records[0]["pr"], records[0]["detail"]) == (4, None, "score 15")
    assert records[1]["duration_ms"] == 2500 and records[0]["duration_ms"] is None
    assert records[2]["detail"] == "lost to [REDACTED]"
    assert (records[3]["pr"], records[3]["detail"]) == (5, None)
    done = records[-1]
    assert (done["detail"], done["duration_ms"], done["issue"], done["pr"]) == ("worked", 1500, None, None)


def test_log_report_summary_of_a_failed_run_is_a_warning(tmp_path, root_logging):
    configure_logging(tmp_path, verbose=0, secrets=[])
    log_report(Report("host1-a", status="worked", reason="remote unreachable", exit_code=75),
               command="monitor-prs", duration_ms=20)
    flush(root_logging)
    [done] = lines(tmp_path)
    assert (done["event"], done["level"], done["detail"]) == (
        "monitor-prs-done", "WARNING", "worked: remote unreachable")
