"""`--help` on an 80-column terminal shows every option name and environment variable whole, so it
can be read and copied (`photoseek.cli.common.uncut_option_names`)."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from photoseek.cli import app
from photoseek.cli.common import command_of

_ENV_VAR = re.compile(r"\$[A-Z][A-Z0-9_]+")


@pytest.mark.parametrize("command", ["serve", "index"])
def test_help_at_80_columns_shows_every_option_and_env_var_whole(command):
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "80", "TERMINAL_WIDTH": ""})
    assert result.exit_code == 0, result.output
    shown = result.output
    assert max(len(line) for line in shown.splitlines()) <= 80
    params = command_of(command, command).params
    names = [name for p in params for name in (*p.opts, *p.secondary_opts) if name.startswith("--")]
    env_vars = {v for p in params for v in _ENV_VAR.findall(getattr(p, "help", None) or "")}
    assert len(names) > 10 and env_vars  # the options this test is about are there to check
    words = set(re.findall(r"[^\s│╭╮╰╯─,()]+", shown))
    assert not [w for w in words if "…" in w], shown
    for name in names:
        assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", shown), (name, shown)
    for var in env_vars:
        assert var in shown, (var, shown)

