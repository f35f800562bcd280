"""The gateway's configuration: one TOML file, validated with pydantic, with readable errors.

Example (``ingest/gateway/example.toml`` has every option)::

    device_id = "hems-0001"
    broker_url = "mqtts://broker.city.example:8883"
    credentials_file = "credentials.json"        # written by `cityos gateway enroll`

    [outbox]
    path = "outbox.db"
    max_size_mb = 64

    [[adapters]]
    type = "echonet"
    hosts = ["192.168.1.40"]
    interval_s = 60

Relative paths are relative to the configuration file's folder.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Union
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cityos.ingest.contract import DEVICE_ID
from cityos.ingest.gateway.adapters import settings_models
from cityos.ingest.gateway.adapters.base import AdapterSettings, resolve


class ConfigError(ValueError):
    """The configuration file is missing, not TOML, or invalid; the message lists every problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OutboxSettings(_Strict):
    """Where readings wait, and how much disk they may use."""

    path: Path = Path("outbox.db")
    max_size_mb: float = Field(64, gt=0, le=100_000, description="Bound on stored readings (overflow policy).")
    max_age_days: float = Field(29, gt=0, le=30, description="Older unsent readings are dropped (platform: 30).")
    durable: bool = Field(False, description="fsync every commit (survives power loss; more SD-card wear).")
    keep_sent_days: float = Field(7, ge=0, le=30, description="Keep readings this long after they left the queue "
                                  "(stored, or acknowledged), so the platform can ask for them again (0: keep none).")
    keep_sent_mb: float = Field(16, ge=0, le=100_000, description="Bound on kept readings (oldest go first).")

    @property
    def max_bytes(self) -> int:
        """The size bound in bytes."""
        return int(self.max_size_mb * 1024 * 1024)


class SenderSettings(_Strict):
    """How readings are batched and published."""

    batch_size: int = Field(500, ge=1, le=10_000)
    inflight: int = Field(4, ge=1, le=100, description="Messages awaiting PUBACK at once.")
    linger_s: float = Field(1.0, ge=0, le=60, description="Wait this long to fill batches (events go at once).")
    keepalive_s: int = Field(30, ge=5, le=1200)
    session_expiry_s: int = Field(7 * 86400, ge=0, le=0xFFFFFFFF)
    resume_delay_s: float = Field(3, ge=0, le=60, description="After connecting to a broker that has no session "
                                  "for us (first start, broker restart), wait this long before sending: the "
                                  "platform's ingest usually re-subscribes within a second (Mosquitto does not "
                                  "restore shared subscriptions from persistence), so fewer readings need a resend.")
    confirm: bool = Field(True, description="Keep readings after the PUBACK until the platform confirms they are "
                          "stored (cityos/confirm/v1/{device_id}); resend them if it does not.")
    confirm_timeout_s: float = Field(60, ge=1, le=3600, description="Resend readings unconfirmed this long after "
                                     "their PUBACK (doubling with each resend, at most an hour).")
    ca_file: Path | None = Field(None, description="CA bundle for mqtts:// (default: the system's).")


if TYPE_CHECKING:  # the union is built at run time from the adapter registry; to a type checker, the base class
    AnyAdapter = AdapterSettings
else:
    AnyAdapter = Annotated[Union[tuple(settings_models())], Field(discriminator="type")]  # noqa: UP007


class GatewayConfig(_Strict):
    """The whole configuration file."""

    device_id: str = Field(description="The device's id, also its MQTT user name.")
    broker_url: str = Field(description="mqtt://host:1883 or mqtts://host:8883 (credentials come from the file).")
    credentials_file: Path = Path("credentials.json")
    topic_root: str = Field("cityos/v1", description="Only tests change this (to stay out of the ingest tree).")
    status_interval_s: float = Field(5, ge=1, le=300)
    outbox: OutboxSettings = OutboxSettings()
    sender: SenderSettings = SenderSettings()
    adapters: list[AnyAdapter] = Field(default_factory=list)

    @field_validator("device_id")
    @classmethod
    def _device_id(cls, value: str) -> str:
        if not DEVICE_ID.fullmatch(value):
            raise ValueError(f"must match {DEVICE_ID.pattern} (lower-case letters, digits, - and _)")
        return value

    @field_validator("broker_url")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("must be mqtt://host[:port] or mqtts://host[:port]")
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError as exc:
            raise ValueError(f"bad port: {exc}") from None
        return value

    @field_validator("topic_root")
    @classmethod
    def _topic_root(cls, value: str) -> str:
        if not value or value.startswith("/") or value.endswith("/") or any(c in value for c in "#+"):
            raise ValueError("must be a topic prefix such as cityos/v1 (no wildcards, no leading/trailing /)")
        return value

    @model_validator(mode="after")
    def _one_domain(self) -> GatewayConfig:
        domains = {a.DOMAIN for a in self.adapters}
        if len(domains) > 1:
            raise ValueError(f"adapters produce readings of several domains ({', '.join(sorted(domains))}); "
                             "a gateway publishes as one device of one domain: run one gateway per device")
        labels = [a.label for a in self.adapters]
        if dupes := sorted({x for x in labels if labels.count(x) > 1}):
            raise ValueError(f"adapter names must be unique; give `name = ...` to the repeated {', '.join(dupes)}")
        return self

    @property
    def domain(self) -> str | None:
        """The domain of the adapters' readings (None without adapters)."""
        return self.adapters[0].DOMAIN if self.adapters else None

    def resolve_paths(self, base: Path) -> None:
        """Make relative paths relative to ``base`` (the configuration file's folder)."""
        self.credentials_file = resolve(self.credentials_file, base)  # type: ignore[assignment]
        self.outbox.path = resolve(self.outbox.path, base)  # type: ignore[assignment]
        self.sender.ca_file = resolve(self.sender.ca_file, base)
        adapter: AdapterSettings
        for adapter in self.adapters:
            adapter.resolve_paths(base)


def _where(loc: tuple[Any, ...]) -> str:
    text = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            text += f"[{part}]"
        elif i > 0 and isinstance(loc[i - 1], int) and loc[0] == "adapters" and i == 2:
            text += f" ({part})"  # the tag of the adapter's type
        else:
            text += ("." if text else "") + str(part)
    return text or "(file)"


def format_errors(source: str, exc: ValidationError) -> str:
    """One line per problem: ``file: adapters[1] (vehicle).interval_s: ... (got 30)``."""
    lines = [f"{source}: {exc.error_count()} problem(s) in the gateway configuration:"]
    for err in exc.errors(include_url=False):
        got = "" if err["type"] in ("missing", "value_error") else f" (got {err['input']!r})"
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"  {_where(tuple(err['loc']))}: {msg}{got}")
    return "\n".join(lines)


def parse_config(data: dict[str, Any], source: str = "<config>", base: Path | None = None) -> GatewayConfig:
    """Validate a configuration mapping; raises :class:`ConfigError` listing every problem."""
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_errors(source, exc)) from None
    config.resolve_paths(base or Path.cwd())
    return config


def load_config(path: str | Path) -> GatewayConfig:
    """Read and validate the TOML file at ``path``."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, str(path), path.resolve().parent)
