"""Runs: the outer training loop, evaluation, logging, checkpoints and resume."""
