"""JAX multi-agent environments: ``make(name, **params)``, ``names()``, ``settings(name, params)``."""

from ctde.envs.core import Box, Discrete, MultiAgentEnv
from ctde.envs.registry import make, names, parameters, settings
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
    "settings",
    "training_env",
]
