"""Live-stream fan-out: in-process (embedded); through Redis across instances (later)."""
