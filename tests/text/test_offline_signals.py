"""Missing extras and models for --ocr, --captions and --objects fail in seconds, before the CLIP pass.

Each `index` runs as its own process on a machine without a route to the Hub (its address is a port
where nothing listens), once without and once with HF_HUB_OFFLINE. A catalog indexed beforehand
shows that the failing run embedded nothing: the error came before the long pass, not after it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.helpers import draw_photo
from tests.hubcache import clean_env, run_photoseek

NO_HUB = "http://127.0.0.1:9"
FAST_S = 30
"""Process start, imports (torch takes seconds on a busy machine) and the check; minutes before the fix."""


@pytest.fixture
def library(tmp_path: Path, tiny_clip_dir: Path) -> dict[str, object]:
    """A catalog of two photos and a third photo added since, not yet indexed."""
    photos = tmp_path / "photos"
    draw_photo(photos / "red.jpg", "red")
    draw_photo(photos / "blue.jpg", "blue", seed=1)
    env = clean_env(tmp_path / "home", HF_ENDPOINT=NO_HUB)
    db = tmp_path / "catalog.db"
    first = run_photoseek("index", str(photos), "--db", str(db), "--model-path", str(tiny_clip_dir), env=env)
    assert first.returncode == 0, first.stderr
    draw_photo(photos / "green.jpg", "green", seed=2)
    return {"photos": photos, "db": db, "env": env, "model": tiny_clip_dir}


def _index_fails_fast(
    library: dict[str, object], *flags: str, env: dict[str, str] | None = None, first_on_path: Path | None = None
) -> str:
    """Runs `index` with `flags`, checks it failed in seconds and embedded nothing; returns its error text."""
    start = time.monotonic()
    result = run_photoseek(
        "index", str(library["photos"]), "--db", str(library["db"]), "--model-path", str(library["model"]), *flags,
        env=env or library["env"], first_on_path=first_on_path,  # type: ignore[arg-type]
    )
    elapsed = time.monotonic() - start
    assert result.returncode == 4, (result.stdout, result.stderr)
    assert elapsed < FAST_S, elapsed
    status = run_photoseek("status", "--json", "--db", str(library["db"]), env=library["env"])  # type: ignore[arg-type]
    assert json.loads(status.stdout)["images"] == 2, "the new photo was embedded before the error"
    return " ".join(result.stderr.split())


@pytest.mark.parametrize("offline", [False, True], ids=["no-route", "HF_HUB_OFFLINE"])
def test_missing_caption_model_fails_before_the_clip_pass(library, offline) -> None:
    pytest.importorskip("transformers")
    env = {**library["env"], "HF_HUB_OFFLINE": "1"} if offline else None
    message = _index_fails_fast(library, "--captions", "--caption-model", "nobody/no-such-captioner", env=env)
    assert "captioning model 'nobody/no-such-captioner' is not available" in message
    assert "photoseek models download --kind caption nobody/no-such-captioner" in message
    assert ("HF_HUB_OFFLINE" if offline else "127.0.0.1") in message
    assert "huggingface-cli" not in message  # gone from huggingface_hub 1.x


def test_missing_detector_fails_before_the_clip_pass(library) -> None:
    pytest.importorskip("transformers")
    message = _index_fails_fast(library, "--objects", "--detector", "nobody/no-such-detector")
    assert "photoseek models download --kind detector nobody/no-such-detector" in message


def test_missing_ocr_extra_fails_before_the_clip_pass(library, tmp_path) -> None:
    blocked = tmp_path / "blocked"  # a module that fails to import, as when the extra is not installed
    blocked.mkdir()
    (blocked / "rapidocr_onnxruntime.py").write_text("raise ImportError('not installed')\n")
    message = _index_fails_fast(library, "--ocr", first_on_path=blocked)
    assert "pip install 'photoseek[ocr]'" in message


def test_missing_torch_for_captions_fails_before_the_clip_pass(library, tmp_path) -> None:
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "torch.py").write_text("raise ImportError('not installed')\n")
    message = _index_fails_fast(library, "--captions", first_on_path=blocked)
    assert "pip install 'photoseek[torch]'" in message


def test_suggested_download_command_exists(library) -> None:
    """The command the errors name is a real one (huggingface-cli is gone from huggingface_hub 1.x)."""
    result = run_photoseek("models", "download", "--help", env=library["env"])  # type: ignore[arg-type]
    assert result.returncode == 0 and "--kind" in result.stdout
