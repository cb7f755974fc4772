"""The Docker files hold together: what compose builds and mounts, what the Dockerfiles copy and run.

No Docker engine here; CI replays the install steps in a fresh venv (.ci/dockerfile_install.py).
These checks catch the rest without network: a renamed file, an extra that does not exist, a
health check on a path that needs the token, a token on the command line, root at run time.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import sys
from pathlib import Path

import pytest

from photoseek.server.config import TOKEN_ENV_VAR
from photoseek.store.catalog import DB_ENV_VAR

yaml = pytest.importorskip("yaml")
tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = ["Dockerfile", "Dockerfile.gpu"]


def _ci_module():
    spec = importlib.util.spec_from_file_location("dockerfile_install", REPO / ".ci" / "dockerfile_install.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


CI = _ci_module()


def _compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))


def _default(value: str) -> str:
    """'${NAME:-default}' -> 'default'; plain text as is."""
    match = re.fullmatch(r"\$\{\w+:-([^}]*)\}", value)
    return match.group(1) if match else value


def test_compose_builds_files_that_exist_and_runs_photoseek_beside_qdrant():
    services = _compose()["services"]
    assert {"photoseek", "qdrant"} <= set(services)
    build = services["photoseek"]["build"]
    context = REPO / build["context"]
    assert context.is_dir() and (context / _default(build["dockerfile"])).is_file()
    for name in DOCKERFILES:  # the GPU variant is selected through the same variable
        assert (context / name).is_file()
    assert "qdrant" in services["photoseek"]["depends_on"]


def test_compose_mounts_photos_read_only_and_keeps_data_and_models_in_volumes():
    compose = _compose()
    service = compose["services"]["photoseek"]
    mounts = {m.split(":")[-2] if m.endswith(":ro") else m.split(":")[-1]: m for m in service["volumes"]}
    assert mounts["/photos"].endswith(":/photos:ro")
    runtime = CI.parse(REPO / "Dockerfile")[1]
    assert Path(runtime[DB_ENV_VAR]).parent.as_posix() in mounts and runtime["HF_HOME"] in mounts
    for mount in service["volumes"]:
        source = mount.split(":")[0]
        assert source.startswith("${") or source in compose["volumes"], f"undeclared volume {source}"


def test_compose_passes_the_token_in_the_environment_not_the_command_line():
    service = _compose()["services"]["photoseek"]
    assert TOKEN_ENV_VAR in service["environment"]
    assert "--token" not in json.dumps(service)
    for port in service["ports"]:
        assert port.startswith("127.0.0.1:"), "published on loopback only; a reverse proxy exposes it"


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfile_copies_existing_files_that_dockerignore_keeps(name):
    ignored = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    steps = CI.parse(REPO / name)[0]
    copied = [w for s in steps if s.kind == "COPY" and "--from=" not in s.args for w in shlex.split(s.args)[:-1]]
    assert {"pyproject.toml", "README.md", "src"} <= set(copied)
    for source in copied:
        assert (REPO / source).exists(), source
        assert source not in ignored and source.split("/")[0] not in ignored


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfile_installs_extras_that_exist_and_no_torch(name):
    extras = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    steps, _, _, _ = CI.parse(REPO / name)
    installs = [CI.expand(s.args, s.env) for s in steps if s.kind == "RUN" and CI.INSTALL_STEP.search(s.args)]
    asked = {e for command in installs for group in re.findall(r"\.\[([\w,-]+)\]", command) for e in group.split(",")}
    assert asked and asked <= extras, asked - extras  # pip only warns about an unknown extra
    assert not asked & {"torch", "text", "train", "all"}, "torch stays out of the image"
    assert any(re.search(r"-m venv", c) for c in installs)


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfile_runs_the_server_as_a_non_root_user_with_a_health_check(name):
    pytest.importorskip("starlette", reason="the server's open paths need the server extra")
    from photoseek.server.security import OPEN_PATHS

    text = (REPO / name).read_text()
    instructions = CI.instructions(text)
    users = [args for word, args in instructions if word == "USER"]
    assert users and users[-1] not in ("root", "0")
    (health,) = [args for word, args in instructions if word == "HEALTHCHECK"]
    url = re.search(r"http://127\.0\.0\.1:(\d+)(/\w*)", health)
    assert url and url.group(2) in OPEN_PATHS  # answers without the token
    cmd = CI.parse(REPO / name)[3]
    assert cmd[:2] == ["photoseek", "serve"] and cmd[cmd.index("--host") + 1] == "0.0.0.0"
    assert cmd[cmd.index("--port") + 1] == url.group(1) and "--token" not in cmd
    volumes = json.loads(next(args for word, args in instructions if word == "VOLUME"))
    assert {"/data", "/models"} <= set(volumes)


def test_install_steps_are_replayed_with_container_paths_moved_into_a_scratch_root(tmp_path):
    steps, env, paths, _ = CI.parse(REPO / "Dockerfile")
    sandbox = CI.Sandbox(tmp_path)
    assert "/opt/venv" in paths and sandbox.environment(env, paths)["VIRTUAL_ENV"] == str(tmp_path / "opt/venv")
    path = sandbox.environment(env, paths)["PATH"].split(":")
    assert path[0] == str(tmp_path / "opt/venv/bin") and "/usr/bin" in path  # the outside PATH follows, unmoved
    runs = [s for s in steps if s.kind == "RUN" and CI.INSTALL_STEP.search(s.args)]
    assert len(runs) == 3 and all(s.stage == "build" for s in runs)
