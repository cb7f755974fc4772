"""CPU seconds and the load average next to wall time, for every benchmark.

The development machine is shared: wall time there says as much about the neighbours as about
photoseek, while CPU seconds (what a process really ran) move far less. So every figure a bench
prints comes with both, plus the load average that tells how busy the machine was:

- `Span` / `span()` time one piece of work: wall, this process's CPU, and its children's CPU
  (subprocesses the bench waited for: a CLI run, a peer tool);
- `cpu_seconds(pid)` reads another live process's CPU time (a server under load);
- `measured_run()` wraps a bench's `main()` and prints the whole run's figures to stderr at the end;
- `so_far()` gives them for the run until now (`benchpaths.write_results` adds it to every JSON).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages, rounded."""
    return [round(x, 2) for x in os.getloadavg()]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _now() -> tuple[float, float, float]:
    times = os.times()
    return time.perf_counter(), times.user + times.system, times.children_user + times.children_system


@dataclass
class Span:
    """Wall time, own CPU and waited-for children's CPU of a piece of work (set when it ends)."""

    wall_s: float = 0.0
    cpu_s: float = 0.0
    children_cpu_s: float = 0.0
    load_before: list[float] = field(default_factory=load_average)
    load_after: list[float] = field(default_factory=list)

    def as_dict(self, per: int = 1) -> dict[str, object]:
        """The figures, divided by `per` (items, queries) when it is above 1: then in ms."""
        scale, unit = (1000 / per, "ms") if per > 1 else (1.0, "s")
        return {
            f"wall_{unit}": round(self.wall_s * scale, 3),
            f"cpu_{unit}": round(self.cpu_s * scale, 3),
            f"children_cpu_{unit}": round(self.children_cpu_s * scale, 3),
            "load_average": self.load_before,
        }

    def line(self) -> str:
        return (f"wall {self.wall_s:.2f} s, CPU {self.cpu_s:.2f} s (+{self.children_cpu_s:.2f} s in children), "
                f"load average {' / '.join(map(str, self.load_before))} -> {' / '.join(map(str, self.load_after))}")


def _process_wall_s() -> float:
    """Seconds since this process started, imports included, as its CPU time counts them (Linux /proc)."""
    started_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
    return float(Path("/proc/uptime").read_text().split()[0]) - started_ticks / os.sysconf("SC_CLK_TCK")


def so_far() -> dict[str, object]:
    """Wall time since this process started, CPU seconds of it and its waited-for children until
    now, and the load average now."""
    _, cpu, children = _now()
    return {"wall_s": round(_process_wall_s(), 2), "cpu_s": round(cpu, 2),
            "children_cpu_s": round(children, 2), "load_average": load_average()}


@contextmanager
def span() -> Iterator[Span]:
    """Time the block: `with span() as s: ...`, then s.wall_s, s.cpu_s, s.children_cpu_s."""
    result = Span()
    wall, cpu, children = _now()
    try:
        yield result
    finally:
        wall_end, cpu_end, children_end = _now()
        result.wall_s, result.cpu_s = wall_end - wall, cpu_end - cpu
        result.children_cpu_s = children_end - children
        result.load_after = load_average()


@contextmanager
def measured_run() -> Iterator[Span]:
    """Wrap a bench's main(): at the end, its wall time, CPU seconds and load average on stderr."""
    with span() as whole:
        yield whole
    print(f"{Path(sys.argv[0]).name}: {whole.line()}", file=sys.stderr)


PEAK_CHILD = (  # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec
    "import atexit, json, resource, runpy, sys, time\n"
    "started = time.perf_counter()\n"
    "def report():\n"
    "    u = resource.getrusage(resource.RUSAGE_SELF)\n"
    "    status = open('/proc/self/status').read().splitlines()\n"
    "    peak_kb = next(int(x.split()[1]) for x in status if x.startswith('VmHWM'))\n"
    "    print('BENCH ' + json.dumps({'peak_mb': peak_kb / 1024, 'cpu_s': u.ru_utime + u.ru_stime,\n"
    "          'wall_s': time.perf_counter() - started}), file=sys.stderr)\n"
    "atexit.register(report)\n"
    "sys.argv = ['photoseek', *sys.argv[1:]]\n"
    "runpy.run_module('photoseek', run_name='__main__')\n"
)
"""`python -c PEAK_CHILD ARGS...` runs `photoseek ARGS...` and reports its own peak memory, CPU and wall time."""


def photoseek_peak(src: Path, *args: object, timeout: float = 900) -> tuple[dict[str, float], str]:
    """Run `photoseek ARGS` from the checkout's `src` in a process of its own: (its peak MB, CPU and wall
    seconds, rounded; its stdout). Exits with the child's error if it fails."""
    import json
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", PEAK_CHILD, *map(str, args)], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(src)},
    )
    if done.returncode != 0:
        raise SystemExit(f"photoseek {args[0]} failed: {done.stderr[-2000:]}")
    line = next(x for x in done.stderr.splitlines() if x.startswith("BENCH "))
    return {k: round(v, 2) for k, v in json.loads(line[6:]).items()}, done.stdout
