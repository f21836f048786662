"""Shapes that cross a boundary: MQTT payloads, API models, SQL migrations."""
