"""ctde: multi-agent actor-critic RL under Centralised Training, Decentralised Execution."""

__version__ = "0.1.0"
