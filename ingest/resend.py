"""Ask a gateway to send readings again: ``cityos/command/v1/{device_id}/resend`` (the platform's side).

Only the service account may publish on command topics; only the device reads its own (broker roles,
:mod:`cityos.ingest.broker_auth`). Each command is one QoS 1 message ``{"stream": domain, "from": n,
"to": m}``: the gateway queues its kept readings of that stream numbered ``n..m`` again, with their
numbers, and the platform stores each reading once (its keys), closing the gap. A gateway that is
offline receives the command when it reconnects (its persistent session holds it).
"""

from __future__ import annotations

import json
import uuid

from cityos.ingest.gaps import Range
from cityos.ingest.topics import DOMAINS, command_topic
from cityos.platform.mqtt import BrokerAddress, new_client


class ResendError(RuntimeError):
    """The command could not be sent (broker unreachable or refusing); the message says why."""


def resend_commands(stream: str, ranges: list[Range]) -> list[dict]:
    """The command payloads for ``ranges`` of ``stream`` (validated)."""
    if stream not in DOMAINS:
        raise ValueError(f"unknown stream {stream!r}; one of {', '.join(DOMAINS)}")
    for first, last in ranges:
        if not 1 <= first <= last:
            raise ValueError(f"bad range {first}..{last}: need 1 <= from <= to")
    return [{"stream": stream, "from": first, "to": last} for first, last in ranges]


def send_resend(mqtt_url: str, device_id: str, commands: list[dict], timeout: float = 10.0,
                ca_file: str | None = None) -> None:
    """Publish ``commands`` to the device's resend topic and wait for the broker's PUBACKs."""
    address = BrokerAddress.parse(mqtt_url)
    client = new_client(address, f"cityos-resend-{uuid.uuid4().hex[:10]}", ca_file=ca_file)
    try:
        client.connect(address.host, address.port, keepalive=30)
    except OSError as exc:
        raise ResendError(f"cannot reach the broker at {address.host}:{address.port}: {exc}") from exc
    client.loop_start()
    try:
        for command in commands:
            info = client.publish(command_topic(device_id, "resend"), json.dumps(command), qos=1)
            info.wait_for_publish(timeout)
            if not info.is_published():
                raise ResendError(f"the broker did not acknowledge the resend command within {timeout} s")
    except (RuntimeError, ValueError) as exc:  # paho: not connected, or the broker refused
        raise ResendError(str(exc)) from exc
    finally:
        client.disconnect()
        client.loop_stop()
