"""The command lines cron runs most, parsed without click: `claims acquire`, `claims renew` and `tick`.

Importing click and building its parser costs a claim from cron about as much as the claim's own push
(docs/benchmarks.md). A plain command line of these commands is read here instead; anything else,
or anything unusual in them (help, an unknown or repeated option, a value that looks like an option, an
issue that is not plain digits), returns None and goes to click, which stays the one definition of the
command line (cli/app.py, cli/claims.py, cli/tick.py). tests/unit/test_cli_fast.py checks that every command line this
module accepts is parsed by click to the same values, and that it knows every option those commands have.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from agentmesh.cli.context import Globals, Seen
from agentmesh.core.record import Record

GLOBAL_OPTIONS = ("--config", "--remote", "--agent")  # each takes a value; -v/--verbose counts
# command -> its options that take a value (every command also has the --json flag)
COMMAND_OPTIONS = {"acquire": ("--work-branch",), "renew": ("--expect",)}
# top-level commands, which take no argument and no option but --json (a tick loads pydantic anyway, but
# click and its parser are ~38 M instructions more of every cron tick: docs/benchmarks.md, session 12)
TOP_COMMANDS = ("tick",)


class FastCall(Record):
    """A parsed `claims acquire`, `claims renew` or `tick`: the global options, the issue and the options."""

    globals: dict[str, str]  # option name without dashes -> value, for those given
    verbose: int
    command: str  # a key of COMMAND_OPTIONS, or one of TOP_COMMANDS
    issue: int  # 0 for TOP_COMMANDS, which take none
    options: dict[str, str]  # option name without dashes -> value, for those given
    as_json: bool


def _options(args: Sequence[str], known: Sequence[str],
             flags: Sequence[str]) -> tuple[dict[str, str], list[str]] | None:
    """`known` options (`--name value` or `--name=value`, each at most once), the flags seen (as keys with
    an empty value) and the other arguments; None for anything else that starts with a dash."""
    found: dict[str, str] = {}
    rest: list[str] = []
    items = iter(args)
    for arg in items:
        name, equals, value = arg.partition("=")
        if name in known:
            if not equals:
                value = next(items, "")
            if value == "" or value.startswith("-") or name in found:
                return None
            found[name] = value
        elif arg in flags and arg not in found:
            found[arg] = ""
        elif arg.startswith("-"):
            return None
        else:
            rest.append(arg)
    return found, rest


def fast_call(argv: Sequence[str]) -> FastCall | None:
    """The call of a plain `[global options] claims acquire|renew ISSUE [options]` or `[global options] tick
    [--json]`; None for click to parse."""
    split = next((n for n, arg in enumerate(argv) if arg in ("claims", *TOP_COMMANDS)), None)
    if split is None:
        return None
    head, tail = list(argv[:split]), list(argv[split + 1:])
    verbose = sum(1 for arg in head if arg in ("-v", "--verbose"))
    parsed = _options([arg for arg in head if arg not in ("-v", "--verbose")], GLOBAL_OPTIONS, ())
    if parsed is None or parsed[1]:
        return None
    found, _ = parsed
    config = found.get("--config")
    if config is not None and os.path.exists(config) and (os.path.isdir(config) or not os.access(config, os.R_OK)):
        return None  # click says why it cannot be the config file (click.Path: a directory, or unreadable)
    globals_ = {name[2:]: value for name, value in found.items()}
    if argv[split] in TOP_COMMANDS:
        flags = _options(tail, (), ("--json",))
        if flags is None or flags[1]:
            return None
        return FastCall(globals_, verbose, argv[split], 0, {}, "--json" in flags[0])
    if not tail or tail[0] not in COMMAND_OPTIONS:
        return None
    command = tail[0]
    options = _options(tail[1:], COMMAND_OPTIONS[command], ("--json",))
    if options is None or len(options[1]) != 1:
        return None
    given, (issue,) = options
    if not (issue.isascii() and issue.isdigit()) or int(issue) < 1:
        return None
    return FastCall(globals_, verbose, command, int(issue),
                    {name[2:]: value for name, value in given.items() if name != "--json"}, "--json" in given)


def run_fast(call: FastCall, seen: Seen) -> int:
    """Run the call as its click command would (cli/claims.py, cli/tick.py): the same verbs, on the same
    plumbing or mesh."""
    from agentmesh.cli.claim_verbs import acquire, renew

    seen.as_json = call.as_json
    config = call.globals.get("config")
    g = Globals(None if config is None else Path(config), call.globals.get("remote"), call.globals.get("agent"),
                call.verbose, seen)
    if call.command == "tick":
        from agentmesh.cli.tick_verbs import tick

        return tick(g.mesh, g.verbose, call.as_json)
    plumbing = g.plumbing()
    try:
        store = plumbing.claims(presign=True)  # each command signs one claim commit
        if call.command == "acquire":
            return acquire(store, call.issue, call.options.get("work-branch"), call.as_json)
        return renew(store, call.issue, call.options.get("expect"), call.as_json)
    finally:
        plumbing.cache.abandon_presigned()
