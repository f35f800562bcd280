"""A session of Orange's ngsildclient (0.5.2, from PyPI) against cityos: run in the client's own
virtual environment (its pins clash with the platform's); prints what it saw as one JSON object.

Usage: python ngsildclient_session.py HOST PORT PRODUCER_TOKEN NOTIFY_URL
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta

from ngsildclient import Client, Entity
from ngsildclient.api.constants import AggrMethod
from requests.auth import AuthBase


class Bearer(AuthBase):
    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request):
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


def main(host: str, port: int, producer_token: str, notify_url: str) -> dict:
    seen: dict = {}
    with Client(hostname=host, port=port, verbose=False) as client:
        seen["vehicles"] = sorted(e.id for e in client.query(type="Vehicle"))
        seen["devices"] = sorted(e.id for e in client.query(type="Device"))
        seen["devices_count"] = client.count(type="Device")
        seen["moist"] = [e.id for e in client.query(type="Device", q="soil_moisture_pct<100;category==\"soil\"")]
        near = {"type": "Query", "entities": [{"type": "Vehicle"}, {"type": "WeatherObserved"}],
                 "geoQ": {"georel": "near;maxDistance==100", "geometry": "Point", "coordinates": [139.93, 37.495]}}
        seen["near"] = sorted(e.id for e in client.alt.query(near))
        seen["moving_plows"] = [e.id for e in client.alt.query(
            {"type": "Query", "entities": [{"type": "Vehicle"}], "q": 'category=="snowplow";speed>10',
             "geoQ": {"georel": "within", "geometry": "Polygon",
                      "coordinates": [[[139.9, 37.48], [139.96, 37.48], [139.96, 37.51], [139.9, 37.51],
                                       [139.9, 37.48]]]}})]
        plow = client.get("urn:ngsi-ld:Vehicle:ngsi-plow-01")
        seen["plow_speed"] = plow["speed"]["value"]
        seen["plow_location"] = plow["location"]["value"]["coordinates"]
        troe = client.temporal.get("urn:ngsi-ld:WeatherObserved:ngsi-wx-01", attrs=["temperature"])
        troe = troe[0] if isinstance(troe, list) else troe  # one entity: one temporal representation
        seen["temperature_values"] = len(troe["temperature"]["values"])
        aggregated = client.temporal.aggregate(type="WeatherObserved", attrs=["temperature"],
                                               methods=[AggrMethod.AVERAGE], period=timedelta(hours=6))
        seen["avg_periods"] = len(aggregated.result[0]["temperature"]["avg"])
    with Client(hostname=host, port=port, custom_auth=Bearer(producer_token), verbose=False) as producer:
        seen["subscription"] = producer.subscriptions.create({
            "@context": "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld", "type": "Subscription",
            "entities": [{"type": "WeatherObserved"}], "watchedAttributes": ["temperature"],
            "notification": {"endpoint": {"uri": notify_url, "accept": "application/json"},
                             "format": "keyValues"}})
        now = datetime.now(UTC).replace(microsecond=0)
        station = Entity("WeatherObserved", "ngsi-wx-01")
        station.prop("temperature", -7.25, observedat=now)
        result = producer.upsert([station])
        seen["upserted_at"] = time.time()
        seen["upsert_ok"] = result.ok
    return seen


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4])))
