"""Atomic checkpoints and files: a killed run never leaves a half-written file behind.

A checkpoint holds the learner state of every seed (parameters, optimiser states, RNG
keys, environment states: everything ``update`` needs to carry on exactly) and the
runner's counters. A run keeps its last few checkpoints (``step-<env steps>.msgpack``),
so a corrupted or diverged latest one is not the only copy.
"""

from __future__ import annotations

import os
import re
import tempfile

import jax
import numpy as np
from flax import serialization

#: Name of a checkpoint after ``steps`` environment steps (zero-padded: sorts by step).
PATTERN = "step-{:012d}.msgpack"
_NAME = re.compile(r"step-(\d+)\.msgpack$")
LEGACY = "latest.msgpack"  # the single checkpoint of runs written before 0.1.1


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str, data: bytes | str) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, rename it over
    ``path`` and fsync the folder, so the new file survives a crash. The file gets the
    mode an ordinary ``open`` would give it (0666 less the umask), not mkstemp's 0600."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(directory)


def fsync_dir(directory: str) -> None:
    """Make a rename in ``directory`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def paths(directory: str) -> list[tuple[int, str]]:
    """(env steps, path) of every checkpoint in ``directory``, oldest first."""
    if not os.path.isdir(directory):
        return []
    found = []
    for name in os.listdir(directory):
        match = _NAME.match(name)
        if match:
            found.append((int(match.group(1)), os.path.join(directory, name)))
    if not found and os.path.exists(os.path.join(directory, LEGACY)):
        found.append((-1, os.path.join(directory, LEGACY)))
    return sorted(found)


def latest(directory: str) -> str | None:
    found = paths(directory)
    return found[-1][1] if found else None


def save(directory: str, learner_state, counters: dict, keep: int = 3) -> str:
    """Write a checkpoint after ``counters["env_steps"]`` steps; keep the newest ``keep``."""
    state = serialization.to_state_dict(jax.device_get(learner_state))
    payload = serialization.msgpack_serialize({"state": state, "counters": counters})
    path = os.path.join(directory, PATTERN.format(int(counters["env_steps"])))
    atomic_write(path, payload)
    for _, old in paths(directory)[:-keep]:
        os.unlink(old)
    return path


def resolve(directory: str, which: str | None = None) -> str:
    """The checkpoint file meant by ``which``: None for the newest in ``directory``, a
    number of env steps, or a file path. ValueError naming the choices otherwise."""
    found = paths(directory)
    if which is None:
        if not found:
            raise ValueError(f"no checkpoint in {directory}")
        return found[-1][1]
    if os.path.isfile(which):
        return which
    choices = ", ".join(str(s) for s, _ in found) or "none"
    try:
        steps = int(float(which))
    except ValueError:
        raise ValueError(f"no checkpoint {which!r}: give a file or the env steps of one of "
                         f"{directory}'s checkpoints ({choices})") from None
    for s, path in found:
        if s == steps:
            return path
    raise ValueError(f"no checkpoint after {steps} env steps in {directory} (it has: {choices})")


def load(directory: str, target, which: str | None = None):
    """(learner_state shaped like ``target``, counters) of the checkpoint ``which``
    (see ``resolve``); ValueError if missing or corrupted."""
    path = resolve(directory, which)
    try:
        with open(path, "rb") as f:
            payload = serialization.msgpack_restore(f.read())
        state = serialization.from_state_dict(target, payload["state"])
        counters = dict(payload["counters"])
        for got, want in zip(jax.tree.leaves(state), jax.tree.leaves(target), strict=True):
            if np.shape(got) != np.shape(want):
                raise ValueError(f"array of shape {np.shape(got)} where {np.shape(want)} belongs")
    except Exception as e:  # any decoding failure means the file cannot be trusted
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"checkpoint {path} is corrupted or does not match this run: {reason} "
                         f"(an older one may be given with --checkpoint)") from None
    return state, counters
