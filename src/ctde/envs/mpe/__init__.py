"""The Multi-Particle Environments in pure JAX, faithful step for step to PettingZoo's
``mpe2``. ``SCENARIOS`` maps each registry name to its factory; the factory's keyword
parameters are the scenario parameters (``make("simple_tag", num_good=2)``).
"""

from ctde.envs.mpe.base import MPEEnv, MPEState
from ctde.envs.mpe.simple import Simple
from ctde.envs.mpe.simple_adversary import SimpleAdversary
from ctde.envs.mpe.simple_crypto import SimpleCrypto
from ctde.envs.mpe.simple_push import SimplePush
from ctde.envs.mpe.simple_reference import SimpleReference
from ctde.envs.mpe.simple_speaker_listener import SimpleSpeakerListener
from ctde.envs.mpe.simple_spread import SimpleSpread
from ctde.envs.mpe.simple_tag import SimpleTag
from ctde.envs.mpe.simple_world_comm import SimpleWorldComm

SCENARIOS: dict = {
    "simple": Simple,
    "simple_adversary": SimpleAdversary,
    "simple_crypto": SimpleCrypto,
    "simple_push": SimplePush,
    "simple_reference": SimpleReference,
    "simple_speaker_listener": SimpleSpeakerListener,
    "simple_spread": SimpleSpread,
    "simple_tag": SimpleTag,
    "simple_world_comm": SimpleWorldComm,
}

__all__ = ["MPEEnv", "MPEState", "SCENARIOS", *(cls.__name__ for cls in SCENARIOS.values())]
