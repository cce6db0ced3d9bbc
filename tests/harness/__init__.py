"""Real servers for the tests: found where they run, or started privately; never skipped."""
