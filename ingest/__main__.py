"""``python -m ingest`` / ``airwater-ingest``: run one ingest worker."""

from __future__ import annotations

import argparse
import logging
import sys

from prometheus_client import start_http_server

from core.settings import Settings
from ingest.worker import IngestWorker, install_signal_handlers


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="airwater-ingest",
        description="Consume station readings from MQTT (shared subscription "
        "$share/ingest/stations/+/readings) into TimescaleDB. Messages are acknowledged only "
        "after their batch commits. Configured by AIRWATER_* environment variables: "
        "AIRWATER_DATABASE_URL, AIRWATER_MQTT_URL, AIRWATER_INGEST_CLIENT_ID, "
        "AIRWATER_INGEST_BATCH_MESSAGES, AIRWATER_INGEST_BATCH_MS, AIRWATER_METRICS_PORT.",
    )
    parser.add_argument("--client-id", help="MQTT client id (overrides AIRWATER_INGEST_CLIENT_ID)")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    overrides = {"ingest_client_id": args.client_id} if args.client_id else {}
    settings = Settings(**overrides)
    if settings.database_url is None or settings.mqtt_url is None:
        parser.error(
            "AIRWATER_DATABASE_URL and AIRWATER_MQTT_URL must be set "
            "(or use `airwater run` for the embedded demo services)"
        )
    if settings.metrics_port:
        try:
            start_http_server(settings.metrics_port)
        except OSError as exc:
            logging.getLogger("ingest").warning(
                "metrics port %d unavailable (%s); metrics not served", settings.metrics_port, exc
            )
    worker = IngestWorker(settings)
    install_signal_handlers(worker)
    return worker.run()


if __name__ == "__main__":
    sys.exit(main())
