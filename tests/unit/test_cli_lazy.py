"""The lazy command table of cli/commands.py against the real commands, and what a cron command imports."""

import pkgutil

import click

import agentmesh.cli
from agentmesh.cli.app import cli
from agentmesh.cli.commands import COMMANDS, load_command


def test_the_table_names_every_command_with_its_own_short_help():
    for name, entry in COMMANDS.items():
        command = load_command(name)
        assert isinstance(command, click.Command) and command.name == name
        assert entry.short_help == command.get_short_help_str(limit=1000), name


def test_every_command_of_cli_is_in_the_table():
    """A command defined in cli/ but missing from COMMANDS would be unreachable."""
    listed = {id(load_command(name)) for name in COMMANDS}
    for info in pkgutil.iter_modules(agentmesh.cli.__path__):
        module = __import__(f"agentmesh.cli.{info.name}", fromlist=["_"])
        for value in vars(module).values():
            ours = isinstance(value, click.Command) and value is not cli and value.callback is not None \
                and value.callback.__module__ == module.__name__
            if ours and not _subcommand(value):
                assert id(value) in listed, f"{module.__name__}: {value.name} is not in cli.main.COMMANDS"


def _subcommand(command: click.Command) -> bool:
    """Whether some group of cli/ holds `command` (then it is reached through that group)."""
    for name in COMMANDS:
        group = load_command(name)
        if isinstance(group, click.Group) and any(sub is command for sub in _walk(group)):
            return True
    return False


def _walk(group: click.Group):
    for sub in group.commands.values():
        yield sub
        if isinstance(sub, click.Group):
            yield from _walk(sub)
