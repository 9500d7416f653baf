"""What every benchmark prints: the machine it ran on and rates in k/M units.

The scripts run as ``python benchmarks/NAME.py``, so this folder is on ``sys.path``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time


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


def train_here(devices: int, **spec):
    """One whole run through the runner in a throwaway folder, with ``devices`` host
    devices (set before JAX starts: call it first thing in a fresh process). Returns
    (trainer, plan, summary, seconds including compilation)."""
    if devices > 1:
        os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    from ctde.run.runner import build, train
    from ctde.run.spec import RunSpec

    spec = RunSpec(eval_episodes=0, **spec)
    trainer, plan = build(spec)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        summary = train(spec, out, progress=False)
        return trainer, plan, summary, time.perf_counter() - t0


def run_child(script: str, *args: str) -> dict:
    """Run ``script *args`` in a fresh interpreter; its last stdout line is a JSON result."""
    out = subprocess.run([sys.executable, script, *args], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out.strip().splitlines()[-1])
