"""The models photoseek knows by name, with the published numbers that guide the choice.

Recall figures are zero-shot text-to-image R@1 from open_clip's retrieval benchmark table
(``docs/openclip_retrieval_results.csv``): "Flickr image retr. R@1" and "MSCOCO image retr. R@1".
They are what a user weighs against CPU cost, so they live next to the names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HUB_ORGANIZATION = "immich-app"


@dataclass(frozen=True)
class KnownModel:
    """One curated model: hub name, size, and published retrieval quality."""

    name: str
    params_m: float | None
    gflops: float | None
    flickr30k_r1: float | None
    coco_r1: float | None
    notes: str
    multilingual: bool = False
    """Its text tower understands queries beyond English (recall figures above are English-only)."""


DEFAULT_MODEL = "ViT-B-32__laion2b-s34b-b79k"

_CURATED: tuple[KnownModel, ...] = (
    KnownModel("ViT-B-32__openai", 151.3, 14.8, 58.8, 30.4, "Original OpenAI CLIP; Immich's default."),
    KnownModel(
        "ViT-B-32__laion2b-s34b-b79k",
        151.3,
        14.8,
        66.8,
        39.3,
        "Default: same CPU cost as ViT-B-32__openai with +8 to +9 points of recall.",
    ),
    KnownModel("ViT-B-32__laion2b_e16", 151.3, 14.8, 66.4, 39.1, "Older LAION-2B ViT-B-32 run."),
    KnownModel("ViT-B-16__openai", 149.6, 41.1, 62.2, 33.1, "About 3x the compute of ViT-B-32."),
    KnownModel("ViT-B-16-plus-240__laion400m_e32", 208.4, 64.0, 68.1, 41.0, "240 px input."),
    KnownModel("ViT-B-16-SigLIP__webli", 203.2, 46.4, 74.7, 47.8, "Best base-size recall; text is lower-cased."),
    KnownModel("ViT-B-16-SigLIP-256__webli", 203.2, 57.8, 75.0, 48.3, "256 px SigLIP."),
    KnownModel("ViT-B-16-SigLIP-384__webli", 203.5, 123.2, 78.5, 49.9, "384 px SigLIP; slow on CPU."),
    KnownModel(
        "ViT-B-16-SigLIP2__webli",
        None,
        None,
        None,
        None,
        "SigLIP 2: multilingual training data and Gemma tokenizer; strongest base-size pick for mixed languages.",
        multilingual=True,
    ),
    KnownModel("ViT-L-14__openai", 427.6, 175.3, 65.0, 36.5, "Large; for GPUs."),
    KnownModel("ViT-L-14__laion2b-s32b-b82k", 427.6, 175.3, 75.5, 46.5, "Large LAION-2B; for GPUs."),
    KnownModel("ViT-L-16-SigLIP-256__webli", 652.2, 201.6, 79.0, 52.3, "Large SigLIP; for GPUs."),
    KnownModel("ViT-SO400M-14-SigLIP-384__webli", 878.0, 723.5, 83.0, 54.2, "Best recall listed; GPU only."),
    KnownModel("ViT-H-14__laion2b-s32b-b79k", 986.1, 381.7, 77.6, 49.5, "Huge; GPU only."),
    KnownModel(
        "XLM-Roberta-Base-ViT-B-32__laion5b_s13b_b90k",
        366.1,
        105.9,
        64.5,
        37.8,
        "XLM-Roberta text tower (100 languages) beside a ViT-B-32: the CPU-friendly multilingual pick.",
        multilingual=True,
    ),
    KnownModel(
        "XLM-Roberta-Large-Vit-B-16Plus",
        None,
        None,
        None,
        None,
        "M-CLIP: XLM-Roberta-Large distilled onto CLIP's text space (48 languages).",
        multilingual=True,
    ),
    KnownModel(
        "nllb-clip-base-siglip__v1",
        None,
        None,
        None,
        None,
        "NLLB text tower (201 languages): for low-resource languages.",
        multilingual=True,
    ),
)

# Every CLIP model Immich publishes as immich-app/<name>; all of them load, the curated ones are documented.
HUB_MODELS: frozenset[str] = frozenset(
    {
        "RN101__openai", "RN101__yfcc15m", "RN50__cc12m", "RN50__openai", "RN50__yfcc15m",
        "RN50x16__openai", "RN50x4__openai", "RN50x64__openai",
        "ViT-B-16-SigLIP-256__webli", "ViT-B-16-SigLIP-384__webli", "ViT-B-16-SigLIP-512__webli",
        "ViT-B-16-SigLIP-i18n-256__webli", "ViT-B-16-SigLIP__webli",
        "ViT-B-16-plus-240__laion400m_e31", "ViT-B-16-plus-240__laion400m_e32",
        "ViT-B-16__laion400m_e31", "ViT-B-16__laion400m_e32", "ViT-B-16__openai",
        "ViT-B-32__laion2b-s34b-b79k", "ViT-B-32__laion2b_e16", "ViT-B-32__laion400m_e31",
        "ViT-B-32__laion400m_e32", "ViT-B-32__openai",
        "ViT-H-14-378-quickgelu__dfn5b", "ViT-H-14-quickgelu__dfn5b", "ViT-H-14__laion2b-s32b-b79k",
        "ViT-L-14-336__openai", "ViT-L-14-quickgelu__dfn2b", "ViT-L-14__laion2b-s32b-b82k",
        "ViT-L-14__laion400m_e31", "ViT-L-14__laion400m_e32", "ViT-L-14__openai",
        "ViT-L-16-SigLIP-256__webli", "ViT-L-16-SigLIP-384__webli", "ViT-SO400M-14-SigLIP-384__webli",
        "ViT-g-14__laion2b-s12b-b42k",
        "XLM-Roberta-Base-ViT-B-32__laion5b_s13b_b90k", "XLM-Roberta-Large-ViT-H-14__frozen_laion5b_s13b_b90k",
        "nllb-clip-base-siglip__mrl", "nllb-clip-base-siglip__v1",
        "nllb-clip-large-siglip__mrl", "nllb-clip-large-siglip__v1",
        "ViT-B-16-SigLIP2__webli", "ViT-B-32-SigLIP2-256__webli", "ViT-L-16-SigLIP2-256__webli",
        "ViT-L-16-SigLIP2-384__webli", "ViT-L-16-SigLIP2-512__webli", "ViT-SO400M-14-SigLIP2-378__webli",
        "ViT-SO400M-14-SigLIP2__webli", "ViT-SO400M-16-SigLIP2-256__webli",
        "ViT-SO400M-16-SigLIP2-384__webli", "ViT-SO400M-16-SigLIP2-512__webli",
        "ViT-gopt-16-SigLIP2-256__webli", "ViT-gopt-16-SigLIP2-384__webli",
        "LABSE-Vit-L-14", "XLM-Roberta-Large-Vit-B-16Plus", "XLM-Roberta-Large-Vit-B-32",
        "XLM-Roberta-Large-Vit-L-14",
    }
)  # fmt: skip

_REPO_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


def list_known_models() -> list[KnownModel]:
    """The curated table, in the order a user should read it."""
    return list(_CURATED)


def clean_model_name(name: str) -> str:
    """Accept both ``ViT-B-32__openai`` and ``immich-app/ViT-B-32__openai``."""
    name = name.strip()
    prefix = f"{HUB_ORGANIZATION}/"
    return name[len(prefix) :] if name.startswith(prefix) else name


def is_valid_repo_name(name: str) -> bool:
    """Whether ``name`` could be a Hugging Face repository name at all."""
    return bool(_REPO_NAME.match(name)) and ".." not in name and not name.endswith((".", "-"))


def known_names_hint() -> str:
    """A short list of names for error messages."""
    return ", ".join(m.name for m in _CURATED)
