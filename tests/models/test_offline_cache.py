"""README's "Models without network": a copied hub cache is found through HF_HUB_CACHE or HF_HOME.

Each run is a separate `photoseek` process with no network to reach (HF_HUB_OFFLINE, or a Hub
address where nothing listens), so the variables are read exactly as from a user's shell.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from photoseek.models import DEFAULT_MODEL
from tests.fakehub import FakeHub
from tests.helpers import three_colour_photos
from tests.hubcache import clean_env, place_in_hub_cache, run_photoseek

NO_HUB = "http://127.0.0.1:9"
"""The discard port: nothing listens, so any attempt to reach the Hub fails at once."""


@pytest.fixture(scope="module")
def copied_cache(tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path) -> Path:
    """A `~/.cache/huggingface` as copied from a connected machine: hub/ holding the default model."""
    hf_home = tmp_path_factory.mktemp("copied") / "huggingface"
    place_in_hub_cache(tiny_clip_dir, f"immich-app/{DEFAULT_MODEL}", hf_home / "hub")
    return hf_home


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    return three_colour_photos(tmp_path / "photos")


@pytest.mark.parametrize(
    "variables",
    [
        pytest.param(lambda cache: {"HF_HUB_CACHE": str(cache / "hub"), "HF_ENDPOINT": NO_HUB}, id="HF_HUB_CACHE"),
        pytest.param(lambda cache: {"HF_HOME": str(cache), "HF_HUB_OFFLINE": "1"}, id="HF_HOME"),
    ],
)
def test_copied_cache_is_found_without_network(copied_cache, photos, tmp_path, variables) -> None:
    env = clean_env(tmp_path / "home", **variables(copied_cache))
    indexed = run_photoseek("index", str(photos), env=env)
    assert indexed.returncode == 0, indexed.stderr
    status = run_photoseek("status", "--json", env=env)
    assert '"images": 3' in status.stdout, status.stdout + status.stderr


def test_home_pointed_at_the_hub_folder_fails_fast_and_names_hf_hub_cache(copied_cache, photos, tmp_path) -> None:
    """What the README used to say (HF_HOME at the copied hub folder) cannot work; the error says what does."""
    env = clean_env(tmp_path / "home", HF_HOME=str(copied_cache / "hub"), HF_ENDPOINT=NO_HUB)
    start = time.monotonic()
    indexed = run_photoseek("index", str(photos), env=env)
    assert time.monotonic() - start < 30  # the process start and imports included; the lookup is instant
    assert indexed.returncode == 4
    message = " ".join(indexed.stderr.split())
    assert "HF_HUB_CACHE" in message and f"photoseek models download {DEFAULT_MODEL}" in message


def test_downloaded_model_is_found_offline_afterwards(tiny_clip_dir, photos, tmp_path) -> None:
    """`photoseek models download` on a connected machine, then the same cache with no network."""
    env = clean_env(tmp_path / "home", HF_HUB_CACHE=str(tmp_path / "hub"))
    with FakeHub({f"immich-app/{DEFAULT_MODEL}": tiny_clip_dir}) as hub:
        fetched = run_photoseek("models", "download", env={**env, "HF_ENDPOINT": hub.url})
    assert fetched.returncode == 0, fetched.stderr
    assert "visual/model.onnx" in hub.fetched and "textual/model.onnx" in hub.fetched
    indexed = run_photoseek("index", str(photos), env={**env, "HF_HUB_OFFLINE": "1"})
    assert indexed.returncode == 0, indexed.stderr
