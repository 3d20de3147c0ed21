"""What every benchmark prints first: the machine its numbers came from."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def hardware() -> str:
    """CPU model, usable cores, load average and Python version, in one line."""
    model = platform.processor() or "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{model}; {cores} cores; load average {load}; Linux {platform.release()}; Python {platform.python_version()}"
