"""Tiny random-weight versions of the multilingual text-tower families, built offline.

No Hub tokenizer can be downloaded here, so each family gets a small vocabulary trained with
``tokenizers`` on multilingual text and wrapped in its real ``transformers`` tokenizer class
(XLM-Roberta's Unigram, NLLB's and Gemma's BPE), which adds the family's own normalizer,
pre-tokenizer and special-token template. The text towers are the families' real architectures
(XLM-Roberta, NLLB's M2M100 encoder, SigLIP 2's text transformer) at toy sizes.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from tests.helpers import TINY_CLIP_CONFIG

QUERIES = {
    "german": "Zwei Hunde spielen im Schnee vor der Brücke, Straße & Größe",
    "japanese": "浜辺で遊ぶ二匹の犬と夕焼けの富士山",
    "arabic": "قطة نائمة على الأريكة بجانب النافذة",
    "hindi": "समुद्र तट पर खेलते हुए दो कुत्ते",
    "emoji": "🐶🐱 dog and cat 🎉 party 👩‍👩‍👧",
    "mixed": "Café au lait — 東京 &amp; Berlin!!  Ünïcödé\tTEXT",
    "long": " ".join(["ein sehr langer Satz über Hunde am Strand"] * 20),
    "empty": "",
}
_CORPUS = [
    *QUERIES.values(),
    "a dog playing on the beach at sunset", "a cat sleeping on a sofa near the window",
    "Ein Hund läuft über die Wiese. Die Katze schläft auf dem Sofa.", "Der Zug fährt über die Brücke.",
    "犬が公園で走っています。猫がソファで寝ています。", "東京タワーと夜景の写真",
    "كلب يلعب على الشاطئ عند غروب الشمس", "صورة لمدينة في الليل",
    "एक कुत्ता समुद्र तट पर दौड़ रहा है", "रात में शहर की तस्वीर",
    "un chien joue sur la plage", "un gato duerme en el sofá", "собака играет в снегу",
]  # fmt: skip
_XLMR_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
_GEMMA_SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"]
VOCAB_SIZE = 600


def _corpus() -> Iterable[str]:
    return _CORPUS * 3


def _unigram_vocab(specials: list[str]) -> list[tuple[str, float]]:
    tokenizer = Tokenizer(models.Unigram())
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=VOCAB_SIZE, special_tokens=specials, unk_token="<unk>")
    tokenizer.train_from_iterator(_corpus(), trainer)
    return [(piece, score) for piece, score in json.loads(tokenizer.to_str())["model"]["vocab"]]


def _bpe_vocab(specials: list[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE, special_tokens=specials)
    tokenizer.train_from_iterator(_corpus(), trainer)
    model = json.loads(tokenizer.to_str())["model"]
    return model["vocab"], [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]


def xlmr_tokenizer() -> Any:
    from transformers import XLMRobertaTokenizer

    return XLMRobertaTokenizer(vocab=_unigram_vocab(_XLMR_SPECIALS))


def nllb_tokenizer() -> Any:
    from transformers import NllbTokenizer

    vocab, merges = _bpe_vocab(_XLMR_SPECIALS)  # fairseq order: <s> 0, <pad> 1, </s> 2, <unk> 3
    return NllbTokenizer(vocab=vocab, merges=merges, src_lang="eng_Latn")


def gemma_tokenizer() -> Any:
    from transformers import GemmaTokenizer

    vocab, merges = _bpe_vocab(_GEMMA_SPECIALS)
    return GemmaTokenizer(vocab=vocab, merges=merges)


def _hf_text_dir(root: Path, tokenizer: Any, model: Any) -> Path:
    """A local Hugging Face folder (tokenizer and random-weight text model) that open_clip can name."""
    root.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(root.as_posix())
    if model is not None:
        model.save_pretrained(root.as_posix())
    return root


def open_clip_configs(root: Path) -> dict[str, dict[str, Any]]:
    """open_clip architecture configs of the three families open_clip builds, at toy size."""
    import torch
    from transformers import M2M100Config, M2M100Model, XLMRobertaConfig, XLMRobertaModel

    torch.manual_seed(0)
    xlmr_tok = xlmr_tokenizer()
    xlmr = XLMRobertaModel(
        XLMRobertaConfig(
            vocab_size=len(xlmr_tok),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=130,
            pad_token_id=xlmr_tok.pad_token_id,
        ),
        add_pooling_layer=False,
    )
    nllb_tok = nllb_tokenizer()
    nllb = M2M100Model(
        M2M100Config(
            vocab_size=len(nllb_tok), d_model=32, encoder_layers=2, decoder_layers=1, encoder_attention_heads=2,
            decoder_attention_heads=2, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=130,
            pad_token_id=nllb_tok.pad_token_id, scale_embedding=True,
        )
    )  # fmt: skip
    xlmr_dir = _hf_text_dir(root / "hf-xlmr", xlmr_tok, xlmr).as_posix()
    nllb_dir = _hf_text_dir(root / "hf-nllb", nllb_tok, nllb).as_posix()
    gemma_tok = gemma_tokenizer()
    gemma_dir = _hf_text_dir(root / "hf-gemma", gemma_tok, None).as_posix()
    vision = TINY_CLIP_CONFIG["vision_cfg"]
    return {
        "tiny-xlm-roberta-clip": {
            "embed_dim": 32, "vision_cfg": vision,
            "text_cfg": {"hf_model_name": xlmr_dir, "hf_tokenizer_name": xlmr_dir, "hf_pooler_type": "mean_pooler"},
        },
        "tiny-nllb-clip-siglip": {
            "embed_dim": 32, "vision_cfg": vision, "custom_text": True, "init_logit_bias": -10,
            "text_cfg": {
                "hf_model_name": nllb_dir, "hf_tokenizer_name": nllb_dir,
                "hf_proj_type": "linear", "hf_pooler_type": "cls_pooler",
            },
        },
        "tiny-siglip2": {
            "embed_dim": 32, "vision_cfg": vision, "custom_text": True, "init_logit_bias": -10,
            "text_cfg": {
                "context_length": 64, "vocab_size": len(gemma_tok), "hf_tokenizer_name": gemma_dir,
                "tokenizer_kwargs": {"clean": "canonicalize"}, "width": 64, "heads": 2, "layers": 2,
                "no_causal_mask": True, "proj_bias": True, "pool_type": "last", "norm_kwargs": {"eps": 1e-6},
                "act_kwargs": {"approximate": "tanh"},
            },
        },
    }  # fmt: skip


def export_mclip(out: Path, visual_from: Path) -> tuple[Path, Any, Any]:
    """An M-CLIP directory as Immich lays it out: XLM-Roberta, masked mean pooling, a linear map.

    The textual graph takes ``input_ids`` and ``attention_mask`` (int32, as Immich exports them);
    the image tower is copied from ``visual_from``. Returns (directory, torch module, HF tokenizer).
    """
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel

    tokenizer = xlmr_tokenizer()
    torch.manual_seed(1)
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer), hidden_size=48, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=130, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip

    class MultilingualClip(torch.nn.Module):  # type: ignore[misc]
        """M-CLIP's text side (multilingual_clip.pt_multilingual_clip.MultilingualCLIP)."""

        def __init__(self) -> None:
            super().__init__()
            self.transformer = XLMRobertaModel(config, add_pooling_layer=False)
            self.LinearTransformation = torch.nn.Linear(48, 32)

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            embs = self.transformer(input_ids=input_ids, attention_mask=attention_mask)[0]
            mask = attention_mask.to(embs.dtype)
            pooled = (embs * mask.unsqueeze(2)).sum(dim=1) / mask.sum(dim=1)[:, None]
            return self.LinearTransformation(pooled)

    module = MultilingualClip().eval()
    (out / "textual").mkdir(parents=True)
    shutil.copytree(visual_from / "visual", out / "visual")
    ids = torch.ones(2, 77, dtype=torch.int32)
    with torch.no_grad():
        torch.onnx.export(
            module, (ids, torch.ones_like(ids)), (out / "textual/model.onnx").as_posix(),
            input_names=["input_ids", "attention_mask"], output_names=["text_embedding"], opset_version=18,
            dynamic_axes={"input_ids": {0: "batch"}, "attention_mask": {0: "batch"}, "text_embedding": {0: "batch"}},
            dynamo=False,
        )  # fmt: skip
    (out / "textual/tokenizer.json").write_text(tokenizer.backend_tokenizer.to_str(), encoding="utf-8")
    (out / "textual/tokenizer_config.json").write_text(json.dumps({"pad_token": "<pad>"}), encoding="utf-8")
    visual_config = json.loads((visual_from / "config.json").read_text(encoding="utf-8"))
    config_json = {
        "embed_dim": 32, "vision_cfg": visual_config["vision_cfg"],
        "text_cfg": {"hf_model_name": "M-CLIP/XLM-Roberta-Large-Vit-B-16Plus", "context_length": 77},
    }  # fmt: skip
    (out / "config.json").write_text(json.dumps(config_json), encoding="utf-8")
    return out, module, tokenizer
