"""cli/fast.py, the click-free parse of cron's `claims acquire`, `claims renew` and `tick`, against click's own
parse of the same command lines: click stays the one definition, the fast path only reads what click would."""

import io
from pathlib import Path

import click
import pytest

from agentmesh.cli.app import cli
from agentmesh.cli.fast import COMMAND_OPTIONS, GLOBAL_OPTIONS, TOP_COMMANDS, FastCall, fast_call
from agentmesh.cli.output import echo

ACCEPTED = [
    ["claims", "acquire", "5"],
    ["--config", "a.yaml", "claims", "acquire", "12"],
    ["--config=a.yaml", "--remote", "/srv/mesh.git", "--agent=a1", "claims", "acquire", "007"],
    ["-v", "--verbose", "--remote=file:///srv/m.git", "claims", "acquire", "--json", "3"],
    ["claims", "acquire", "3", "--work-branch", "a1/3-fix-it", "--json"],
    ["claims", "acquire", "--work-branch=a1/3-fix", "3"],
    ["--agent", "a1", "claims", "renew", "9"],
    ["claims", "renew", "9", "--expect", "ab" * 20, "--json"],
    ["claims", "renew", "--expect=" + "cd" * 20, "9"],
    ["tick"],
    ["--config", "a.yaml", "-v", "tick", "--json"],
    ["--remote=/srv/m.git", "--agent", "a1", "tick"],
]

REJECTED = [
    [], ["--help"], ["claims"], ["claims", "--help"], ["claims", "acquire"], ["claims", "acquire", "--help"],
    ["claims", "acquire", "-h"], ["claims", "list"], ["claims", "acquire", "0"], ["claims", "acquire", "x"],
    ["claims", "acquire", "-3"], ["claims", "acquire", "+3"], ["claims", "acquire", " 3"],
    ["claims", "acquire", "\u0663"], ["claims", "acquire", "1", "2"], ["claims", "acquire", "1", "--bogus"],
    ["claims", "acquire", "1", "--work-branch"], ["claims", "acquire", "1", "--work-branch="],
    ["claims", "acquire", "1", "--work-branch", "--json"], ["claims", "acquire", "1", "--json", "--json"],
    ["claims", "acquire", "1", "--json=yes"], ["claims", "acquire", "1", "--expect", "ab"],
    ["claims", "renew", "1", "--work-branch", "a/1-x"], ["claims", "acquire", "1", "--config", "a.yaml"],
    ["-vv", "claims", "acquire", "1"], ["--config", "claims", "acquire", "1"], ["--agent", "claims"],
    ["--remote", "--agent", "claims", "acquire", "1"], ["--version", "claims", "acquire", "1"],
    ["claims", "--json", "acquire", "1"], ["issue", "claims", "acquire", "1"],
    ["claims", "acquire", "1", "--", "2"], ["claims", "acquire", "--", "1"],
    ["tick", "--help"], ["tick", "1"], ["tick", "--json", "--json"], ["tick", "--bogus"], ["--json", "tick"],
    ["-vv", "tick"], ["tick", "claims", "acquire", "1"], ["--agent", "tick", "tick"], ["tick", "--"],
]


def click_parse(argv: list[str]) -> dict:
    """What click's own parse gives for argv: the global options and the command's parameters."""
    root = cli.make_context("agentmesh", list(argv))
    name, group, args = cli.resolve_command(root, unparsed(root))
    if not isinstance(group, click.Group):  # a top-level command
        return {"globals": root.params, "command": name, "params": group.make_context(name, args, parent=root).params}
    group_ctx = group.make_context(name, args, parent=root)
    name, command, args = group.resolve_command(group_ctx, unparsed(group_ctx))
    params = command.make_context(name, args, parent=group_ctx).params
    return {"globals": root.params, "command": name, "params": params}


def unparsed(ctx: click.Context) -> list[str]:
    """What a group left for its subcommand (`protected_args` before click 8.2)."""
    protected = getattr(ctx, "_protected_args", None)
    return [*(ctx.protected_args if protected is None else protected), *ctx.args]


def as_click_would(call: FastCall) -> dict:
    config = call.globals.get("config")
    params = {"issue": call.issue, "as_json": call.as_json,
              **{name.replace("-", "_"): None for name in (o[2:] for o in COMMAND_OPTIONS[call.command])},
              **{name.replace("-", "_"): value for name, value in call.options.items()}} \
        if call.command in COMMAND_OPTIONS else {"as_json": call.as_json}
    return {"globals": {"config": None if config is None else Path(config), "remote": call.globals.get("remote"),
                        "agent": call.globals.get("agent"), "verbose": call.verbose},
            "command": call.command, "params": params}


@pytest.mark.parametrize("argv", ACCEPTED, ids=" ".join)
def test_what_the_fast_path_reads_click_reads_the_same(argv):
    call = fast_call(argv)
    assert call is not None, argv
    assert as_click_would(call) == click_parse(argv)


@pytest.mark.parametrize("argv", REJECTED, ids=lambda a: " ".join(a) or "(none)")
def test_anything_unusual_is_left_to_click(argv):
    assert fast_call(argv) is None


def test_a_config_click_would_refuse_is_left_to_click(tmp_path):
    assert fast_call(["--config", str(tmp_path), "claims", "acquire", "1"]) is None  # a directory
    config = tmp_path / "agentmesh.yaml"
    assert fast_call(["--config", str(config), "claims", "acquire", "1"]) is not None  # missing: the loader says
    with pytest.raises(click.UsageError):
        click_parse(["--config", str(tmp_path), "claims", "acquire", "1"])


def test_the_fast_path_knows_every_option_of_its_commands():
    """A new option of `claims acquire`/`renew` (or a global one) must be taught to cli/fast.py, or it
    would be read as unknown and every cron claim using it would silently pay for click again."""
    own = {"--help", "-h", "--version"}
    assert {o for p in cli.params for o in p.opts} - own == {*GLOBAL_OPTIONS, "-v", "--verbose"}
    claims = cli.get_command(click.Context(cli), "claims")
    assert isinstance(claims, click.Group)
    for name, options in COMMAND_OPTIONS.items():
        command = claims.commands[name]
        assert {o for p in command.params for o in p.opts} - own == {*options, "--json", "issue"}, name
    for name in TOP_COMMANDS:
        command = cli.get_command(click.Context(cli), name)
        assert command is not None and not isinstance(command, click.Group)
        assert {o for p in command.params for o in p.opts} - own == {"--json"}, name


@pytest.mark.parametrize("encoding", ["utf-8", "ascii"])
@pytest.mark.parametrize("err", [False, True])
def test_echo_writes_what_click_echo_writes(monkeypatch, encoding, err):
    """output.echo no longer goes through click.echo (the fast path never imports click): same bytes,
    on a UTF-8 stream and on a misconfigured ASCII one."""
    written = {}
    for name, write in (("ours", lambda t: echo(t, err=err)), ("click", lambda t: click.echo(t, err=err))):
        raw = io.BytesIO()
        stream = io.TextIOWrapper(raw, encoding=encoding, write_through=False)
        monkeypatch.setattr("sys.stderr" if err else "sys.stdout", stream)
        write("claim #5: won (abc) \u00d7 caf\u00e9 \u2713")
        write("")
        stream.flush()
        written[name] = raw.getvalue()
    assert written["ours"] == written["click"]
    assert written["ours"].startswith(b"claim #5: won (abc) ")
