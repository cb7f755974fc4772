"""Keep a catalog current with folders that change: catch up once, then index changes in batches.

    from imgsearch import ImageIndex
    with ImageIndex() as index:
        index.watch(["~/Pictures"])          # until Ctrl-C; or index.watcher(...) for a Watcher object

The watcher never touches the catalog itself: it is handed a `catch_up(roots)` and an
`apply(paths)` that index (the API passes its own), so one pipeline serves `index` and `watch`.
watchdog (the `watch` extra) is imported only when a `Watcher` is made.
"""

from imgsearch.watch.settings import WatchSettings
from imgsearch.watch.watcher import RootStatus, WatchBatch, Watcher, WatchState

__all__ = ["RootStatus", "WatchBatch", "WatchSettings", "WatchState", "Watcher"]
