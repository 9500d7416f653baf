"""What every benchmark prints: the machine it ran on and rates in k/M units.

The scripts run as ``python benchmarks/NAME.py``, so this folder is on ``sys.path``.
"""

from __future__ import annotations

import os
import platform


def machine() -> str:
    """CPU model, core count, load average, Python and JAX versions, JAX backend."""
    import jax

    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        load = f", load average {os.getloadavg()[0]:.1f} at start"
    except OSError:
        load = ""
    return (f"{cpu}, {os.cpu_count()} cores{load}, Python {platform.python_version()}, "
            f"jax {jax.__version__} ({jax.default_backend()})")


def fmt(rate: float | None) -> str:
    """``1234567 -> '1.23 M'``, ``12345 -> '12.3 k'``, ``None -> '-'``."""
    if rate is None:
        return "-"
    if rate >= 999_950:
        return f"{rate / 1e6:.2f} M"
    if rate >= 1e3:
        return f"{rate / 1e3:.1f} k"
    return f"{rate:.0f}"
