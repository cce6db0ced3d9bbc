"""Use cases: one per intent, talking to the world only through the ports."""
