"""Alert subscriptions: rules evaluated in the ingest transaction, a durable outbox, and the
delivery worker (webhook, MQTT, live stream)."""
