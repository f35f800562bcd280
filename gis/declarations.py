"""One declaration per GIS layer and per analysis; everything else about them is derived from it.

A **layer** is one file in ``gis/layers/`` holding ``LAYER = Layer(...)``: its table and columns (name,
PostgreSQL type, the names files use for it), how files are read into it, its OGC collection, whether it
is exported, how the demo city makes it and how the staff map draws it. From the declarations come the
loaders (:mod:`cityos.gis.loaders.run`, ``cityos gis load`` choices), the OGC collections
(:mod:`cityos.gis.collections`), the exports (:mod:`cityos.gis.exports`), the demo city's storage
(:func:`cityos.gis.democity.load_city`), the staff map's layer list (:mod:`cityos.gis.app_data`), the exits
(``ogc:`` and ``export:`` in :mod:`cityos.platform.exits`) and, for a layer without a migration, its table
(:mod:`cityos.gis.schema`, run after the migrations).

An **analysis** is one file in ``gis/analyses/declared/`` holding ``ANALYSIS = Analysis(...)``: its function,
typed parameters, and whether it is a CLI command, an API route, an export and an open dataset (:class:`OpenData`:
the builder's name, its shape through the ``dataset`` view). From it come the ``cityos gis`` command, the
``/api/v1/gis/...`` route, the export, the open-data builder (:mod:`cityos.opendata.builders`), their exits and
the CLI command's audit declaration (:mod:`cityos.platform.audit`).

Modules are found by listing the two folders: adding a file is the whole change.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from typing import Any, Literal
from zoneinfo import ZoneInfo

from cityos.platform.audit import Access
from cityos.platform.exits import NON_PERSONAL, STAFF, Use

Geometry = Literal["Point", "LineString", "MultiPolygon"]


@dataclass(frozen=True)
class Column:
    """A column of a layer's table (besides ``geom``).

    ``type`` is the PostgreSQL type as ``format_type`` prints it (``text``, ``integer``, ``double precision``,
    ``jsonb``, ``timestamp with time zone``); ``source`` the header names files use for it (besides its own
    name and the synonym table :mod:`cityos.gis.loaders.columns`); ``published`` whether the OGC collection and
    the export show it; ``optional`` whether a file may lack it (left empty)."""

    name: str
    type: str = "text"
    source: tuple[str, ...] = ()
    published: bool = True
    optional: bool = False
    not_null: bool = False


@dataclass(frozen=True)
class Style:
    """How the staff map draws a layer: a MapLibre layer type, its colour and its legend text."""

    kind: Literal["circle", "line", "fill"]
    color: str
    ja: str
    en: str


Reader = Callable[..., tuple[Any, Any]]


@dataclass(frozen=True)
class Layer:
    """A city layer: where it is stored, how it is loaded, served, exported, generated and drawn.

    ``reader(path, boundary, source_layer, code)`` reads a file of a layout the generic reader cannot (the
    generic one takes point tables with latitude/longitude and any OGR vector file); ``store(conn, frame,
    source)`` stores a layer that is not replaced row for row. ``migration`` names the migration that
    creates the table; a layer without one has its table created from this declaration. ``demo(city)`` gives
    the demo city's rows (WGS84) from the other generated layers."""

    id: str
    table: str
    title: str
    title_ja: str
    columns: tuple[Column, ...]
    key: str
    geometry: Geometry | None = "Point"
    migration: str | None = None
    ogc: bool = True
    export: bool = True
    loadable: bool = True
    datetime_column: str | None = None
    reader: Reader | None = None
    store: Callable[..., int] | None = None
    demo: Callable[[Any], Any] | None = None
    style: Style | None = None
    apps: bool = False
    order: int = 100

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if self.key not in names:
            raise ValueError(f"layer {self.id}: key {self.key!r} is not one of its columns")
        if len(set(names)) != len(names):
            raise ValueError(f"layer {self.id}: a column is declared twice")
        if (self.ogc or self.export) and self.geometry is None:
            raise ValueError(f"layer {self.id}: a collection or an export needs a geometry")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def properties(self) -> tuple[str, ...]:
        """The columns the OGC collection and the export show."""
        return tuple(c.name for c in self.columns if c.published)


Channel = Literal["cli", "api", "export", "dataset"]
CHANNELS: tuple[Channel, ...] = ("cli", "api", "export", "dataset")


