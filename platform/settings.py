"""One settings object for the platform, read from ``CITYOS_*`` environment variables.

Values not set in the environment fall back to ``<home>/local.env``, which ``cityos up`` writes
(mode 600) when it provisions local servers, and then to the defaults below. The README's
configuration table lists every field.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]


def default_home() -> Path:
    """Where local state lives: ``CITYOS_HOME``, else ``.cityos`` in a source checkout, else ``~/.cityos``."""
    if env := os.environ.get("CITYOS_HOME"):
        return Path(env).expanduser().resolve()
    if (REPO_ROOT / "pyproject.toml").exists():
        return REPO_ROOT / ".cityos"
    return Path.home() / ".cityos"


class Settings(BaseSettings):
    """Every configurable value of the platform (environment prefix ``CITYOS_``)."""

    model_config = SettingsConfigDict(env_prefix="CITYOS_", extra="ignore")

    home: Path = Field(default_factory=default_home, description="Local state folder (data, credentials, logs).")
    database_url: str = Field("", description="PostgreSQL URL of the platform database (owner role).")
    admin_database_url: str = Field("", description="Superuser URL of the local server (provisioning, tests).")
    mqtt_url: str = Field("", description="Broker URL for platform services, mqtt://user:pass@host:port.")
    api_host: str = Field("127.0.0.1", description="Address the API service binds to.")
    api_port: int = Field(8000, description="Port of the API service.")
    public_base_url: str = Field("", description="Base URL under which the API is reachable; every link the API "
                                 "writes starts with it (never with a request's Host header). Empty: the API's "
                                 "host and port.")
    pg_port: int = Field(55432, description="Port of the locally provisioned PostgreSQL.")
    mqtt_port: int = Field(1883, description="Port of the locally provisioned Mosquitto (plain MQTT).")
    mqtt_tls_port: int = Field(0, description="TLS listener port of the local broker (0 = off).")
    ckan_url: str = Field("", description="CKAN portal to publish to; empty = the local CKAN of `cityos up`.")
    ckan_token: str = Field("", description="API token of the CKAN publishing user.")
    ckan_port: int = Field(5000, description="Port of the locally provisioned CKAN.")
    redis_port: int = Field(56379, description="Port of the locally provisioned Redis (CKAN's).")
    broker_auth_dir: Path | None = Field(None, description="Folder of the broker's dynamic security plugin file, "
                                         "written from the registry while the broker is stopped "
                                         "(default <home>/broker).")
    broker_pidfile: Path | None = Field(None, description="Pid file telling whether that broker runs; if so, "
                                        "accounts change over its control topic (default <home>/run/mosquitto.pid).")
    silent_device_s: float = Field(3600, gt=0, description="A device without a reading for this long counts as "
                                   "silent in /metrics (cityos_devices_silent; alert rule CityosDevicesSilent).")
    pg_bin: Path | None = Field(None, description="Folder of pg_dump/pg_restore for `cityos backup`/`restore` "
                                "(at least the server's version); default: the local runtime's PostgreSQL 17, "
                                "else the PATH.")
    ckan_database_url: str = Field("", description="CKAN's database, dumped by `cityos backup` "
                                   "(empty = not backed up).")
    debian_mirror: str = Field("http://deb.debian.org/debian", description="Mirror for the trixie root.")
    log_level: str = Field("INFO", description="Log level of the services.")
    log_json: bool = Field(True, description="Write structured (JSON) logs.")
    k_anonymity: int = Field(10, ge=2, description="Smallest count published in any cell.")
    boundary_tolerance_m: float = Field(100.0, ge=0, description="Metres outside the city boundary a loaded point "
                                        "may lie and still be accepted (farther: refused by line).")
    bus_min_departures: int = Field(10, ge=1, description="Departures per weekday a bus stop needs to count in the "
                                    "bus-coverage analysis (a few buses a day is not useful service).")
    anonymous_rate_per_minute: int = Field(120, ge=1, description="Open-API requests per minute without a key.")
    anonymous_daily_quota: int = Field(10_000, ge=1, description="Open-API requests per day without a key.")
    rate_window_s: float = Field(60, gt=0, le=3600, description="Seconds of the fixed window in which the per-minute "
                                 "rates (anonymous and per key) count; tests shorten it to wait seconds, not a minute.")
    trusted_proxies: str = Field("", description="Addresses or CIDRs (comma-separated) of reverse proxies whose "
                                 "X-Forwarded-For is believed; from anyone else the header is ignored.")
    ngsild_notify_private_hosts: str = Field("", description="Hosts (comma-separated) inside the platform's "
                                             "networks that NGSI-LD notifications may go to; any other "
                                             "private, loopback or link-local address is refused.")
    keys_per_address_per_day: int = Field(10, ge=1, description="API keys one address may mint a day.")
    live_max_per_address: int = Field(4, ge=1, description="Open live-feed connections (SSE and WebSocket) per "
                                      "address, per API process.")
    live_max_total: int = Field(200, ge=1, description="Open live-feed connections in total, per API process.")
    ogc_page_cost: float = Field(0.1, gt=0, le=1, description="What a further page of OGC items (offset > 0) counts "
                                 "against the rate and quota, so paging clients read whole layers.")
    anonymous_max_permutations: int = Field(999, ge=99, description="Most permutations of the hotspot analysis "
                                            "for callers without an API key or token.")
    api_cache_s: float = Field(2, ge=0, le=300, description="Seconds anonymous open-data GETs are answered from "
                               "each API process's memory (0: off; the tests set 0 where they need freshness).")
    series_rollups: bool = Field(True, description="Series with interval=1h or 1d read their complete buckets from the "
                                 "hourly/daily roll-ups (raw rows only for the rest); off: all from raw rows (the "
                                 "test suite, which writes readings into the past behind ingest's back).")
    db_pool_min: int = Field(1, ge=0, le=100, description="Connections each process's database pool keeps open.")
    db_pool_max: int = Field(10, ge=1, le=1000, description="Most connections each process's database pool opens "
                             "(each of the sync and async pools of an API process).")
    db_pool_timeout_s: float = Field(10, gt=0, le=300, description="Longest wait for a free pooled connection "
                                     "before the request fails.")
    basemap_tiles: str = Field("", description="Raster tile URL template of the apps' basemap (e.g. GSI: "
                               "https://cyberjapandata.gsi.go.jp/xyz/std/{z}/{x}/{y}.png); empty = offline style.")
    basemap_attribution: str = Field("", description="Attribution shown with the basemap (e.g. 地理院タイル).")
    ingest_instance: str = Field("auto", description="Ordinal of this `cityos ingest` process (its workers are "
                                 "the MQTT clients cityos-ingest-{instance}-{index}); `auto` takes the lowest one no "
                                 "running instance holds.")
    ingest_admission_refresh_s: float = Field(5, gt=0, le=3600, description="Seconds an ingest worker keeps the "
                                              "device registry and consents in memory: a revocation or a withdrawn "
                                              "consent takes effect within this.")
    app_data_refresh_s: float = Field(60, ge=0, le=86_400, description="Seconds each API process keeps the apps' "
                                      "base layers (/apps/data: hydrants, roads, districts, facilities) before "
                                      "rebuilding them from the database.")
    retention_days_raw: int = Field(400, ge=1, description="Days of raw telemetry kept before drop_chunks.")
    maintenance_interval_s: int = Field(300, ge=5, description="Seconds between retention/roll-up runs.")
    ingest_accounting: bool = Field(True, description="Ingest writes the per-device ledger, the roll-up buckets "
                                    "and the late days of each batch in its transaction. Off only to measure its "
                                    "cost: then no ledger, and roll-ups miss what arrives.")
    timezone: str = Field("Asia/Tokyo", description="The city's time zone (IANA name): every daily bucket (series "
                          "with interval=1d, daily datasets, local hours of day) runs from local midnight to midnight.")
    job_name: str = Field("", description="Set by a scheduled job (its systemd unit) to name itself in the audit "
                          "log instead of the OS user, e.g. cityos-publish.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}: an IANA name such as Asia/Tokyo") from exc
        return value

    @property
    def zone(self):
        """:attr:`timezone` as a ``zoneinfo.ZoneInfo``."""
        from zoneinfo import ZoneInfo

        return ZoneInfo(self.timezone)

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_networks(cls, value: str) -> str:
        from cityos.platform.api.clientaddr import parse_networks

        parse_networks(value)  # a malformed entry stops start-up instead of trusting nothing silently
        return value

    @property
    def api_url(self) -> str:
        """The base URL of the API service."""
        return self.public_base_url or f"http://{self.api_host}:{self.api_port}"


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment, then ``<home>/local.env``, then defaults."""
    home = Path(str(overrides.get("home") or default_home()))
    env_file = home / "local.env"
    return Settings(_env_file=env_file if env_file.exists() else None, **overrides)  # type: ignore[call-arg]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; call ``get_settings.cache_clear()`` after changing env)."""
    return load_settings()


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for logs and status output)."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"
