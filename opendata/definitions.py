"""Declarative dataset definitions: one TOML file per dataset in ``opendata/datasets/``.

A definition names its source (a registered builder), its anonymisation rules, its schedule and
its CKAN metadata. ``portal.toml`` in the same folder holds what every dataset shares (organization,
city code, contact). Files are validated on load; an invalid file is reported with its name and the
offending field, and nothing is published.
"""

from __future__ import annotations

import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DATASETS_DIR = Path(__file__).with_name("datasets")
PORTAL_FILE = "portal.toml"
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{1,99}$"

#: How often a dataset is rebuilt; also CKAN's ``frequency`` extra.
SCHEDULES: dict[str, timedelta] = {
    "hourly": timedelta(hours=1),
    "daily": timedelta(days=1),
    "weekly": timedelta(weeks=1),
    "monthly": timedelta(days=30),
}

#: Licences the portal offers (ids match opendata/licenses.json, which CKAN is configured with).
LICENCES = ("pdl-1.0", "cc-by-4.0")


class DefinitionError(ValueError):
    """A dataset definition file is invalid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Contact(_Strict):
    name: str
    email: str


class Organization(_Strict):
    name: str = Field(pattern=NAME_PATTERN)
    title: str
    description: str = ""


class Portal(_Strict):
    """What every dataset of the city shares."""

    city_code: str = Field(pattern=r"^\d{6}$", description="全国地方公共団体コード (with check digit).")
    city_name: str
    prefecture: str
    organization: Organization
    contact: Contact


class ConsentRule(_Strict):
    """Whose data may contribute: residents with an active consent for (category, purpose)."""

    category: Literal["energy", "location", "health", "registry"]
    purpose: Literal["open_data", "research", "services"] = "open_data"


class Anonymisation(_Strict):
    """The rules the gate enforces before anything is uploaded.

    ``basis`` says why the data may leave: ``consent`` (only contributions of residents with an
    active consent) or ``statutory`` (aggregate statistics the city publishes by law, such as
    population from the resident registry: no per-person consent, cells still suppressed below k), or
    ``non_personal`` (facilities, city vehicles, police points: nobody's personal data).
    """

    basis: Literal["consent", "statutory", "non_personal"]
    consent: ConsentRule | None = None
    k: int | None = Field(None, ge=2, description="Smallest published count; default: the platform's k.")
    count_columns: tuple[str, ...] = Field((), description="Counts of people or homes: each 0 or >= k, else blank.")
    group_size_column: str | None = Field(None, description="Number of contributors of a row; below k the "
                                                           "row's values are blanked.")
    value_columns: tuple[str, ...] = Field((), description="Values computed from the row's contributors.")
    drop_columns: tuple[str, ...] = Field((), description="Columns removed before publishing.")
    coordinate_decimals: int | None = Field(None, ge=2, le=6, description="Round published coordinates.")
    time_bucket: Literal["1min", "5min", "15min", "1h", "1d"] | None = Field(
        None, description="Truncate published times to this bucket.")

    @model_validator(mode="after")
    def _consent_matches_basis(self) -> Anonymisation:
        if (self.basis == "consent") != (self.consent is not None):
            raise ValueError("basis 'consent' needs a [anonymisation.consent] table, and only it may have one")
        if self.basis in ("consent", "statutory") and not (self.count_columns or self.group_size_column):
            raise ValueError(f"basis {self.basis!r} publishes data about people: name count_columns "
                             "or group_size_column so the gate can check k")
        return self


class Resource(_Strict):
    """One file (``format`` csv or geojson, built from the dataset's table) or a URL resource."""

    name: str
    format: Literal["csv", "geojson", "url"]
    description: str = ""
    url: str | None = Field(None, description="For format 'url': absolute, or a path on the platform's API.")
    columns: dict[str, str] | None = Field(None, description="Output column -> table column (order kept).")

    @model_validator(mode="after")
    def _url_only_for_links(self) -> Resource:
        if (self.format == "url") != bool(self.url):
            raise ValueError("a 'url' resource needs url, and only it")
        return self


class Source(_Strict):
    builder: str = Field(description="Name of a registered builder (cityos.opendata.builders).")
    params: dict[str, int | float | str | bool] = Field(default_factory=dict)


class Dataset(_Strict):
    """One dataset of the portal."""

    name: str = Field(pattern=NAME_PATTERN, description="CKAN name; also the file name.")
    title_ja: str
    title_en: str
    description_ja: str
    description_en: str
    tags: tuple[str, ...] = ()
    licence: Literal[LICENCES] = "cc-by-4.0"  # type: ignore[valid-type]
    schedule: Literal["hourly", "daily", "weekly", "monthly"] = "daily"
    spatial: dict | None = Field(None, description="GeoJSON geometry of the extent; default: the districts' bbox.")
    temporal: str = Field("", description="Temporal coverage, e.g. 'last 90 days' or an ISO interval.")
    standard: str = Field("", description="Standard format followed, e.g. 自治体標準オープンデータセット 09.")
    source: Source
    anonymisation: Anonymisation
    resources: tuple[Resource, ...] = Field(min_length=1)

    @field_validator("resources")
    @classmethod
    def _unique_resource_names(cls, value: tuple[Resource, ...]) -> tuple[Resource, ...]:
        names = [r.name for r in value]
        if len(names) != len(set(names)):
            raise ValueError("resource names must be unique within a dataset")
        return value

    @property
    def interval(self) -> timedelta:
        return SCHEDULES[self.schedule]


def _read(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DefinitionError(f"{path.name}: not valid TOML: {exc}") from exc


def _explain(path: Path, exc: ValidationError) -> DefinitionError:
    problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}" for e in exc.errors())
    return DefinitionError(f"{path.name}: {problems}")


def load_portal(folder: Path = DATASETS_DIR) -> Portal:
    """The portal-wide settings from ``portal.toml``."""
    path = folder / PORTAL_FILE
    try:
        return Portal.model_validate(_read(path))
    except ValidationError as exc:
        raise _explain(path, exc) from exc


def load_definition(path: Path) -> Dataset:
    """One dataset definition; its ``name`` must match the file name."""
    try:
        dataset = Dataset.model_validate(_read(path))
    except ValidationError as exc:
        raise _explain(path, exc) from exc
    if dataset.name != path.stem:
        raise DefinitionError(f"{path.name}: name {dataset.name!r} differs from the file name")
    return dataset


def load_definitions(folder: Path = DATASETS_DIR, only: list[str] | None = None) -> list[Dataset]:
    """Every dataset definition in ``folder`` (sorted by name), or those named in ``only``."""
    paths = sorted(p for p in folder.glob("*.toml") if p.name != PORTAL_FILE)
    datasets = [load_definition(p) for p in paths]
    if only:
        known = {d.name for d in datasets}
        if unknown := sorted(set(only) - known):
            raise DefinitionError(f"no dataset named {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        datasets = [d for d in datasets if d.name in only]
    return datasets
