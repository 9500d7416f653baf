"""The Multi-Particle Environments, faithful to PettingZoo's ``mpe2``."""

SCENARIOS: dict = {}
