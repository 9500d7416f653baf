"""JAX multi-agent environments: ``make(name, **params)``, ``names()``."""

from ctde.envs.core import Box, Discrete, MultiAgentEnv
from ctde.envs.registry import make, names, parameters
from ctde.envs.wrappers import AutoReset, EpisodeStats, training_env

__all__ = [
    "AutoReset",
    "Box",
    "Discrete",
    "EpisodeStats",
    "MultiAgentEnv",
    "make",
    "names",
    "parameters",
    "training_env",
]