@dataclass(frozen=True)
class Param:
    """A typed parameter of an analysis: a CLI option ``--name`` and an API query parameter ``name``.

    ``channels`` are the exits that take it (the others run with its default); ``keyless_max`` names a setting
    that bounds it for API callers without an API key (a costly parameter such as a permutation count)."""

    name: str
    type: type
    default: Any
    help: str
    ge: float | None = None
    le: float | None = None
    channels: tuple[Channel, ...] = CHANNELS
    keyless_max: str | None = None


@dataclass(frozen=True)
class Context:
    """What an analysis may use besides the database: the smallest published count, the time, the city's zone,
    the parameters (checked against their declarations), the exit it runs for (``exit``: the name a consent
    filter is asked with, :func:`cityos.platform.exits.consent_filter`) and, for a registry aggregate, the day
    of its figures and whether they are the staff's exact ones."""

    k: int
    now: datetime
    zone: ZoneInfo
    params: dict[str, Any] = field(default_factory=dict)
    channel: Channel = "api"
    exit: str = ""
    as_of: date | None = None
    exact: bool = False

    def statistics(self, conn: Any) -> Any:
        """The registry's figures of :attr:`as_of`: protected together with every other published figure of
        that date (:mod:`cityos.gis.statistics`), or exact for the staff route."""
        from cityos.gis.statistics import exact_statistics, published_statistics

        if self.as_of is None:
            raise ValueError("registry figures need a reference date")
        return exact_statistics(conn, self.as_of) if self.exact else published_statistics(conn, self.as_of, self.k)


#: A channel's view of a result: ``view(result, ctx)`` (a filter, a choice of columns).
View = Callable[[Any, Context], Any]


@dataclass(frozen=True)
class OpenData:
    """How an analysis is published as an open dataset: the builder that dataset definitions name
    (``[source] builder``, ``opendata/datasets/*.toml``) and what the builder does besides running the analysis
    for the ``dataset`` channel (its view, ``views["dataset"]``, gives the rows' shape; the analysis sees
    ``ctx.channel == "dataset"`` when the dataset needs other inputs).

    ``reads``: the raw telemetry tables the analysis reads (late readings there make its datasets due again);
    ``geometry``: the rows keep their ``geometry`` column (GeoJSON resources draw it; else it is dropped and
    they draw points from ``lat``/``lon``); ``city``: the rows start with the city's ``city_code`` and
    ``city_name`` (the portal's, as the standard formats of 自治体標準オープンデータセット ask)."""

    builder: str
    reads: tuple[str, ...] = ()
    geometry: bool = False
    city: bool = False


