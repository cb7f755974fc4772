"""How a watcher waits: debounce, file stability, root checks, batch size."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WatchSettings:
    """Timings in seconds. The defaults suit a photo library on a local disk; tests shorten them."""

    poll: float | None = None
    """Scan the folders this often instead of listening for events (network shares, where none arrive)."""
    quiet: float = 2.0
    """A batch starts once no change has arrived for this long, so a burst of copies becomes one batch..."""
    max_wait: float = 30.0
    """...or once the oldest waiting change is this old, so a steady stream is still indexed."""
    settle: float = 1.0
    """A file must keep its size and modification time this long before it is read."""
    open_timeout: float = 300.0
    """A file written to but not closed is read anyway once it has not changed for this long."""
    max_batch: int = 5000
    """Most changed paths in one batch (each batch is one indexing run)."""
    retry: float = 30.0
    """After a batch fails (e.g. the catalog is busy), wait this long before trying its paths again."""

    def __post_init__(self) -> None:
        for name in ("quiet", "max_wait", "settle", "open_timeout", "retry"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.poll is not None and self.poll <= 0:
            raise ValueError("poll must be a positive number of seconds")
        if self.max_batch < 1:
            raise ValueError("max_batch must be at least 1")

    @property
    def tick(self) -> float:
        """How often the loop looks again while changes wait or roots are away."""
        return max(0.05, min(self.quiet, self.settle or self.quiet, 1.0) / 2)
