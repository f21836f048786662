"""The MQTT consumer: parse → validate → batch → write → ack."""
