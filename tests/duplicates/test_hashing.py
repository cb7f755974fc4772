"""The perceptual hash and the near-pair index: turned copies, frames, and exactness against brute force."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

from photoseek.duplicates.components import components
from photoseek.duplicates.hashing import hamming, perceptual_hash, rotations
from photoseek.duplicates.near import near_pairs
from tests.helpers import draw_scene, shared_data


def _photo(tmp_path, seed: int = 5) -> Image.Image:
    photos = sorted(shared_data("coco-mini").rglob("*.jpg"))
    if photos:
        with Image.open(photos[seed % len(photos)]) as image:
            return image.convert("RGB")
    with Image.open(draw_scene(tmp_path / "p.jpg", seed, size=(320, 240))) as image:
        return image.convert("RGB")


def test_a_turned_picture_hashes_to_a_rotation_of_the_original(tmp_path):
    image = _photo(tmp_path)
    stored = np.array([perceptual_hash(image)], dtype=np.uint64)
    turns = [None, Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270]
    for expected, turn in enumerate(turns):
        turned = np.uint64(perceptual_hash(image.transpose(turn) if turn else image))
        distances = [int(hamming(turned, variant)[0]) for variant in rotations(stored)]
        assert distances[expected] <= 2, distances
        assert min(d for i, d in enumerate(distances) if i != expected) >= 16, distances


def test_a_uniform_frame_is_trimmed_before_hashing(tmp_path):
    image = _photo(tmp_path)
    framed = ImageOps.expand(image, 12, fill=(255, 255, 255))
    assert hamming(np.uint64(perceptual_hash(image)), np.uint64(perceptual_hash(framed))) <= 3


def test_near_pairs_match_brute_force_with_turns():
    rng = np.random.default_rng(7)
    hashes = rng.integers(0, 2**64, 4000, dtype=np.uint64, endpoint=False)
    hashes[10] = hashes[3] ^ np.uint64(0b1011_0000_0001)           # 4 bits off
    hashes[20] = rotations(hashes[4:5])[1][0] ^ np.uint64(1 << 50)  # turned, 1 bit off
    hashes[30] = hashes[5] ^ np.uint64(0x0F0F_0000_0000_0003)       # 10 bits off, spread over chunks
    threshold = 10
    all_turns = np.min([hamming(hashes[:, None], r[None, :]) for r in rotations(hashes)], axis=0)
    close = np.minimum(all_turns, all_turns.T) <= threshold
    expected = {tuple(p) for p in np.argwhere(np.triu(close, 1)).tolist()}
    found = {tuple(p) for p in near_pairs(hashes, threshold).tolist()}
    assert found == expected and {(3, 10), (4, 20), (5, 30)} <= found
    plain = {tuple(p) for p in np.argwhere(np.triu(hamming(hashes[:, None], hashes[None, :]) <= threshold, 1)).tolist()}
    assert {tuple(p) for p in near_pairs(hashes, threshold, rotated=False).tolist()} == plain


def test_components_join_chains():
    groups = components(8, np.array([[0, 5], [5, 7], [2, 3]]))
    assert [g.tolist() for g in groups] == [[0, 5, 7], [2, 3]]
