"""The registration queue: in-process partitions (embedded); Kafka (later)."""
