"""`python -m ntbcare.cli` is the whole `ntbcare` command: `ntbcare run` starts its worker that way, and
operators without the console script on their PATH use it. It once offered only half the command groups."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ntbcare.cli import cli

pytestmark = pytest.mark.slow

GROUPS = {"agencies", "classify", "deliveries", "init", "replay", "replies", "routing", "run", "serve", "templates",
          "tickets", "worker"}


def listed_commands(help_text: str) -> set[str]:
    """The command names click lists under "Commands:" in a help page."""
    lines = help_text.split("Commands:", 1)[1].splitlines()
    return {line.split()[0] for line in lines if line.startswith("  ") and line.split()}


def module_help(tmp_path: Path, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "ntbcare.cli", *args, "--help"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_python_m_ntbcare_cli_offers_every_command_group(tmp_path: Path) -> None:
    commands = listed_commands(module_help(tmp_path))
    assert commands >= GROUPS
    assert commands == set(cli.commands)  # the same command as the `ntbcare` script, nothing missing


def test_python_m_ntbcare_cli_offers_the_operators_decisions(tmp_path: Path) -> None:
    assert {"assign", "not-complaint", "list", "show"} <= listed_commands(module_help(tmp_path, "tickets"))
