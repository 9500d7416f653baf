"""The actor-critic algorithms. Each module exposes ``Config`` and ``make_train``."""

from ctde.algos.registry import ALGORITHMS, get, names

__all__ = ["ALGORITHMS", "get", "names"]
