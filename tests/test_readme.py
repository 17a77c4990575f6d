"""The README's set-up commands and CI stay in sync."""

from __future__ import annotations

import re

from conftest import REPO


def _readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text()
    first_screen = text.split("\n## ", 1)[0]
    return re.findall(r"^```(?:bash|sh)\n(.+?)\n```", first_screen, flags=re.S | re.M)


def test_first_screen_has_exactly_two_setup_commands():
    commands = _readme_commands()
    assert len(commands) == 2, commands
    assert "regime quickstart" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_exactly_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    assert _readme_commands()[1].strip() in ci
