"""CI runs the test command the README gives, so the README's command is the one known to work."""

from tests.support import REPO


def test_ci_ends_with_the_readmes_test_command():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme.split("```sh\n", 1)[1].split("```", 1)[0].splitlines()
    test_command = block[1].split(" && ")[-1]
    ci_last_line = (REPO / ".ci" / "run").read_text(encoding="utf-8").rstrip("\n").splitlines()[-1]
    assert ci_last_line == test_command
