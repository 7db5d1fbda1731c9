"""Kafka wiring in one place: the faust stage runner, topic administration, the local broker."""
