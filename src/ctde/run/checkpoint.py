"""Atomic checkpoints and files: a killed run never leaves a half-written file behind.

A checkpoint holds the learner state of every seed (parameters, optimiser states, RNG
keys, environment states: everything ``update`` needs to carry on exactly) and the
runner's counters.
"""

from __future__ import annotations

import os
import tempfile

import jax
import numpy as np
from flax import serialization

CHECKPOINT = "latest.msgpack"


def atomic_write(path: str, data: bytes | str) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, mode) as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save(directory: str, learner_state, counters: dict) -> str:
    state = serialization.to_state_dict(jax.device_get(learner_state))
    payload = serialization.msgpack_serialize({"state": state, "counters": counters})
    path = os.path.join(directory, CHECKPOINT)
    atomic_write(path, payload)
    return path


def load(directory: str, target):
    """(learner_state shaped like ``target``, counters); ValueError if missing or corrupted."""
    path = os.path.join(directory, CHECKPOINT)
    if not os.path.exists(path):
        raise ValueError(f"no checkpoint at {path}")
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
        raise ValueError(f"checkpoint {path} is corrupted or does not match this run: {reason}") from None
    return state, counters
