"""The `agentmesh` command: the one place where errors become messages and exit codes.

Commands are registered lazily (cli/commands.py) and parsed by click (cli/app.py), except the commands
cron runs (`claims acquire`, `claims renew`, `tick`): a plain command line of theirs is parsed without
importing click at all (cli/fast.py).
"""

from __future__ import annotations

import sys

from agentmesh.cli.context import Seen

_GLOBAL_WITH_VALUE = ("--config", "--remote", "--agent")


def main_for(command: str, argv: list[str]) -> None:
    """Run one command with global options allowed anywhere (the scripts/ entry points)."""
    globals_: list[str] = []
    rest: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg in _GLOBAL_WITH_VALUE:
            globals_ += [arg, next(args, "")]
        elif arg.startswith(tuple(f"{o}=" for o in _GLOBAL_WITH_VALUE)) or arg in ("-v", "--verbose", "-vv"):
            globals_.append(arg)
        else:
            rest.append(arg)
    main([*globals_, command, *rest])


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the command and turn every outcome into an exit code."""
    from agentmesh.cli.fast import fast_call, run_fast

    seen = Seen()
    call = None
    try:
        call = fast_call(sys.argv[1:] if argv is None else argv)
        if call is not None:
            code = run_fast(call, seen)
        else:
            from agentmesh.cli.app import run_click

            code = run_click(argv, seen)
    except BrokenPipeError:  # the reader of our output went away (`| head`): quietly 1, as click does it
        quiet_streams()
        code = 1
    except KeyboardInterrupt:
        from agentmesh.cli.output import echo

        echo("agentmesh: interrupted", err=True)
        code = 130
    except Exception as exc:  # noqa: BLE001 -- every error becomes a message and an exit code; a bug keeps its evidence
        from agentmesh.cli.output import emit_error
        from agentmesh.ops.failures import command_crash_dir, failure

        failed = failure(exc, crash_dir=command_crash_dir(seen.state_root))
        emit_error(failed.message, failed.exit_code, as_json=seen.as_json)
        code = failed.exit_code
    if call is not None and argv is None:  # this process's own command line: cron's claim or tick
        leave_now(code or 0)
    sys.exit(code or 0)


def quiet_streams() -> None:
    """Send what is still to be written to stdout and stderr to /dev/null: nothing more to say to a reader
    that went away, nor a flush error at exit."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                os.dup2(devnull, stream.fileno())
        except (OSError, ValueError):
            pass  # not a descriptor (a test's capture): nothing to redirect
    os.close(devnull)


def leave_now(code: int) -> None:
    """End the process at once, skipping the interpreter's teardown (freeing every module and object costs
    a claim from cron as much as a git process; docs/benchmarks.md). Only when that teardown has nothing
    left to do: the standard streams flushed, no atexit callback and no other thread. Otherwise it returns,
    and the caller exits the ordinary way."""
    import atexit
    import os

    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:  # None: started without that descriptor
                stream.flush()
    except (OSError, ValueError):
        return  # a closed or broken stream: Python's own exit reports it, as it always did
    threading = sys.modules.get("threading")
    if atexit._ncallbacks() == 0 and (threading is None or threading.active_count() == 1):
        os._exit(code)
