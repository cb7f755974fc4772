"""Duplicate photos in three tiers (exact, near, similar), and moving copies aside reversibly.

`hashing` is imported by the indexer and depends on numpy and Pillow only; the rest reads
the catalog (`photoseek.store`).
"""
