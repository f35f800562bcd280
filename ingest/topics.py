"""Topic scheme v1: ``cityos/v1/{domain}/{device_id}/{stream}``.

Standard library only: the edge gateway imports this module to build the topics it publishes on.
Which streams exist is decided by the format registry (:mod:`cityos.ingest.formats`); here a stream
only has to be a well-formed name.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from cityos.ingest.rows import Rejected

PREFIX = "cityos/v1"
DOMAINS = ("hems", "vehicle", "health", "env")
DEVICE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{2,63}")
STREAM_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")
#: The platform's own MQTT user; it may publish for any device (replay of dead letters, simulators).
SERVICE_USER = "cityos-service"


class TopicInfo(NamedTuple):
    """The parts of a valid topic."""

    domain: str
    device_id: str
    stream: str


#: Where the platform confirms to a device that its messages are stored (only that device may read it).
CONFIRM_PREFIX = "cityos/confirm/v1"
#: The MQTT 5 user property with which a publisher numbers a message for confirmation.
SEQ_PROPERTY = "seq"


#: Where the platform commands a device (only the platform may publish; only that device may read).
COMMAND_PREFIX = "cityos/command/v1"
#: Commands a gateway obeys: ``resend`` ``{"stream": domain, "from": n, "to": m}`` (kept readings numbered n..m).
COMMANDS = ("resend",)


def command_topic(device_id: str, command: str = "resend") -> str:
    """The topic on which the platform sends ``device_id`` the command ``command``."""
    return f"{COMMAND_PREFIX}/{device_id}/{command}"


def confirm_topic(device_id: str) -> str:
    """The topic on which ``device_id`` is told which of its messages (by ``seq``) are stored."""
    return f"{CONFIRM_PREFIX}/{device_id}"


def topic_for(domain: str, device_id: str, stream: str = "readings") -> str:
    """The topic on which ``device_id`` publishes ``stream`` (not validated: see :func:`parse_topic`)."""
    return f"{PREFIX}/{domain}/{device_id}/{stream}"


def is_valid_device_id(device_id: str) -> bool:
    """Whether ``device_id`` is a well-formed device id (also the device's MQTT user name)."""
    return DEVICE_ID.fullmatch(device_id) is not None


@lru_cache(maxsize=65_536)
def parse_topic(topic: str) -> TopicInfo:
    """Split a topic into domain, device id and stream; raises :class:`Rejected` ``bad_topic``.

    Results are cached (devices publish on the same few topics); rejections are not.
    """
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != "cityos" or parts[1] != "v1":
        raise Rejected("bad_topic",
                       f"expected {PREFIX}/{{domain}}/{{device_id}}/{{stream}}, got {topic[:200]!r}")
    domain, device_id, stream = parts[2], parts[3], parts[4]
    if domain not in DOMAINS:
        raise Rejected("bad_topic", f"unknown domain {domain[:40]!r}; one of {', '.join(DOMAINS)}")
    if DEVICE_ID.fullmatch(device_id) is None:
        raise Rejected("bad_topic", f"device id {device_id[:70]!r} does not match {DEVICE_ID.pattern}")
    if STREAM_NAME.fullmatch(stream) is None:
        raise Rejected("bad_topic", f"stream {stream[:40]!r} does not match {STREAM_NAME.pattern}")
    return TopicInfo(domain, device_id, stream)


def check_publisher(info: TopicInfo, client_username: str | None) -> None:
    """Refuse (``topic_device_mismatch``) a publisher other than the device itself or the service user.

    ``client_username`` is the authenticated MQTT user when the caller knows it (``None``: not checked).
    """
    if client_username is not None and client_username != info.device_id and client_username != SERVICE_USER:
        raise Rejected("topic_device_mismatch",
                       f"user {client_username[:70]!r} may not publish for device {info.device_id!r}")