@dataclass(frozen=True)
class Analysis:
    """An analysis and every way it leaves the platform, with the steps its exits take.

    ``run(conn, ctx)`` returns a data frame or a list of row dicts: one row per district with a
    ``district_code`` column (``geometry="district"``: the export joins the district outlines) or rows with a
    ``geometry`` column (``geometry="own"``: GeoJSON mappings or shapely geometries). ``use`` is its exit basis:
    a ``consent`` analysis selects its contributors with ``consent_filter(ctx.exit, ...)``, so each exit asks
    for its own purpose. The disclosure and consent steps are declared here, not wired by hand:

    - ``reference_date``: a registry aggregate; the CLI and the API take ``as_of`` (a published reference date,
      checked), the export and the dataset the latest one, and ``ctx.statistics(conn)`` gives the protected
      figures (small counts suppressed together with every other figure of the date). ``staff_exact``: the
      reason of a staff route ``/registry/<command>`` with the exact figures of any day (scope ``registry:read``,
      audited, never cached).
    - ``k_option``: the command takes ``--k`` (a larger smallest count than ``CITYOS_K_ANONYMITY``).
    - ``scope`` and ``access``: personal data for staff; the route needs the scope, both the route and the
      command are audited with ``access`` (:mod:`cityos.platform.audit`); otherwise ``not_audited`` says why the
      command needs no audit row.
    - ``views``: what each channel shows of the result (``{"cli": only_hot_cells}``).
    - ``cli_output``: CSV or JSON lines; ``api_output``: rows as JSON/CSV or a GeoJSON FeatureCollection
      (``feature_id``: the column that gives each feature its id). ``columns``: the result's columns when it
      has no rows (for the export's join).
    - ``dataset``: an open-data builder (:class:`OpenData`); ``True`` is one named after the analysis with
      the result as it is (no geometry).
    """

    id: str
    title: str
    title_ja: str
    run: Callable[[Any, Context], Any]
    not_audited: str | None = None
    params: tuple[Param, ...] = ()
    use: Use = NON_PERSONAL
    about: str = ""
    geometry: Literal["district", "own"] = "district"
    cli: bool = True
    api: bool = True
    export: bool = True
    dataset: bool | OpenData = False
    max_age: int = 300
    reference_date: bool = False
    staff_exact: str | None = None
    k_option: bool = False
    scope: str | None = None
    access: Access | None = None
    views: dict[Channel, View] = field(default_factory=dict)
    cli_output: Literal["csv", "jsonl"] = "csv"
    api_output: Literal["table", "geojson"] = "table"
    feature_id: str | None = None
    columns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.access is None) == (self.not_audited is None):
            raise ValueError(f"analysis {self.id}: say how it is audited (access) or why it needs no row "
                             "(not_audited), not both")
        if self.use.basis == "staff" and (self.scope is None or self.access is None):
            raise ValueError(f"analysis {self.id}: staff data needs a scope and an audited access")
        if self.use.basis == "statutory" and not self.reference_date:
            raise ValueError(f"analysis {self.id}: registry aggregates are published for reference dates only")
        if self.use.basis == "per_item":
            raise ValueError(f"analysis {self.id}: an analysis is one exit per channel")
        if self.staff_exact and not self.reference_date:
            raise ValueError(f"analysis {self.id}: exact figures are those of a registry aggregate")

    @property
    def open_data(self) -> OpenData | None:
        """Its open dataset (``dataset=True``: a builder named after the analysis), None when it has none."""
        if isinstance(self.dataset, OpenData):
            return self.dataset
        return OpenData(self.id) if self.dataset else None

    @property
    def command(self) -> str:
        return self.id.replace("_", "-")

    @property
    def path(self) -> str:
        return f"/api/v1/gis/{self.command}"

    @property
    def staff_path(self) -> str:
        """The staff route with the exact figures (when ``staff_exact``)."""
        return f"/api/v1/gis/registry/{self.command}"

    def exit_of(self, channel: Channel) -> str:
        """The exit name of ``channel`` (:mod:`cityos.platform.exits`)."""
        if channel == "dataset":
            return f"dataset:{self.open_data.builder if self.open_data else self.id}"
        return {"cli": f"cli:gis {self.command}", "api": f"api:GET {self.path}", "export": f"export:{self.id}"}[channel]

    def params_of(self, channel: Channel) -> tuple[Param, ...]:
        return tuple(p for p in self.params if channel in p.channels)

    def signature(self, default: Callable[[Param], Any], leading: tuple[inspect.Parameter, ...] = (),
                  returns: Any = None, channel: Channel = "api") -> inspect.Signature:
        """A function signature with one keyword parameter per declared parameter of ``channel``,
        ``default(param)`` its default (a ``typer.Option`` or a FastAPI ``Query``), after the ``leading`` ones:
        how the CLI command and the API route get their typed parameters."""
        mine = [inspect.Parameter(p.name, inspect.Parameter.KEYWORD_ONLY, annotation=p.type | None,
                                  default=default(p)) for p in self.params_of(channel)]
        return inspect.Signature([*leading, *mine], return_annotation=returns)

    def describe(self, command: Any) -> None:
        """Name and document ``command`` (a CLI command or an API route) after this analysis."""
        about = f" {self.about}" if self.about else ""
        command.__doc__ = f"{self.title} / {self.title_ja} ({self.use.describe()}).{about}"
        command.__name__ = self.id

    def view(self, channel: Channel, result: Any, ctx: Context) -> Any:
        """What ``channel`` shows of ``result``."""
        view = self.views.get(channel)
        return result if view is None else view(result, ctx)

    def context(self, k: int, zone: ZoneInfo, now: datetime | None = None, *, channel: Channel = "api",
                as_of: date | None = None, exact: bool = False, **given: Any) -> Context:
        """A context for ``channel`` with every parameter: the given ones (checked) and the defaults of the rest."""
        from datetime import UTC

        params: dict[str, Any] = {}
        for p in self.params_of(channel):
            value = given.pop(p.name, None)
            value = p.default if value is None else p.type(value)
            if value is not None and ((p.ge is not None and value < p.ge) or (p.le is not None and value > p.le)):
                raise ValueError(f"{p.name} must lie between {p.ge} and {p.le}, not {value}")
            params[p.name] = value
        if given:
            raise ValueError(f"unknown parameters {', '.join(sorted(given))} of {self.id}")
        return Context(k, now or datetime.now(UTC), zone, params, channel, self.exit_of(channel), as_of, exact)


