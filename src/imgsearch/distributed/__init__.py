"""Indexing on a Ray cluster: the driver keeps discovery, change detection and the catalog;
Ray Data reads, decodes and embeds the files that need work on the cluster's nodes.

The only entry point is `cluster_outcomes`, which plugs into `ingest.indexer.index_folders`.
"""

from imgsearch.distributed.cluster import RAY_EXTRA_HINT, cluster_outcomes

__all__ = ["RAY_EXTRA_HINT", "cluster_outcomes"]
