"""`photoseek` builds only the command that runs, from a static table of names, modules and one-liners
(photoseek.cli.COMMANDS); these tests keep that table in step with the command modules, so `--help`
cannot list a command that is gone, miss a new one, or show a one-liner that drifted from its help."""

from __future__ import annotations

import inspect
import pkgutil
from importlib import import_module

import typer
from typer.main import get_group

import photoseek.cli
from photoseek.cli import COMMANDS
from tests.helpers import run_cli


def _first_paragraph(help_text: str | None) -> str:
    return " ".join(inspect.cleandoc(help_text or "").partition("\f")[0].split("\n\n")[0].split())


def _registered() -> dict[str, tuple[str, str]]:
    """Every command the modules of photoseek.cli register: name -> (module, first paragraph of its help)."""
    found: dict[str, tuple[str, str]] = {}
    for module in pkgutil.iter_modules(photoseek.cli.__path__):
        commands = getattr(import_module(f"photoseek.cli.{module.name}"), "app", None)
        if not isinstance(commands, typer.Typer):
            continue
        for name, command in get_group(commands).commands.items():
            assert name not in found, f"{name} registered by {found[name][0]} and {module.name}"
            found[name] = (module.name, _first_paragraph(command.help))
    return found


def test_the_table_names_every_command_its_module_and_its_help():
    assert {name: (module, " ".join(summary.split())) for name, (module, summary) in COMMANDS.items()} == _registered()


def test_help_lists_every_command_with_its_one_liner():
    listed = " ".join(run_cli("--help").replace("│", " ").split())
    for name, (_, summary) in COMMANDS.items():
        first_words = " ".join(summary.replace("`", "").split()[:4])
        assert f"{name} {first_words}" in listed, name


def test_a_command_runs_and_shows_its_own_help():
    help_text = " ".join(run_cli("status", "--help").replace("│", " ").split())
    assert "--db" in help_text and "--device" in help_text and "--json" in help_text
    assert "tag [OPTIONS]" in run_cli("tag", "--help")
