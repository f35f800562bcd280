"""除雪車の現在位置: the latest position of each public snowplow (a view over telemetry; not loaded from files)."""

from cityos.gis.declarations import Column, Layer

LAYER = Layer(
    "snowplows", "gis.snowplow_positions", "Snowplows, latest position", "除雪車の現在位置",
    (Column("device_id"), Column("time", "timestamp with time zone"), Column("speed_kmh", "real"),
     Column("heading_deg", "real"), Column("blade_down", "boolean")),
    key="device_id", migration="0006_public_views", loadable=False, datetime_column="time", order=7)
