"""Named models: cache first, fast and helpful failure without network, never a hang."""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

import pytest

from photoseek.errors import ModelNotAvailableError
from photoseek.models import DEFAULT_MODEL, hub, list_known_models, load_clip, resolve_model_dir
from tests.hubcache import place_in_hub_cache


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No HF_HUB_OFFLINE, and every cache location pointed at an empty folder."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv(hub.MODEL_DIR_ENV, str(tmp_path / "models"))
    return tmp_path / "models"


def test_missing_model_without_network_fails_fast(empty_cache: Path) -> None:
    start = time.monotonic()
    with pytest.raises(ModelNotAvailableError) as info:
        load_clip("ViT-B-32__openai")
    assert time.monotonic() - start < 5
    message = str(info.value)
    assert "--model-path" in message
    assert "photoseek models export" in message
    assert "HF_HOME" in message
    assert "\n" not in message  # one line, like every error


def test_slow_dns_does_not_hang(empty_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def stalled_dns(*args: object, **kwargs: object) -> list[object]:
        time.sleep(30)
        return []

    monkeypatch.setattr(socket, "getaddrinfo", stalled_dns)
    start = time.monotonic()
    with pytest.raises(ModelNotAvailableError, match="timed out"):
        resolve_model_dir("ViT-B-32__openai")
    assert time.monotonic() - start < 5


def test_offline_mode_is_respected(empty_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub, "_probe_hub", lambda: pytest.fail("must not touch the network"))
    with pytest.raises(ModelNotAvailableError, match="HF_HUB_OFFLINE"):
        resolve_model_dir("ViT-B-32__openai")


def test_default_model_is_used_without_a_name(empty_cache: Path) -> None:
    with pytest.raises(ModelNotAvailableError, match=DEFAULT_MODEL):
        load_clip()


def test_invalid_name_lists_known_models(empty_cache: Path) -> None:
    with pytest.raises(ModelNotAvailableError, match="ViT-B-32__openai") as info:
        resolve_model_dir("no such model!")
    assert "not a valid model name" in str(info.value)


def test_unknown_name_lists_known_models_when_offline(empty_cache: Path) -> None:
    with pytest.raises(ModelNotAvailableError, match="not a model photoseek knows"):
        resolve_model_dir("Totally-Made-Up__model")


def test_plain_copy_in_model_dir_is_found(empty_cache: Path, tiny_clip_dir: Path) -> None:
    shutil.copytree(tiny_clip_dir, empty_cache / "ViT-B-32__openai")
    assert resolve_model_dir("immich-app/ViT-B-32__openai") == empty_cache / "ViT-B-32__openai"
    assert load_clip("ViT-B-32__openai").model_id == "ViT-B-32__openai"


def test_hf_cache_snapshot_is_found_offline(empty_cache: Path, tiny_clip_dir: Path) -> None:
    snapshot = place_in_hub_cache(tiny_clip_dir, "immich-app/ViT-B-32__openai", empty_cache)
    found = resolve_model_dir("ViT-B-32__openai")
    assert found == snapshot
    assert load_clip(path=found).model_id == "photoseek-tiny-clip/random-seed0"


def test_curated_table_has_the_default() -> None:
    models = {m.name: m for m in list_known_models()}
    assert DEFAULT_MODEL in models
    assert DEFAULT_MODEL in hub.HUB_MODELS
    assert all(m.name in hub.HUB_MODELS for m in models.values())
    default = models[DEFAULT_MODEL]
    assert default.flickr30k_r1 is not None and default.coco_r1 is not None
