"""What every benchmark prints: the machine it ran on and rates in k/M units.

The scripts run as ``python benchmarks/NAME.py``, so this folder is on ``sys.path``.
"""

from __future__ import annotations

import json
import math
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


def run_child(script: str, *args: str, timeout: float | None = None) -> dict:
    """Run ``script *args`` in a fresh interpreter; its last stdout line is a JSON result.
    Raises ``subprocess.CalledProcessError`` or ``subprocess.TimeoutExpired``."""
    out = subprocess.run([sys.executable, script, *args], capture_output=True, text=True,
                         check=True, timeout=timeout).stdout
    return json.loads(out.strip().splitlines()[-1])


def matmul_flops(fn, *args) -> int:
    """Floating-point operations of the matrix products in ``fn(*args)`` as traced (jaxpr),
    loops counted as many times as they run: ``2 x`` multiply-adds of every ``dot_general``,
    through scans (times their length), conditionals (the costlier branch), calls and custom
    derivatives (a gradient's backward pass included). ``args`` may be
    ``jax.ShapeDtypeStruct``s. XLA's own ``cost_analysis`` counts a loop's body once, so it
    cannot tell a recurrent update's work."""
    import jax

    return _jaxpr_flops(jax.make_jaxpr(fn)(*args).jaxpr)


def _jaxpr_flops(jaxpr) -> int:
    from jax.extend import core

    def inner(value):
        if isinstance(value, core.ClosedJaxpr):
            yield value.jaxpr
        elif isinstance(value, core.Jaxpr):
            yield value
        elif isinstance(value, (tuple, list)):
            for v in value:
                yield from inner(v)

    total = 0
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            (contracting, _), _ = eqn.params["dimension_numbers"]
            lhs = eqn.invars[0].aval.shape
            total += 2 * math.prod(eqn.outvars[0].aval.shape) * math.prod(lhs[d] for d in contracting)
            continue
        parts = [_jaxpr_flops(j) for v in eqn.params.values() for j in inner(v)]
        if not parts:
            continue
        if eqn.primitive.name == "cond":
            total += max(parts)
        elif eqn.primitive.name == "scan":
            total += eqn.params["length"] * sum(parts)
        elif eqn.primitive.name == "while":
            raise ValueError("matmul_flops: a while loop's trip count is unknown")
        else:
            total += sum(parts)
    return total
