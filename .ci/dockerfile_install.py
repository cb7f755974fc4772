"""Run a Dockerfile's install steps (its `python -m venv` and `pip` RUN lines) in a fresh venv, as the image would.

There is no Docker engine in CI, so this reads the Dockerfile instead: ARG defaults and ENV become
the environment, COPY copies from the repository into a scratch "container root", WORKDIR sets the
directory, and every RUN line that makes the venv or calls pip runs under /bin/sh. Absolute paths
named by ENV (``/opt/venv``) are moved under the scratch root. Other RUN lines (apt-get, useradd)
need root and a Debian image and are listed as skipped. A broken RUN line fails the job.

    python .ci/dockerfile_install.py Dockerfile --forbid torch --run "photoseek --help"
    python .ci/dockerfile_install.py Dockerfile.gpu --dry-run     # resolve only: pip install --dry-run
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
INSTALL_STEP = re.compile(r"(^|[\s;&|(])(pip3?|python3?\s+-m\s+(pip|venv))\s")
VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)\}")


@dataclass
class Step:
    kind: str
    """RUN, COPY or WORKDIR."""
    args: str
    stage: str
    env: dict[str, str] = field(default_factory=dict)
    """ARG defaults and ENV values in force at this step (container paths, not yet moved)."""
    paths: frozenset[str] = frozenset()
    """Absolute paths the Dockerfile itself writes in ENV values: these live in the container."""


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comment lines dropped."""
    joined: list[str] = []
    pending = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") or (not line.strip() and pending):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    result = []
    for line in filter(str.strip, joined):
        word, _, rest = line.strip().partition(" ")
        result.append((word.upper(), " ".join(rest.split())))
    return result


def parse(dockerfile: Path) -> tuple[list[Step], dict[str, str], set[str], list[str]]:
    """The steps in order, the final stage's ENV and container paths, and its CMD as a list."""
    steps: list[Step] = []
    global_args: dict[str, str] = {}
    env: dict[str, str] = {}
    paths: set[str] = set()
    stage = ""
    cmd: list[str] = []
    for word, args in instructions(dockerfile.read_text(encoding="utf-8")):
        if word == "FROM":
            parts = args.split()
            stage = parts[-1] if len(parts) >= 3 and parts[-2].upper() == "AS" else parts[0]
            env = dict(global_args)
        elif word == "ARG":
            name, _, default = args.partition("=")
            (env if stage else global_args)[name] = expand(default.strip('"'), env if stage else global_args)
        elif word == "ENV":
            for pair in shlex.split(args):
                name, _, value = pair.partition("=")
                paths.update(p for p in value.split(":") if p.startswith("/") and not _is_system(p))
                env[name] = expand(value, env)
        elif word in ("RUN", "COPY", "WORKDIR"):
            steps.append(Step(word, args, stage, dict(env), frozenset(paths)))
        elif word == "CMD":
            cmd = json.loads(args) if args.startswith("[") else ["/bin/sh", "-c", args]
    return steps, env, paths, cmd


def expand(value: str, env: dict[str, str]) -> str:
    """$NAME and ${NAME} from `env`, else from the process (as $PATH in an ENV line)."""
    return VARIABLE.sub(lambda m: env.get(m[1] or m[2], os.environ.get(m[1] or m[2], "")), value)


class Sandbox:
    """A scratch directory that stands in for the container's file system."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, container_path: str) -> Path:
        return self.root / container_path.lstrip("/")

    def moved(self, text: str, paths: frozenset[str] | set[str]) -> str:
        """`text` with the container's own absolute paths (and their children) moved under the root."""
        for path in sorted(paths, key=len, reverse=True):
            text = re.sub(rf"(?<![\w/.-]){re.escape(path)}(?=$|[/:\s\"'])", str(self.path(path)), text)
        return text

    def environment(self, env: dict[str, str], paths: frozenset[str] | set[str]) -> dict[str, str]:
        """The step's environment: the image's ENV (moved) over this process's, without Python path overrides."""
        outside = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONUSERBASE")}
        return {**outside, **{name: self.moved(value, paths) for name, value in env.items()}}


def _is_system(path: str) -> bool:
    return path.split("/")[1] in {"usr", "bin", "sbin", "lib", "etc", "tmp", "dev", "proc", "sys"}


def run(dockerfile: Path, sandbox: Sandbox, dry_run: bool) -> tuple[dict[str, str], list[str]]:
    """Replay the install steps; returns the final stage's environment and CMD (paths moved)."""
    steps, final_env, final_paths, cmd = parse(dockerfile)
    workdir = {step.stage: sandbox.root for step in steps}
    for step in steps:
        if step.kind == "WORKDIR":
            workdir[step.stage] = sandbox.path(expand(step.args, step.env))
            workdir[step.stage].mkdir(parents=True, exist_ok=True)
        elif step.kind == "COPY":
            copy(step, sandbox, workdir[step.stage], dockerfile.parent)
        elif INSTALL_STEP.search(step.args):
            command = sandbox.moved(step.args, step.paths)
            if dry_run:
                command = re.sub(r"\bpip3? install\b", r"\g<0> --dry-run", command)
            print(f"+ [{step.stage}] {command}", flush=True)
            environment = sandbox.environment(step.env, step.paths)
            subprocess.run(["/bin/sh", "-ec", command], cwd=workdir[step.stage], env=environment, check=True)
        else:
            print(f"  skipped (needs the base image): RUN {step.args[:100]}", flush=True)
    return sandbox.environment(final_env, final_paths), cmd


def copy(step: Step, sandbox: Sandbox, workdir: Path, context: Path) -> None:
    """COPY SRC... DEST from the build context; COPY --from=stage is the venv, already in place."""
    words = [w for w in shlex.split(step.args) if not w.startswith("--")]
    if "--from=" in step.args:
        return
    *sources, dest = words
    target = sandbox.path(dest) if dest.startswith("/") else workdir / dest
    for source in sources:
        found = context / source
        if not found.exists():
            raise SystemExit(f"COPY {source}: no such file in the build context {context}")
        into = target / found.name if dest.endswith("/") or len(sources) > 1 else target
        into.parent.mkdir(parents=True, exist_ok=True)
        if found.is_dir():
            shutil.copytree(found, into, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(found, into)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dockerfile", type=Path)
    parser.add_argument("--dry-run", action="store_true", help="pip install --dry-run: resolve, install nothing")
    parser.add_argument("--forbid", action="append", default=[], help="module that must not be installed")
    parser.add_argument("--run", action="append", default=[], help="command that must succeed in the venv")
    parser.add_argument("--keep", action="store_true", help="keep the scratch root (printed)")
    options = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="dockerfile-install-"))
    try:
        env, cmd = run(options.dockerfile.resolve(), Sandbox(root), options.dry_run)
        if options.dry_run:
            return 0
        if cmd and shutil.which(cmd[0], path=env["PATH"]) is None:
            raise SystemExit(f"CMD {cmd[0]!r} is not on the image's PATH after the install steps")
        for module in options.forbid:
            code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is not None)"
            if subprocess.run(["python", "-c", code], env=env).returncode:
                raise SystemExit(f"{module} is installed, but this image must not contain it")
        for command in options.run:
            print(f"+ {command}", flush=True)
            subprocess.run(["/bin/sh", "-ec", command], env=env, check=True, stdout=subprocess.DEVNULL)
        print(f"{options.dockerfile}: install steps OK ({', '.join(cmd)})")
        return 0
    finally:
        if options.keep:
            print(f"scratch root kept at {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
