"""What may leave the host: echoed command lines dropped, secrets redacted, host paths as placeholders."""

from hypothesis import given
from hypothesis import strategies as st

from agentmesh.core.public import COMMAND_ECHO, public_text, replace_places, without_command_echo

PLACES = [("/home/al/.local/state/agentmesh/al/worktrees/*", "<worktree>"),
          ("/home/al/.local/state/agentmesh/al", "<state>"), ("/home/al", "<home>")]
TOKEN = "ghp" + "_" + "Q7w" * 12


def test_host_paths_become_placeholders_the_longest_first():
    text = ("File \"/home/al/.local/state/agentmesh/al/worktrees/al--3-fix/check.py\", line 2\n"
            "log in /home/al/.local/state/agentmesh/al/logs/x.log; config /home/al/.config/agentmesh/env\n"
            "cwd=/home/al\n")
    assert replace_places(text, PLACES) == (
        "File \"<worktree>/check.py\", line 2\nlog in <state>/logs/x.log; config <home>/.config/agentmesh/env\n"
        "cwd=<home>\n")


def test_a_path_counts_only_as_a_whole():
    assert replace_places("/home/alice/x and /home/al-old and /home/al.", PLACES) == (
        "/home/alice/x and /home/al-old and <home>.")


def test_root_and_empty_places_are_ignored():
    assert replace_places("/usr/bin/python3 /", [("/", "<home>"), ("", "<x>"), ("/*", "<y>")]) == "/usr/bin/python3 /"


def test_the_echoed_command_line_is_dropped_and_only_it():
    log = (f"{COMMAND_ECHO}bwrap --ro-bind /usr /usr --bind /home/al/wt /home/al/wt -- python3 check.py\n"
           "$ echo hello\nhello\n")
    assert without_command_echo(log) == "$ echo hello\nhello\n"


def test_public_text_does_all_three():
    log = (f"{COMMAND_ECHO}bwrap --bind /home/al/.local/state/agentmesh/al/worktrees/al--1-x /x -- sh\n"
           f"token {TOKEN[::-1]} in /home/al/.local/state/agentmesh/al/worktrees/al--1-x/out.txt\n")
    out = public_text(log, known_secrets=[TOKEN], places=PLACES)
    assert out == "token [REDACTED] in <worktree>/out.txt\n"


@given(st.text(max_size=300))
def test_no_place_survives(text):
    planted = f"{text}/home/al/.local/state/agentmesh/al/worktrees/a b/home/al/.local/state/agentmesh/al/x{text}"
    out = public_text(planted, known_secrets=[], places=PLACES)
    assert "/home/al/.local/state" not in out
