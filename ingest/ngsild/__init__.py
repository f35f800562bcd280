"""NGSI-LD (ETSI GS CIM 009) over the platform's own tables: the interface FIWARE tools and other
cities' 都市OS platforms speak.

- :mod:`.problems`: errors as the standard's ProblemDetails, for every route of the API.
- :mod:`.terms`: JSON-LD contexts (the core context served locally, the platform's own context), and
  the mapping between short names and IRIs.
- :mod:`.model`: which entity a device is (type, id, attributes) and what a caller may see.
- :mod:`.query`: the NGSI-LD query language (``q``) and geo-queries, parsed and translated to
  parameterised SQL.
- :mod:`.entities`, :mod:`.temporal`: context information and its history, read from the registry, the
  latest values, the hypertables and the roll-ups (no second copy of the data).
- :mod:`.producers`: upserts and attribute updates from an authenticated service, through ingest's
  validation, dead letters and writer, exactly like an MQTT message.
- :mod:`.subscriptions`, :mod:`.notifier`: subscriptions owned by a token or API key, notified over HTTP
  or MQTT from readings the ingest writer has committed.
- :mod:`.api`: the routes under ``/ngsi-ld/v1``.
"""
