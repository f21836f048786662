"""``python -m api``: serve the REST API with uvicorn on AIRWATER_HTTP_PORT."""

from __future__ import annotations

import argparse
import logging
import sys

import uvicorn

from api.app import create_app
from core.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="airwater-api",
        description="Serve the airwater REST API (OpenAPI at /docs). Configured by AIRWATER_* "
        "environment variables: AIRWATER_DATABASE_URL, AIRWATER_MQTT_URL, AIRWATER_HTTP_PORT, "
        "AIRWATER_ADMIN_KEY, AIRWATER_PUBLIC_READ.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings()
    if settings.database_url is None:
        parser.error("AIRWATER_DATABASE_URL must be set (or use `airwater run`)")
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=settings.http_port,
        log_level=args.log_level.lower(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
