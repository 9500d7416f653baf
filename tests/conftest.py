"""One JAX persistent compilation cache for the whole test session (this process and the
``ctde`` child processes the tests start): the many tests that build the same small
programs — a run and its resume, a repeated run, the same tiny config in several files —
load them instead of compiling them again. A cached program is the one XLA compiled, so
the numbers are the same. The cache is fresh for each session and removed after it."""

import os
import shutil
import tempfile

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
