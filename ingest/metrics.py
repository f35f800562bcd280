"""The ingest workers' Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES = Counter("cityos_ingest_messages_total", "MQTT messages received", ["domain"])
READINGS = Counter("cityos_ingest_readings_total", "Readings accepted", ["domain"])
ROWS_WRITTEN = Counter("cityos_ingest_rows_written_total", "Rows committed to the database", ["table"])
DEAD_LETTERS = Counter("cityos_ingest_dead_letters_total", "Messages sent to the dead-letter store", ["reason"])
BATCH_SECONDS = Histogram("cityos_ingest_batch_seconds", "Time to commit one batch",
                          buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
LAG_SECONDS = Histogram("cityos_ingest_lag_seconds", "Commit time minus the newest observation time in a batch",
                        buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 600, 3600, 86400))
BUFFERED = Gauge("cityos_ingest_buffered_messages", "Messages received but not yet committed",
                 multiprocess_mode="livesum")
DB_ERRORS = Counter("cityos_ingest_database_errors_total", "Failed batch commits (retried)")
