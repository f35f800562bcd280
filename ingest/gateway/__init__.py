"""The cityos edge gateway: adapters read devices, an SQLite outbox stores, a sender forwards over MQTT.

Runs on a Raspberry Pi. It imports only the payload contract (``ingest/CONTRACT.md``, in code
:mod:`cityos.ingest.contract`; :mod:`.payload` holds the gateway's checks built on it), the base
dependencies (pydantic, typer, paho-mqtt) and, for ECHONET Lite, ``pychonet`` (the ``gateway``
extra): no database server, no GIS, no web framework.

Flow: adapter -> :class:`~.emitter.Emitter` (stamp time, check against the contract) ->
:class:`~.outbox.Outbox` (SQLite, WAL) -> :class:`~.sender.Sender` (MQTT 5, QoS 1, deletes rows
only once the platform confirms the message that carried them is stored; resends unconfirmed ones).
"""
