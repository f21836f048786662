"""The operator REST API (FastAPI): stations, readings, aggregates, AQI, compliance,
HTTP ingest, keys; errors as RFC 9457 problem+json."""

from api.app import create_app

__all__ = ["create_app"]
