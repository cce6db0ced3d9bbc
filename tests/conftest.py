"""Shared test setup: hypothesis profiles sized for the suite's time budget."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# `default` keeps the whole suite within minutes on two cores; `thorough` is for long runs:
# HYPOTHESIS_PROFILE=thorough scripts/test
settings.register_profile(
    "default", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
