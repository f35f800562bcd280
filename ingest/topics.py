"""Topic scheme v1: ``cityos/v1/{domain}/{device_id}/{stream}``, and who may publish on a topic.

The scheme itself lives in the payload contract (:mod:`cityos.ingest.contract`, which the edge
gateway imports too); this module re-exports it under its historic names and adds the server's rule
on publishers. Which streams exist is decided by the format registry (:mod:`cityos.ingest.formats`).
"""

from __future__ import annotations

from cityos.ingest.contract import (
    COMMAND_PREFIX,
    COMMANDS,
    CONFIRM_PREFIX,
    DEVICE_ID,
    PREFIX,
    SEQ_PROPERTY,
    STREAM_NAME,
    Rejected,
    TopicInfo,
    command_topic,
    confirm_topic,
    is_valid_device_id,
    parse_topic,
    topic_for,
)
from cityos.ingest.contract import DOMAIN_NAMES as DOMAINS

__all__ = ["COMMANDS", "COMMAND_PREFIX", "CONFIRM_PREFIX", "DEVICE_ID", "DOMAINS", "PREFIX", "SEQ_PROPERTY",
           "SERVICE_USER", "STREAM_NAME", "TopicInfo", "check_publisher", "command_topic", "confirm_topic",
           "is_valid_device_id", "parse_topic", "topic_for"]

#: The platform's own MQTT user; it may publish for any device (replay of dead letters, simulators).
SERVICE_USER = "cityos-service"


def check_publisher(info: TopicInfo, client_username: str | None) -> None:
    """Refuse (``topic_device_mismatch``) a publisher other than the device itself or the service user.

    ``client_username`` is the authenticated MQTT user when the caller knows it (``None``: not checked).
    """
    if client_username is not None and client_username != info.device_id and client_username != SERVICE_USER:
        raise Rejected("topic_device_mismatch",
                       f"user {client_username[:70]!r} may not publish for device {info.device_id!r}")
