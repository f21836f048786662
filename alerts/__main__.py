"""``python -m alerts``: run the alert delivery worker."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys

from prometheus_client import start_http_server

from alerts.delivery import DeliveryWorker, install_signal_handlers
from core.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="airwater-alerts",
        description="Deliver alert events from the outbox (alert_events) by webhook (signed "
        "JSON POST, retried with exponential backoff), MQTT (QoS 1 to alerts/{kind}/{station}) "
        "or the live stream, at least once. Woken by NOTIFY alert_events, polls as a safety "
        "net. Several workers may run against one database. Configured by AIRWATER_* "
        "environment variables: AIRWATER_DATABASE_URL, AIRWATER_MQTT_URL, "
        "AIRWATER_WEBHOOK_ALLOW, AIRWATER_WEBHOOK_TIMEOUT_S, "
        "AIRWATER_WEBHOOK_MAX_RESPONSE_BYTES, AIRWATER_DELIVERY_MAX_ATTEMPTS, "
        "AIRWATER_DELIVERY_BACKOFF_S, AIRWATER_DELIVERY_BACKOFF_MAX_S, "
        "AIRWATER_DELIVERY_CONCURRENCY, AIRWATER_SILENCE_CHECK_S. SIGTERM/SIGINT finish the "
        "deliveries in flight and exit 0.",
    )
    parser.add_argument(
        "--client-id",
        help="MQTT client id (default airwater-alerts-<host>-<pid>, unique per process)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        help="serve Prometheus metrics on this port (default 0: not served)",
    )
    parser.add_argument(
        "--poll-s",
        type=float,
        default=1.0,
        help="look for due events at least this often, in seconds, besides NOTIFY (default 1)",
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    args = parser.parse_args(argv)
    if args.poll_s <= 0:
        parser.error("--poll-s must be positive")
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # httpx logs every request at INFO, with the pinned address; our own line says more
    if logging.getLogger().level > logging.DEBUG:
        logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = Settings()
    if settings.database_url is None:
        parser.error(
            "AIRWATER_DATABASE_URL must be set (or use `airwater run` for the embedded demo "
            "services)"
        )
    if args.metrics_port:
        try:
            start_http_server(args.metrics_port)
        except OSError as exc:
            logging.getLogger("alerts").warning(
                "metrics port %d unavailable (%s); metrics not served", args.metrics_port, exc
            )
    client_id = args.client_id or f"airwater-alerts-{socket.gethostname()}-{os.getpid()}"
    worker = DeliveryWorker(settings, client_id=client_id, poll_s=args.poll_s)
    install_signal_handlers(worker)
    return worker.run()


if __name__ == "__main__":
    sys.exit(main())
