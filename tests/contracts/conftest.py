"""Real servers the contract suites run against (see tests/harness and tests/conftest.py)."""
