"""The one way airwater opens an MQTT connection: paho 2.x, MQTT v5, credentials and TLS
from the settings."""

from __future__ import annotations

import paho.mqtt.client as mqtt

from core.settings import Settings


def mqtt_client(settings: Settings, client_id: str, manual_ack: bool = False) -> mqtt.Client:
    """A paho MQTT v5 client configured from the settings (credentials, TLS)."""
    target = settings.mqtt
    client = mqtt.Client(
        callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    if target.username:
        client.username_pw_set(target.username, target.password)
    if target.tls:
        client.tls_set(ca_certs=str(settings.mqtt_ca_file) if settings.mqtt_ca_file else None)
    return client
