"""Training batches: augmented pixels and tokens, in an order that is a pure function of (seed, step).

Batch ``s`` of a run, and the augmentation of every image in it, depend only on the seed and
``s``; so a run resumed at step ``s`` sees exactly the batches an uninterrupted run would, with
any number of loader workers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from photoseek.errors import UnreadableImageError
from photoseek.ingest.decode import decode_image
from photoseek.train.pairs import Pair, PairsError

Key = tuple[int, int]
"""(epoch, row index): the epoch seeds the augmentation."""


def train_transform(model: torch.nn.Module) -> Callable[[Any], torch.Tensor]:
    """open_clip's training augmentation with the base model's own size, mean, std and resize rules."""
    import open_clip

    cfg = open_clip.get_model_preprocess_cfg(model)
    return open_clip.image_transform(
        cfg["size"],
        is_train=True,
        mean=cfg.get("mean"),
        std=cfg.get("std"),
        resize_mode=cfg.get("resize_mode"),
        interpolation=cfg.get("interpolation"),
        fill_color=cfg.get("fill_color", 0),
    )


class PairDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """Decodes, augments and tokenises one pair; augmentation randomness is seeded per (epoch, row)."""

    def __init__(
        self, pairs: list[Pair], transform: Callable[[Any], torch.Tensor], tokenizer: Any, seed: int, min_side: int
    ) -> None:
        self.pairs = pairs
        self.transform = transform
        self.tokenizer = tokenizer
        self.seed = seed
        self.min_side = min_side

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, key: Key) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, index = key
        pair = self.pairs[index]
        try:
            image = decode_image(pair.path, min_side=self.min_side).image
        except UnreadableImageError as exc:
            raise PairsError(f"Cannot read {pair.path}: {exc}. Remove its rows from the pairs file.") from exc
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(hash((self.seed, epoch, index)) & 0x7FFF_FFFF)
            pixels = self.transform(image)
        return pixels, self.tokenizer([pair.caption])[0]


class StepBatches(Sampler[list[Key]]):
    """Batches ``start`` .. ``stop - 1``; each epoch is a seeded permutation, the last partial batch dropped."""

    def __init__(self, rows: int, batch_size: int, seed: int, start: int, stop: int) -> None:
        self.rows, self.batch_size, self.seed = rows, batch_size, seed
        self.start, self.stop = start, stop
        self.per_epoch = rows // batch_size

    def __len__(self) -> int:
        return self.stop - self.start

    def __iter__(self) -> Iterator[list[Key]]:
        order: torch.Tensor | None = None
        for step in range(self.start, self.stop):
            epoch, k = divmod(step, self.per_epoch)
            if k == 0 or order is None:
                order = torch.randperm(self.rows, generator=torch.Generator().manual_seed(self.seed + epoch))
            yield [(epoch, int(i)) for i in order[k * self.batch_size : (k + 1) * self.batch_size]]


def batch_loader(dataset: PairDataset, batch_size: int, start: int, stop: int, workers: int) -> DataLoader:
    return DataLoader(
        dataset,
        batch_sampler=StepBatches(len(dataset), batch_size, dataset.seed, start, stop),
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=False,
    )
