"""Per-store locks: asyncio in-process (embedded); Redis with Redisson's semantics (later)."""
