"""StarCraft-style micromanagement simulator (no game binary needed)."""

SCENARIOS: dict = {}
