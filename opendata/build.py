"""Build datasets from their definitions: run the builder, apply the rules, check the gate, render files."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin
from zoneinfo import ZoneInfo

import psycopg

from cityos.opendata import builders
from cityos.opendata.anonymise import GateError, apply_rules, check
from cityos.opendata.definitions import Dataset, Portal
from cityos.opendata.render import select_columns, to_csv, to_geojson
from cityos.platform.consent import consenting_subjects
from cityos.platform.exits import UndeclaredExit, use_of


@dataclass(frozen=True)
class ResourceFile:
    """One resource of a built dataset: file bytes, or a URL."""

    name: str
    format: str
    description: str
    data: bytes | None = None
    url: str | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data or (self.url or "").encode()).hexdigest()

    @property
    def filename(self) -> str:
        return f"{self.name}.{self.format}"


@dataclass(frozen=True)
class BuiltDataset:
    """A dataset ready to publish (when ``violations`` is empty)."""

    definition: Dataset
    rows: int
    resources: list[ResourceFile]
    violations: list[str]
    #: File resources left out because the dataset has no rows (never a header-only file).
    skipped: tuple[str, ...] = ()
    contributors: int | None = None  # residents whose data went in (consent-based datasets)


def absolute_url(url: str, public_base_url: str) -> str:
    """``url`` as is when absolute, else joined to the platform's public base URL."""
    if url.startswith(("http://", "https://")):
        return url
    return urljoin(public_base_url.rstrip("/") + "/", url.lstrip("/"))


def build(conn: psycopg.Connection, definition: Dataset, portal: Portal, *, k: int, public_base_url: str,
          now: datetime | None = None, timezone: str = "Asia/Tokyo") -> BuiltDataset:
    """Build ``definition``: only consenting residents contribute, rules applied, the gate's findings kept."""
    rules = definition.anonymisation
    k = rules.k or k
    declared = exit_use(definition)
    consented = None
    if declared.basis == "consent":
        consented = frozenset(consenting_subjects(conn, declared.category, declared.purpose))
    try:
        make = builders.BUILDERS[definition.source.builder]
    except KeyError:
        raise KeyError(f"{definition.name}: no builder {definition.source.builder!r}; "
                       f"known: {', '.join(sorted(builders.BUILDERS))}") from None
    context = builders.BuildContext(portal=portal, k=k, now=now or datetime.now(UTC),
                                    params=dict(definition.source.params), consented=consented,
                                    public_base_url=public_base_url, zone=ZoneInfo(timezone))
    table = make(conn, context)
    frame = apply_rules(table.frame, rules, k)
    violations = check(frame, rules, k, table.contributors, consented)
    resources, skipped = [], []
    for resource in definition.resources:
        if resource.format != "url" and frame.empty:
            skipped.append(resource.name)
            continue
        if resource.format == "url":
            resources.append(ResourceFile(resource.name, "url", resource.description,
                                          url=absolute_url(resource.url or "", public_base_url)))
            continue
        out = select_columns(frame, resource.columns)
        if resource.format == "geojson" and "geometry" not in out:
            out["geometry"] = _geometries(frame)
        data = to_csv(out) if resource.format == "csv" else to_geojson(out, definition.name)
        resources.append(ResourceFile(resource.name, resource.format, resource.description, data=data))
    contributors = len(table.contributors) if table.contributors is not None else None
    return BuiltDataset(definition, len(frame), resources, violations, tuple(skipped), contributors)


def exit_use(definition: Dataset):
    """The dataset's declared use as an exit (:mod:`cityos.platform.exits`); its definition file must say the same
    basis and consent, so the purpose a dataset serves is stated once and checked, not assumed."""
    use = use_of(f"dataset:{definition.source.builder}")
    rules = definition.anonymisation
    stated = (rules.basis, rules.consent.category if rules.consent else None,
              rules.consent.purpose if rules.consent else None)
    if stated != (use.basis, use.category, use.purpose):
        raise UndeclaredExit(f"{definition.name}: its definition says {stated}, the exit registry "
                             f"(cityos.platform.exits) says {(use.basis, use.category, use.purpose)}")
    return use


def _geometries(frame) -> list[dict | None]:
    """GeoJSON geometries of ``frame``'s rows: its ``geometry`` column, or points from ``lat``/``lon``."""
    if "geometry" in frame:
        return list(frame["geometry"])
    if {"lat", "lon"} <= set(frame.columns):
        return [None if lat != lat or lon != lon else {"type": "Point", "coordinates": [float(lon), float(lat)]}
                for lat, lon in zip(frame["lat"], frame["lon"], strict=True)]
    return [None] * len(frame)


def gate(built: list[BuiltDataset]) -> None:
    """Raise :class:`GateError` naming every violation when any dataset breaks its rules."""
    violations = {b.definition.name: b.violations for b in built if b.violations}
    if violations:
        raise GateError(violations)
