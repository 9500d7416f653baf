"""The Multi-Particle Environments in pure JAX, faithful step for step to PettingZoo's
``mpe2``. ``SCENARIOS`` maps each registry name to its factory; the factory's keyword
parameters are the scenario parameters (``make("simple_tag", num_good=2)``).
"""

from ctde.envs.mpe.base import MPEEnv, MPEState
from ctde.envs.mpe.simple_spread import SimpleSpread
from ctde.envs.mpe.simple_tag import SimpleTag

SCENARIOS: dict = {
    "simple_spread": SimpleSpread,
    "simple_tag": SimpleTag,
}

__all__ = ["MPEEnv", "MPEState", "SCENARIOS"]
