"""Fleet sync over MQTT (docs/design.md §6): the outbox relay, replication in, topic and payload schemas."""
