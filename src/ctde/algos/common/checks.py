"""Config checks shared by the algorithms: each raises ``ValueError("algo: field ...")``
naming the setting and the value, so bad settings fail before anything is built."""

from __future__ import annotations

ACTIVATIONS = ("relu", "tanh", "gelu", "silu")


def at_least(config, algo: str, bound: float, *names: str) -> None:
    for name in names:
        if getattr(config, name) < bound:
            raise ValueError(f"{algo}: {name} must be >= {bound}, got {getattr(config, name)}")


def positive(config, algo: str, *names: str) -> None:
    for name in names:
        if not getattr(config, name) > 0:  # also rejects NaN
            raise ValueError(f"{algo}: {name} must be > 0, got {getattr(config, name)}")


def within(config, algo: str, low: float, high: float, *names: str, open_low: bool = False) -> None:
    for name in names:
        value = getattr(config, name)
        if not (low < value if open_low else low <= value) or not value <= high:
            interval = f"{'(' if open_low else '['}{low}, {high}]"
            raise ValueError(f"{algo}: {name} must be in {interval}, got {value}")


def one_of(config, algo: str, name: str, allowed) -> None:
    if getattr(config, name) not in allowed:
        raise ValueError(
            f"{algo}: {name} must be one of {', '.join(allowed)}, got {getattr(config, name)!r}"
        )


def network(config, algo: str) -> None:
    """``hidden`` layer widths and ``activation``."""
    if not config.hidden or any(w < 1 for w in config.hidden):
        raise ValueError(f"{algo}: hidden must be positive layer widths, got {config.hidden}")
    one_of(config, algo, "activation", ACTIVATIONS)
