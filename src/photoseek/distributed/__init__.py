"""Indexing on a Ray cluster: the driver keeps discovery, change detection and the catalog;
Ray Data reads, decodes and embeds the files that need work, and makes their text signals
(OCR, captions, objects), on the cluster's nodes.

The only entry point is `on_cluster`, whose `ClusterRun` plugs into `ingest.indexer.index_folders`
(`outcomes`) and `ingest.enrich.enrich` (`signals`).
"""

from photoseek.distributed.cluster import RAY_EXTRA_HINT, ClusterRun, on_cluster

__all__ = ["RAY_EXTRA_HINT", "ClusterRun", "on_cluster"]
