"""Exporter: Immich layout, dynamic batch axis, clear errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

pytest.importorskip("torch")
pytest.importorskip("open_clip")
pytestmark = pytest.mark.torch  # slow: torch export / training (deselect with -m "not torch")

from photoseek.errors import ModelNotAvailableError  # noqa: E402
from photoseek.models.export import ExportError, export_open_clip  # noqa: E402
from photoseek.models.layout import REQUIRED_FILES  # noqa: E402


def test_layout_matches_immich(tiny_clip_dir: Path) -> None:
    for rel in REQUIRED_FILES:
        assert (tiny_clip_dir / rel).is_file(), rel
    config = json.loads((tiny_clip_dir / "config.json").read_text())
    assert config["embed_dim"] == 32 and config["text_cfg"]["context_length"] == 77
    preprocess = json.loads((tiny_clip_dir / "visual/preprocess_cfg.json").read_text())
    assert preprocess["size"] == [48, 48] and preprocess["resize_mode"] == "shortest"
    assert json.loads((tiny_clip_dir / "textual/tokenizer_config.json").read_text())["pad_token"]


def test_onnx_graphs_have_dynamic_batch(tiny_clip_dir: Path) -> None:
    visual = ort.InferenceSession((tiny_clip_dir / "visual/model.onnx").as_posix())
    textual = ort.InferenceSession((tiny_clip_dir / "textual/model.onnx").as_posix())
    (image,) = visual.get_inputs()
    (text,) = textual.get_inputs()
    assert image.name == "image" and image.type == "tensor(float)" and not isinstance(image.shape[0], int)
    assert text.name == "text" and text.type == "tensor(int32)" and not isinstance(text.shape[0], int)
    out = visual.run(None, {"image": np.zeros((5, 3, 48, 48), np.float32)})[0]
    assert out.shape == (5, 32)


def test_refuses_non_empty_output_dir(tmp_path: Path, tiny_clip_config: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="not empty"):
        export_open_clip("x", tmp_path, random_weights=True, arch_config=tiny_clip_config)


def test_needs_weights_choice_and_known_arch(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="exactly one"):
        export_open_clip("ViT-B-32", tmp_path / "a")
    with pytest.raises(ExportError, match="Unknown open_clip architecture"):
        export_open_clip("ViT-Nope", tmp_path / "b", random_weights=True)
    with pytest.raises(ExportError, match="no pretrained tag"):
        export_open_clip("ViT-B-32", tmp_path / "c", pretrained="nope")
    assert not any(tmp_path.iterdir())


def test_hf_tokenizer_arch_fails_clearly_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelNotAvailableError, match="ViT-B-32, ViT-B-16, ViT-L-14 or RN50"):
        export_open_clip("ViT-B-16-SigLIP2", tmp_path / "siglip", random_weights=True)
    assert not (tmp_path / "siglip").exists()


def test_a_sigmoid_trained_model_carries_its_logit_scale_and_bias(tmp_path: Path, tiny_clip_dir: Path) -> None:
    """SigLIP-style models (a logit bias) get both values in config.json, which the loader turns into
    the calibrated match score search uses; softmax CLIP gets neither."""
    from photoseek.models.clip import open_model_dir
    from tests.helpers import TINY_CLIP_CONFIG

    arch = tmp_path / "tiny-sigmoid.json"
    arch.write_text(json.dumps({**TINY_CLIP_CONFIG, "init_logit_bias": -10.0}))
    out = export_open_clip("tiny-sigmoid", tmp_path / "out", random_weights=True, arch_config=arch, seed=0)
    config = json.loads((out / "config.json").read_text())
    assert config["logit_bias"] == pytest.approx(-10.0) and config["logit_scale"] > 0
    assert open_model_dir(out).score_calibration == (pytest.approx(config["logit_scale"]), pytest.approx(-10.0))
    assert open_model_dir(tiny_clip_dir).score_calibration is None
    assert "logit_bias" not in json.loads((tiny_clip_dir / "config.json").read_text())


def test_an_interrupted_export_says_so_and_leaves_nothing_so_the_same_command_works_again(
    tmp_path: Path, tiny_clip_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.helpers import run_cli

    out = tmp_path / "tiny"
    command = ("models", "export", "tiny", "--out", out, "--random-weights", "--arch-config", tiny_clip_config)

    def interrupted(torch: object, model: object, context_length: int, path: Path, dynamic: bool) -> bool:
        path.write_bytes(b"half a tower")
        raise KeyboardInterrupt  # Ctrl+C while the text tower is written

    with monkeypatch.context() as patch:
        patch.setattr("photoseek.models.export._export_text_tower", interrupted)
        said = " ".join(run_cli(*command, expect=130).split())
    assert f"Interrupted: nothing was written to {out}; run the same command again." in said
    assert list(tmp_path.iterdir()) == []
    run_cli(*command)
    assert all((out / rel).is_file() for rel in REQUIRED_FILES)
    (tmp_path / "plain").mkdir()
    assert out.stat().st_mode == (tmp_path / "plain").stat().st_mode, "readable as any new folder is (umask)"


NO_HUB = "http://127.0.0.1:9"
"""The discard port: nothing listens, so the Hub cannot be reached."""
AFTER_IMPORTS_S = 20
"""How long a refusal may take beyond importing torch and open_clip (it used to take 33-88 s of retries)."""


@pytest.mark.parametrize(
    ("args", "needs", "network"),
    [
        (["ViT-B-32", "--pretrained", "openai"], "timm/vit_base_patch32_clip_224.openai", {"HF_HUB_OFFLINE": "1"}),
        (["xlm-roberta-base-ViT-B-32", "--random-weights"], "xlm-roberta-base", {"HF_ENDPOINT": NO_HUB}),
    ],
    ids=["pretrained-offline", "hf-text-tower-unreachable"],
)
def test_export_without_the_hub_fails_in_seconds_saying_what_to_do(args, needs, network, tmp_path: Path) -> None:
    from tests.hubcache import clean_env, run_photoseek, seconds_to_import

    env = clean_env(tmp_path / "home", HF_HUB_CACHE=str(tmp_path / "hub"), **network)
    floor = seconds_to_import("torch", "open_clip", env=env)
    started = time.monotonic()
    done = run_photoseek("models", "export", *args, "--out", str(tmp_path / "out"), env=env)
    assert time.monotonic() - started < floor + AFTER_IMPORTS_S
    assert done.returncode == 4 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"needs {needs} from the Hugging Face Hub" in done.stderr
    assert str(tmp_path / "hub") in done.stderr  # where to copy a connected machine's cache
    assert not (tmp_path / "out").exists()
