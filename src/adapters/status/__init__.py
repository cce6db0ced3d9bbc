"""Where queued requests' statuses are kept: in-process (embedded); Redis (later)."""
