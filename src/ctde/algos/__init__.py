"""The actor-critic algorithms. Each module exposes ``Config`` and ``make_train``."""

from ctde.algos.registry import ALGORITHMS, SPLITS_BATCHES, get, names

__all__ = ["ALGORITHMS", "SPLITS_BATCHES", "get", "names"]