def registry_aggregate(**declared: Any) -> dict[str, Any]:
    """The declaration of a registry aggregate (``Analysis(..., **registry_aggregate(staff_exact=...))``): statutory,
    for reference dates with small counts suppressed, ``--k`` on the command line, cached an hour."""
    from cityos.platform.exits import STATUTORY

    return {"not_audited": "aggregates, below k suppressed", "use": STATUTORY, "reference_date": True,
            "k_option": True, "max_age": 3600, **declared}


def records(result: Any) -> list[dict]:
    """A result's rows as dicts (a data frame's missing values as None)."""
    if isinstance(result, list):
        return result
    return [{k: (None if v is None or v != v else v) for k, v in row.items()} for row in
            result.astype(object).to_dict(orient="records")]


def _discover(package: str, attribute: str) -> list[Any]:
    module = importlib.import_module(package)
    found = []
    for info in sorted(pkgutil.iter_modules(module.__path__), key=lambda i: i.name):
        declared = getattr(importlib.import_module(f"{package}.{info.name}"), attribute, None)
        if declared is not None:
            found.append(declared)
    return found


@cache
def layers() -> dict[str, Layer]:
    """Every declared layer by id (files of ``gis/layers/``), in their display order."""
    found = sorted(_discover("cityos.gis.layers", "LAYER"), key=lambda layer: (layer.order, layer.id))
    result = {layer.id: layer for layer in found}
    if len(result) != len(found):
        raise ValueError("two layer files declare the same id")
    _declare_exits(result, {})
    return result


@cache
def analyses() -> dict[str, Analysis]:
    """Every declared analysis by id (files of ``gis/analyses/declared/``)."""
    found = _discover("cityos.gis.analyses.declared", "ANALYSIS")
    result = {a.id: a for a in found}
    if len(result) != len(found):
        raise ValueError("two analysis files declare the same id")
    clash = {a.id for a in found if a.export} & {layer.id for layer in layers().values() if layer.export}
    if clash:
        raise ValueError(f"an analysis and a layer share the export name {', '.join(clash)}")
    datasets = [a.open_data.builder for a in found if a.open_data]
    if len(set(datasets)) != len(datasets):
        raise ValueError("two analyses name the same dataset builder")
    _declare_exits({}, result)
    return result


def _declare_exits(declared_layers: dict[str, Layer], declared_analyses: dict[str, Analysis]) -> None:
    """The exits and audit declarations the registry implies, handed to the platform's registries."""
    from cityos.platform import audit, exits

    entries: dict[str, Use] = {}
    for layer in declared_layers.values():
        if layer.ogc:
            entries[f"ogc:{layer.id}"] = NON_PERSONAL
        if layer.export:
            entries[f"export:{layer.id}"] = NON_PERSONAL
    reasons: dict[str, str] = {}
    personal: dict[str, Access] = {}
    for a in declared_analyses.values():
        channels = [c for c in CHANNELS if getattr(a, c)]
        entries.update({a.exit_of(c): a.use for c in channels})
        if a.staff_exact:
            entries[f"api:GET {a.staff_path}"] = STAFF
            personal[f"api:GET {a.staff_path}"] = Access("registry counts", "all residents", a.staff_exact)
        for c in ("cli", "api"):
            if getattr(a, c) and a.access is not None:
                personal[a.exit_of(c)] = a.access
        if a.cli and a.not_audited is not None:
            reasons[a.exit_of("cli")] = a.not_audited
    exits.declare(entries)
    audit.declare_personal(personal)
    audit.declare_not_audited(reasons)


def ensure_declared() -> None:
    """Load both registries (so that their exits are declared); for the platform's lazy lookup."""
    layers()
    analyses()
