"""core/cli_output.py on the shapes the real CLIs print (copied from runs of claude 2.1, codex 0.171
and aider 0.86 without credentials; tests/integration/test_executor_presets.py runs the CLIs)."""

from __future__ import annotations

import json

import pytest

from agentmesh.core.cli_output import MESSAGE_CHARS, CliOutput, parse_cli_output

CLAUDE_NOT_LOGGED_IN = json.dumps({
    "type": "result", "subtype": "success", "is_error": True, "api_error_status": None, "duration_ms": 897,
    "num_turns": 1, "result": "Not logged in · Please run /login", "stop_reason": "stop_sequence",
    "total_cost_usd": 0, "usage": {"input_tokens": 0}})
CLAUDE_DONE = json.dumps({"type": "result", "subtype": "success", "is_error": False, "result": "Done: edited a.py",
                          "total_cost_usd": 0.42})
CLAUDE_MAX_TURNS = json.dumps({"type": "result", "subtype": "error_max_turns", "is_error": True, "total_cost_usd": 1.5})
CODEX_401 = """OpenAI Codex v0.171.0
--------
ERROR: Reconnecting... 5/5
ERROR: unexpected status 401 Unauthorized: You didn't provide an API key., url: http://127.0.0.1:1/v1/responses
"""
AIDER_401 = ("Aider v0.86.2\nMain model: gpt-4o with diff edit format\n\n"
             "litellm.AuthenticationError: AuthenticationError: OpenAIException - Incorrect \n"  # wrapped at 80
             "API key provided.\nThe API provider is not able to authenticate you. Check your API key.\n\n")
CODEX_NO_NETWORK = """user
Read the task
2026-11-26T22:18:00.831598Z ERROR codex_api::endpoint::responses_websocket: failed to connect to Responses WebSocket

agentmesh: executor timeout after 15.1s
"""


@pytest.mark.parametrize("text, expected", [
    (CLAUDE_NOT_LOGGED_IN, CliOutput(True, "Not logged in · Please run /login", 0.0)),
    (f"agentmesh: $ claude -p ...\n{CLAUDE_DONE}\n", CliOutput(False, None, 0.42)),
    (CLAUDE_MAX_TURNS, CliOutput(True, "error_max_turns", 1.5)),
    (CODEX_401, CliOutput(False, "ERROR: unexpected status 401 Unauthorized: You didn't provide an API key., url: "
                                 "http://127.0.0.1:1/v1/responses")),
    (AIDER_401, CliOutput(False, "litellm.AuthenticationError: AuthenticationError: OpenAIException - Incorrect "
                                 "API key provided. The API provider is not able to authenticate you. Check your API "
                                 "key.")),
    (CODEX_NO_NETWORK, CliOutput(False, "2026-11-26T22:18:00.831598Z ERROR codex_api::endpoint::responses_websocket: "
                                        "failed to connect to Responses WebSocket")),
    ("ERROR: first\nmore of it\nERROR: second\nagentmesh: executor timeout\n", CliOutput(False, "ERROR: second")),
    ('{"cost_usd": 2}\nall good\n', CliOutput(False, None, 2.0)),
    ("", CliOutput()),
    ("{not json\n{\"type\": \"result\", \"is_error\": \"yes\"}\n[1, 2]\n", CliOutput()),
    ('{"total_cost_usd": true}', CliOutput()),
])
def test_the_shapes_the_clis_print(text, expected):
    assert parse_cli_output(text) == expected


def test_the_last_result_decides():
    assert parse_cli_output(f"{CLAUDE_NOT_LOGGED_IN}\n{CLAUDE_DONE}\n").error is False
    assert parse_cli_output(f"{CLAUDE_DONE}\n{CLAUDE_NOT_LOGGED_IN}\n").error is True


def test_a_message_is_one_bounded_line():
    long = json.dumps({"type": "result", "is_error": True, "result": "line one\nline two " + "x" * 1000})
    message = parse_cli_output(long).message
    assert message is not None and "\n" not in message and len(message) == MESSAGE_CHARS
    assert message.startswith("line one line two") and message.endswith("…")
