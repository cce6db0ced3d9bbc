"""Controllers grouped by resource."""
