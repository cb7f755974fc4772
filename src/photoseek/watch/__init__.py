"""Keep a catalog current with folders that change: catch up once, then index changes in batches.

    from photoseek import ImageIndex
    with ImageIndex() as index:
        index.watch(["~/Pictures"])          # until Ctrl-C; or index.watcher(...) for a Watcher object

The watcher never touches the catalog itself: it is handed a `catch_up(roots)` and an
`apply(paths)` that index (the API passes its own), so one pipeline serves `index` and `watch`.
watchdog (the `watch` extra) is imported only when a `Watcher` is made, and the watcher module
(with the indexer behind it) on first use of its names: the settings alone are imported by every
command, since `serve` takes them as options.
"""

from typing import TYPE_CHECKING

from photoseek.watch.settings import WatchSettings

if TYPE_CHECKING:
    from photoseek.watch.watcher import RootStatus, WatchBatch, Watcher, WatchState

__all__ = ["RootStatus", "WatchBatch", "WatchSettings", "WatchState", "Watcher"]


def __getattr__(name: str) -> object:
    if name in __all__:
        from photoseek.watch import watcher

        return getattr(watcher, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
