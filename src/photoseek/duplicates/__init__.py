"""Duplicate photos in three tiers (exact, near, similar), and moving copies aside reversibly.

The perceptual hash itself is `photoseek.imaging.hashing` (the indexer stores it); this package reads
the catalog (`photoseek.store`). The defaults below live here, apart from the finder, so that the
command line's help shows them without loading numpy and the decoders.
"""

DEFAULT_NEAR_BITS = 9
"""Hamming distance for the near tier, out of 64 bits: with hash version 2, 9 bits find every kind of
copy measured at >= 0.98 recall with no false link, where 10 linked unrelated plain-sky photos
(docs/benchmarks.md, section moves)."""
DEFAULT_SIMILAR_COSINE = 0.95
