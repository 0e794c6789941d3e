"""What every benchmark measures of its own process: peak resident memory and CPU seconds.

Each benchmark runs a measured part in a fresh subprocess and reads these there, so the figures are that
part's own."""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_mb() -> float:
    """This process's peak resident set, in MiB. VmHWM is per address space, so (unlike ru_maxrss, which
    inherits the parent's peak across vfork+exec) it is this child's own figure."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def cpu_s() -> float:
    """User + system CPU seconds of this process, all threads (less sensitive than wall time to a busy box)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
