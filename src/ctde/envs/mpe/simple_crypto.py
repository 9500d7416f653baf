"""simple_crypto: Alice encrypts a goal colour with a shared key for Bob; Eve listens.

Reference: ``mpe2.simple_crypto_v3``. Agent order: ``eve_0, bob_0, alice_0``. Nobody
moves: every action is an utterance of ``dim_c = 4`` (one-hot word when discrete, the
raw vector when continuous). Colours are one-hot vectors of length 4 (landmark ``i``
has colour ``e_i``); the goal colour and the key colour are drawn independently.
Observations: Alice ``[goal_colour, key]``, Bob ``[key, alice_says]``, Eve
``[alice_says]``. Rewards (an all-zero utterance is skipped, as in the reference):
Eve ``-|eve_says - goal|^2``; Alice and Bob ``-|bob_says - goal|^2 + |eve_says - goal|^2``.
``state.goal = [goal landmark, key landmark]``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ctde.envs.mpe.base import MPEEnv, MPEState

DIM_C = 4
EVE, BOB, ALICE = 0, 1, 2


class SimpleCrypto(MPEEnv):
    def __init__(self, max_cycles=25, continuous_actions=False):
        super().__init__(
            name="simple_crypto", agent_names=["eve_0", "bob_0", "alice_0"],
            teams=[0, 1, 1], team_names=("adversary", "good"), num_landmarks=2,
            size=[0.05] * 5, collide=[False] * 5, movable=[False] * 3, silent=[False] * 3,
            dim_c=DIM_C, obs_sizes=[DIM_C, 2 * DIM_C, 2 * DIM_C], max_cycles=max_cycles,
            continuous_actions=continuous_actions,
            metrics={"bob_correct": "mean", "eve_correct": "mean"},
            colors=np.array([[0.75, 0.25, 0.25], [0.25, 0.25, 0.25], [0.25, 0.25, 0.25],
                             [0.9, 0.3, 0.3], [0.3, 0.8, 0.3]]),
        )

    def _reset_state(self, key):
        k_goal, k_pos = jax.random.split(key)
        goal = jax.random.randint(k_goal, (2,), 0, self.num_landmarks)  # [goal, key]
        return self._blank_state(k_pos, goal=goal)

    def _colors(self, state):
        """The goal colour and the key, ``[DIM_C]`` each."""
        return (jax.nn.one_hot(state.goal[0], DIM_C), jax.nn.one_hot(state.goal[1], DIM_C))

    def _observe(self, state: MPEState):
        goal, key = self._colors(state)
        alice_says = state.c[ALICE]
        return self._stack_obs([alice_says[None], jnp.concatenate([key, alice_says])[None],
                                jnp.concatenate([goal, key])[None]])

    def _rewards(self, state):
        goal, _ = self._colors(state)
        spoke = jnp.any(state.c != 0, axis=-1)  # the reference skips all-zero utterances
        err = jnp.where(spoke, jnp.sum(jnp.square(state.c - goal), axis=-1), 0.0)
        good = err[EVE] - err[BOB]
        return jnp.stack([-err[EVE], good, good])

    def _metrics(self, state):
        said = jnp.argmax(state.c, axis=-1)
        return {"bob_correct": (said[BOB] == state.goal[0]).astype(jnp.float32),
                "eve_correct": (said[EVE] == state.goal[0]).astype(jnp.float32)}

    def _extra_state(self, state):
        return jnp.concatenate(self._colors(state))

    def _entity_colors(self, state):
        colors = self.colors.copy()
        colors[BOB] = colors[3 + int(state.goal[0])]  # the reference paints Bob the goal colour
        return colors
