"""Fine-tune CLIP on your own image-caption pairs (needs ``photoseek[torch]``).

    from photoseek.train import TrainConfig, finetune
    result = finetune(Path("pairs.csv"), Path("my-model"), base="ViT-B-32:laion2b_s34b_b79k",
                      config=TrainConfig(steps=2000, batch_size=128))
    print(result.before, result.after)   # held-out text-to-image R@1/5/10

The result is a model directory: ``photoseek index --model-path my-model --rebuild DIR``.
"""

from photoseek.train.base import BaseModelError, load_base
from photoseek.train.finetune import FinetuneResult, default_checkpoint_dir, finetune
from photoseek.train.pairs import Pair, PairsError, read_pairs, split_pairs
from photoseek.train.trainer import TrainConfig, Trainer, TrainingError, TrainProgress

__all__ = [
    "BaseModelError",
    "FinetuneResult",
    "Pair",
    "PairsError",
    "TrainConfig",
    "TrainProgress",
    "Trainer",
    "TrainingError",
    "default_checkpoint_dir",
    "finetune",
    "load_base",
    "read_pairs",
    "split_pairs",
]
