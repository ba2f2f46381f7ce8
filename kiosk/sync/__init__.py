"""Fleet sync over MQTT (DESIGN.md §6): the outbox relay, replication in, topic and payload schemas."""
