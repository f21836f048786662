"""Prometheus metrics of the ingest worker."""

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_RECEIVED = Counter("airwater_ingest_messages_received", "MQTT messages received")
READINGS_STORED = Counter("airwater_ingest_readings_stored", "Readings newly stored")
READINGS_DUPLICATE = Counter(
    "airwater_ingest_readings_duplicate", "Readings already stored (redelivery or re-send)"
)
DEAD_LETTERS = Counter("airwater_ingest_dead_letters", "Dead letters by reason", ["reason"])
BATCH_MESSAGES = Histogram(
    "airwater_ingest_batch_messages",
    "Messages per committed batch",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
)
COMMIT_SECONDS = Histogram(
    "airwater_ingest_commit_seconds",
    "Time to write and commit one batch",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
DATABASE_ERRORS = Counter("airwater_ingest_database_errors", "Failed batch writes (retried)")
UNACKED = Gauge("airwater_ingest_unacked_messages", "Messages received and not yet acknowledged")
