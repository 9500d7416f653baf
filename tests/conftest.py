"""One JAX persistent compilation cache for the whole test session (this process and the
``ctde`` child processes the tests start): the many tests that build the same small
programs — a run and its resume, a repeated run, the same tiny config in several files —
load them instead of compiling them again. A cached program is the one XLA compiled, so
the numbers are the same. The cache is fresh for each session and removed after it."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest

# A suite started in the background (`make test &`) inherits SIGINT ignored, and so would
# every run it starts: the interrupt tests need Ctrl-C as a terminal delivers it.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# The suite's time is mostly XLA compiling small programs. Tests check behaviour, not
# speed, so they compile (in this process and in every child that inherits XLA_FLAGS) the
# cheap way: without LLVM's optimisation passes (about 60 % of the time) and with XLA's
# older CPU fusion code generator instead of its MLIR fusion emitters (about half of what
# is left: a small `ctde train` compiled in 4.2 s instead of 8.1). The latter flag is
# taken only where this XLA knows it (an unknown flag aborts the process), asked once in a
# child before the workers start. Benchmarks and users compile at XLA's defaults.
def _xla_knows(flag: str) -> bool:
    probe = subprocess.run([sys.executable, "-c", "import jax; jax.devices()"],
                           env={**os.environ, "XLA_FLAGS": flag}, capture_output=True)
    return probe.returncode == 0


LEGACY_EMITTERS = "--xla_cpu_use_fusion_emitters=false"

if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    _flags = ["--xla_backend_optimization_level=0"]
    if _xla_knows(LEGACY_EMITTERS):
        _flags.append(LEGACY_EMITTERS)
    os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", ""), *_flags]).strip()


def default_emitters_env() -> dict:
    """This process's environment for children compiled with XLA's default fusion emitters.
    Tests that compare two different compiled programs bit for bit (a seed alone and beside
    others, a trial on one device and on two) need them: the default emitters give such
    programs the same bits, as users' runs get them; the legacy generator does not (it
    differs in the last digit)."""
    flags = os.environ.get("XLA_FLAGS", "").replace(LEGACY_EMITTERS, "").split()
    return {**os.environ, "XLA_FLAGS": " ".join(flags)}


@pytest.fixture(scope="module")
def default_emitters():
    """Every child started in the module compiles with XLA's default fusion emitters."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XLA_FLAGS", default_emitters_env()["XLA_FLAGS"])
        yield

if "JAX_COMPILATION_CACHE_DIR" not in os.environ:  # before any test module imports JAX
    _CACHE = tempfile.mkdtemp(prefix="ctde-tests-jax-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _CACHE
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
else:
    _CACHE = None


def pytest_sessionfinish(session, exitstatus):
    if _CACHE is not None:
        shutil.rmtree(_CACHE, ignore_errors=True)


@pytest.fixture
def env_without_device_count() -> dict:
    """This process's environment with no host device count in XLA_FLAGS: a child in
    which the CLI chooses it."""
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if "device_count" not in f]
    return {**os.environ, "XLA_FLAGS": " ".join(flags)}


@pytest.hookimpl(wrapper=True)  # around pytest-xdist's hook, which reads the groups
def pytest_collection_modifyitems(config, items):
    """Tests that share a module-scoped fixture (a sweep, a trained run) go to one worker
    (``--dist loadgroup``), which builds it once instead of once per worker."""
    for item in items:
        fixtures = getattr(item, "_fixtureinfo", None)
        defs = fixtures.name2fixturedefs if fixtures else {}
        if any(d[-1].scope == "module" for d in defs.values()):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
    return (yield)
