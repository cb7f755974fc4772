"""A Hugging Face hub cache built by hand: how a copied cache looks on a machine without network."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REVISION = "0123456789abcdef0123456789abcdef01234567"
SRC = Path(__file__).resolve().parents[1] / "src"


def place_in_hub_cache(folder: Path, repo_id: str, hub_cache: Path) -> Path:
    """Copy `folder` into `hub_cache` as the snapshot of `repo_id` (models--org--name/snapshots/<rev>/, refs/main)."""
    repo = hub_cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / REVISION
    shutil.copytree(folder, snapshot)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(REVISION)
    return snapshot


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a user on a fresh machine: no HF or photoseek settings, data and caches under `home`."""
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("HF_", "HUGGINGFACE", "PHOTOSEEK_", "TRANSFORMERS_", "XDG_")) and k != "PYTHONPATH"
    }
    env.update(
        HOME=str(home), XDG_DATA_HOME=str(home / "data"), XDG_CACHE_HOME=str(home / "cache"),
        XDG_CONFIG_HOME=str(home / "config"), **extra,
    )
    return env


def run_photoseek(
    *args: str, env: dict[str, str], first_on_path: Path | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """This checkout's `photoseek` in a process of its own, so HF_* variables are read as at a user's shell.

    `first_on_path` goes before everything on sys.path: a stub module there can hide an installed package.
    """
    path = [str(first_on_path)] if first_on_path else []
    env = {**env, "PYTHONPATH": os.pathsep.join([*path, str(SRC)])}
    return subprocess.run(
        [sys.executable, "-m", "photoseek", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def seconds_to_import(*modules: str, env: dict[str, str]) -> float:
    """Wall time of a fresh process that imports `modules`: the floor under any command that needs
    them, so a bound on "fails within seconds" holds on a loaded machine too."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", f"import {', '.join(modules)}"], env=env, check=True, timeout=300)
    return time.monotonic() - started
