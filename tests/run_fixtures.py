"""A tiny PettingZoo ParallelEnv for the run tests (``pettingzoo:run_fixtures``): one
agent guesses the bit it sees, episodes of five steps. From an env's ``nan_after``-th
step on every reward is NaN: a run that diverges on purpose, at a known point."""

import numpy as np
from gymnasium import spaces

AGENT = "agent_0"


class Guess:
    metadata = {"name": "guess"}
    max_cycles = 5

    def __init__(self, nan_after: int = 10**9):
        self.possible_agents = [AGENT]
        self.agents: list[str] = []
        self.nan_after = nan_after
        self.steps = 0  # over every episode of this env

    def observation_space(self, agent):
        return spaces.Box(0.0, 1.0, (1,), np.float32)

    def action_space(self, agent):
        return spaces.Discrete(2)

    def _obs(self):
        return {AGENT: np.array([self.bit], np.float32)}

    def reset(self, seed=None, options=None):
        self.rng = np.random.default_rng(seed)
        self.t = 0
        self.agents = [AGENT]
        self.bit = int(self.rng.integers(2))
        return self._obs(), {AGENT: {}}

    def step(self, actions):
        self.steps += 1
        self.t += 1
        reward = float(int(actions[AGENT]) == self.bit) if self.steps <= self.nan_after else float("nan")
        self.bit = int(self.rng.integers(2))
        done = self.t >= self.max_cycles
        if done:
            self.agents = []
        return self._obs(), {AGENT: reward}, {AGENT: False}, {AGENT: done}, {AGENT: {}}

    def render(self):
        return np.zeros((8, 8, 3), np.uint8)

    def close(self):
        pass


def parallel_env(**params):
    return Guess(**params)
