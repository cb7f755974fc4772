"""Fine-tuning: a real learning signal, exact resume, gradient cache, ONNX parity, clear errors."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("open_clip")
pytest.importorskip("peft")
pytestmark = pytest.mark.torch  # slow: torch export / training (deselect with -m "not torch")

from photoseek.models import load_clip  # noqa: E402
from photoseek.train import FinetuneResult, TrainConfig, Trainer, TrainProgress, finetune, load_base, read_pairs  # noqa: E402
from tests.helpers import TINY_CLIP_CONFIG, run_cli, run_json  # noqa: E402
from tests.train.shapes import write_shape_pairs  # noqa: E402

# The shared tiny CLIP, with a short context: the captions are a few tokens, and the text tower
# dominates the cost of a step at 77 tokens.
ARCH = "photoseek-tiny-clip-ctx16"
CONFIG = {**TINY_CLIP_CONFIG, "text_cfg": {**TINY_CLIP_CONFIG["text_cfg"], "context_length": 16}}


@pytest.fixture(scope="module")
def arch_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("arch") / f"{ARCH}.json"
    path.write_text(json.dumps(CONFIG), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def shapes_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_shape_pairs(tmp_path_factory.mktemp("shapes"), per_class=6)


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory: pytest.TempPathFactory, shapes_csv: Path, arch_config: Path) -> dict:
    """One CLI run from random weights: 18 classes of counted coloured shapes, a quarter held out."""
    out = tmp_path_factory.mktemp("ft") / "model"
    db = tmp_path_factory.mktemp("db") / "catalog.db"
    result = run_json(
        "finetune", "--pairs", shapes_csv, "--out", out, "--base", ARCH, "--random-weights",
        "--arch-config", arch_config, "--steps", "120", "--batch-size", "16", "--lr", "2e-3",
        "--warmup", "10", "--holdout", "0.25", "--workers", "0", "--db", db, "--device", "cpu",
    )
    return {**result, "out": out}


def _trainer(csv: Path, arch_config: Path, checkpoints: Path, **overrides: object) -> Trainer:
    base = load_base(ARCH, arch_config=arch_config, random_weights=True)
    settings = {"steps": 6, "batch_size": 8, "lr": 1e-3, "warmup_steps": 2, "checkpoint_every": 3, **overrides}
    return Trainer(base, read_pairs(csv), TrainConfig(**settings), checkpoints)  # type: ignore[arg-type]


def _flat(output: str) -> str:
    """The CLI's output with Rich's line wrapping undone."""
    return " ".join(output.split())


def test_finetuning_raises_heldout_recall(finetuned: dict) -> None:
    assert finetuned["heldout_images"] == 27 and finetuned["train_pairs"] == 81
    before, after = finetuned["before"], finetuned["after"]
    assert before["R@1"] < 0.3, before  # chance level among 18 kinds of picture
    assert after["R@1"] >= max(0.5, before["R@1"] + 0.3), (before, after)
    assert after["R@10"] >= before["R@10"]


def test_export_is_a_model_directory_with_its_own_id(finetuned: dict) -> None:
    model = load_clip(path=finetuned["out"])
    assert model.model_id == finetuned["model_id"]
    assert finetuned["model_id"].startswith(f"{ARCH}/random-seed0+ft-")
    assert "--model-path" in finetuned["reindex_command"] and "--rebuild" in finetuned["reindex_command"]


def test_onnx_export_matches_torch(finetuned: dict, shapes_csv: Path) -> None:
    onnx_model = load_clip(path=finetuned["out"])
    torch_model = load_base(str(finetuned["out"])).model.eval()
    import open_clip
    from PIL import Image

    images = [Image.open(p) for p in sorted((shapes_csv.parent / "img").glob("*.png"))[:6]]
    texts = ["two red circles", "one blue square", "three green squares"]
    pixels = np.stack([onnx_model.preprocess(im) for im in images])
    with torch.no_grad():
        torch_images = torch_model.encode_image(torch.from_numpy(pixels), normalize=True).numpy()
        tokens = open_clip.get_tokenizer(ARCH)(texts)
        torch_texts = torch_model.encode_text(tokens, normalize=True).numpy()
    assert np.min(np.sum(onnx_model.encode_pixels(pixels) * torch_images, axis=1)) >= 0.9999
    assert np.min(np.sum(onnx_model.encode_texts(texts) * torch_texts, axis=1)) >= 0.9999


def test_index_and_search_with_the_finetuned_model(finetuned: dict, shapes_csv: Path, tmp_path: Path) -> None:
    db = tmp_path / "catalog.db"
    run_cli("index", shapes_csv.parent / "img", "--model-path", finetuned["out"], "--db", db)
    hits = run_json("search", "three blue circles", "--db", db, "-k", "3")
    assert hits["results"], hits


def test_interrupted_finetune_resumes_to_the_same_model(shapes_csv: Path, arch_config: Path, tmp_path: Path) -> None:
    def run(out: str, **kwargs: object) -> FinetuneResult:
        config = TrainConfig(steps=6, batch_size=8, lr=1e-3, warmup_steps=2, checkpoint_every=3)
        return finetune(shapes_csv, tmp_path / out, base=ARCH, arch_config=arch_config, random_weights=True,
                        config=config, holdout=0, **kwargs)

    def stop_at_step_4(progress: TrainProgress) -> None:
        if progress.step == 4:
            raise KeyboardInterrupt

    straight = run("a")
    with pytest.raises(KeyboardInterrupt):
        run("b", on_progress=stop_at_step_4)
    assert not (tmp_path / "b").exists()
    resumed = run("b", resume=True)
    assert resumed.model_id == straight.model_id  # the id hashes the weights: bit-identical
    assert resumed.losses == pytest.approx(straight.losses, abs=1e-6)


def test_gradient_cache_gives_the_full_batch_update(shapes_csv: Path, arch_config: Path, tmp_path: Path) -> None:
    full = _trainer(shapes_csv, arch_config, tmp_path / "a", steps=1)
    cached = _trainer(shapes_csv, arch_config, tmp_path / "b", steps=1, accum_steps=4)
    full.run()
    cached.run()
    assert cached.losses == pytest.approx(full.losses, abs=1e-5)
    for (name, a), b in zip(full.clip.state_dict().items(), cached.clip.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-5), name


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_path(shapes_csv: Path, arch_config: Path, tmp_path: Path, precision: str) -> None:
    """The autocast + loss-scaling code GPUs run, exercised on the CPU (with the gradient cache)."""
    trainer = _trainer(shapes_csv, arch_config, tmp_path, steps=2, precision=precision, accum_steps=2)
    assert trainer.scaler.is_enabled() == (precision == "fp16")
    before = trainer.clip.visual.proj.detach().clone()
    losses = trainer.run()
    assert all(np.isfinite(losses)) and not torch.equal(before, trainer.clip.visual.proj)


def test_frozen_tower_and_lora(shapes_csv: Path, arch_config: Path, tmp_path: Path) -> None:
    untouched = load_base(ARCH, arch_config=arch_config, random_weights=True).model.state_dict()
    frozen = _trainer(shapes_csv, arch_config, tmp_path / "a", steps=2, freeze="text")
    frozen.run()
    after = frozen.clip.state_dict()
    assert torch.equal(after["token_embedding.weight"], untouched["token_embedding.weight"])
    assert not torch.equal(after["visual.proj"], untouched["visual.proj"])

    lora = _trainer(shapes_csv, arch_config, tmp_path / "b", steps=2, lora_rank=4)
    lora.run()
    merged = lora.merged_model().state_dict()
    assert set(merged) == set(untouched)  # adapters folded into plain open_clip weights
    assert torch.equal(merged["visual.proj"], untouched["visual.proj"])
    key = "visual.transformer.resblocks.0.mlp.c_fc.weight"
    assert not torch.equal(merged[key], untouched[key])


def test_missing_images_are_named(tmp_path: Path) -> None:
    csv = tmp_path / "pairs.csv"
    csv.write_text("file,caption\n" + "".join(f"gone{i}.jpg,a photo\n" for i in range(10)))
    output = _flat(run_cli("finetune", "--pairs", csv, "--out", tmp_path / "m", "--base", "ViT-B-32:openai", expect=2))
    assert "10 image(s)" in output and "gone0.jpg" in output and "--images" in output
    assert not (tmp_path / "m").exists()


def test_too_few_rows(tmp_path: Path, shapes_csv: Path) -> None:
    csv = tmp_path / "pairs.csv"
    csv.write_text("file,caption\nimg/one-red-circle-0.png,one red circle\n")
    output = _flat(run_cli(
        "finetune", "--pairs", csv, "--images", shapes_csv.parent, "--out", tmp_path / "m",
        "--base", "ViT-B-32:openai", expect=2,
    ))
    assert "1 usable row" in output and "at least 8" in output


def test_a_bad_header_is_the_caption_readers_error_and_onnx_base(
    tmp_path: Path, shapes_csv: Path, tiny_clip_dir: Path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("file;caption\na.jpg;hello\n")  # one column: nothing reads as image and caption
    output = _flat(run_cli("finetune", "--pairs", bad, "--out", tmp_path / "m", "--base", "x", expect=2))
    assert "bad.csv holds no captions" in output and "CSV or TSV" in output and "file,caption" in output
    header = tmp_path / "header.csv"
    header.write_text("picture,words\n" + "".join(f"{n},a photo\n" for n in ("a.jpg", "b.jpg")))
    output = _flat(run_cli("finetune", "--pairs", header, "--out", tmp_path / "m", "--base", "x", expect=2))
    assert "3 image(s)" in output and "picture" in output and "name its columns file,caption" in output
    output = _flat(run_cli(
        "finetune", "--pairs", shapes_csv, "--out", tmp_path / "m", "--base", tiny_clip_dir, expect=2
    ))
    assert "ONNX model directory" in output and "ViT-B-32:laion2b_s34b_b79k" in output


def test_a_tsv_pairs_file_with_image_caption_columns_passes_the_checks_before_training(
    tmp_path: Path, shapes_csv: Path, tiny_clip_dir: Path
) -> None:
    """The pairs are read (as import-captions and eval read them) before any model is loaded: the run
    gets as far as the --base check, which an ONNX folder fails."""
    rows = [line.split(",", 1) for line in shapes_csv.read_text(encoding="utf-8").splitlines()[1:]]
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("image\tcaption\n" + "".join(f"{name}\t{caption}\n" for name, caption in rows), encoding="utf-8")
    assert read_pairs(tsv, shapes_csv.parent) == read_pairs(shapes_csv)
    output = _flat(run_cli(
        "finetune", "--pairs", tsv, "--images", shapes_csv.parent, "--out", tmp_path / "m", "--base", tiny_clip_dir,
        expect=2,
    ))
    assert "ONNX model directory" in output and not (tmp_path / "m").exists()

    tsv.write_text("image\tcaption\n" + "".join(f"gone{i}.jpg\ta photo of {i}\n" for i in range(9)), encoding="utf-8")
    output = _flat(run_cli("finetune", "--pairs", tsv, "--out", tmp_path / "m", "--base", tiny_clip_dir, expect=2))
    assert "9 image(s)" in output and f"{tmp_path / 'gone0.jpg'}," in output and "\t" not in output


def test_a_pretrained_base_without_the_hub_fails_in_seconds(tmp_path: Path, shapes_csv: Path) -> None:
    """Offline, `--base ARCH:TAG` is one line saying what to do, not a minute of retries and three tracebacks."""
    from tests.hubcache import clean_env, run_photoseek, seconds_to_import

    env = clean_env(tmp_path / "home", HF_HUB_CACHE=str(tmp_path / "hub"), HF_HUB_OFFLINE="1")
    floor = seconds_to_import("torch", "open_clip", env=env)
    started = time.monotonic()
    done = run_photoseek(
        "finetune", "--pairs", str(shapes_csv), "--out", str(tmp_path / "m"), "--base", "ViT-B-32:openai", env=env
    )
    assert time.monotonic() - started < floor + 20
    assert done.returncode == 4 and "Traceback" not in done.stderr, done.stderr
    error = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and "HF_HUB_OFFLINE is set" in error[0] and str(tmp_path / "hub") in error[0]
    assert not (tmp_path / "m").exists()
