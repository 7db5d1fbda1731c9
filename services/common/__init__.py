"""Platform only: settings, logging, metrics, Kafka wiring, serde, errors. No domain logic."""
