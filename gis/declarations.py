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
typed parameters, and whether it is a CLI command, an API route, an export and a dataset builder. From it
come the ``cityos gis`` command, the ``/api/v1/gis/...`` route, the export, the open-data builder, their exits
and the CLI command's audit declaration (:mod:`cityos.platform.audit`).

Modules are found by listing the two folders: adding a file is the whole change.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any, Literal
from zoneinfo import ZoneInfo

from cityos.platform.exits import NON_PERSONAL, Use

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


@dataclass(frozen=True)
class Param:
    """A typed parameter of an analysis: a CLI option ``--name`` and an API query parameter ``name``."""

    name: str
    type: type
    default: Any
    help: str
    ge: float | None = None
    le: float | None = None


@dataclass(frozen=True)
class Context:
    """What an analysis may use besides the database: the smallest published count, the time, the city's zone
    and the parameters (checked against their declarations)."""

    k: int
    now: datetime
    zone: ZoneInfo
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Analysis:
    """An analysis and every way it leaves the platform.

    ``run(conn, ctx)`` returns a data frame: one row per district with a ``district_code`` column
    (``geometry="district"``: the export joins the district outlines) or rows with a shapely ``geometry``
    column (``geometry="own"``). ``use`` is its exit basis; a run from the command line needs no audit row for
    the reason ``not_audited``. ``dataset`` registers an open-data builder of the same name."""

    id: str
    title: str
    title_ja: str
    run: Callable[[Any, Context], Any]
    not_audited: str
    params: tuple[Param, ...] = ()
    use: Use = NON_PERSONAL
    geometry: Literal["district", "own"] = "district"
    cli: bool = True
    api: bool = True
    export: bool = True
    dataset: bool = False
    max_age: int = 300

    def __post_init__(self) -> None:
        if self.use.basis not in ("non_personal",):
            # registry aggregates go through the disclosure step (cityos.gis.statistics) and consent exits
            # through consent_filter: both are wired by hand until the declaration carries those steps
            raise ValueError(f"analysis {self.id}: only non-personal analyses are declared this way so far")

    @property
    def command(self) -> str:
        return self.id.replace("_", "-")

    @property
    def path(self) -> str:
        return f"/api/v1/gis/{self.command}"

    def signature(self, default: Callable[[Param], Any], leading: tuple[inspect.Parameter, ...] = (),
                  returns: Any = None) -> inspect.Signature:
        """A function signature with one keyword parameter per declared parameter, ``default(param)`` its
        default (a ``typer.Option`` or a FastAPI ``Query``), after the ``leading`` ones: how the CLI command
        and the API route get their typed parameters."""
        mine = [inspect.Parameter(p.name, inspect.Parameter.KEYWORD_ONLY, annotation=p.type | None,
                                  default=default(p)) for p in self.params]
        return inspect.Signature([*leading, *mine], return_annotation=returns)

    def describe(self, command: Any) -> None:
        """Name and document ``command`` (a CLI command or an API route) after this analysis."""
        command.__doc__ = f"{self.title} / {self.title_ja} ({self.use.describe()})."
        command.__name__ = self.id

    def context(self, k: int, zone: ZoneInfo, now: datetime | None = None, **given: Any) -> Context:
        """A context with every parameter: the given ones (checked) and the defaults of the rest."""
        from datetime import UTC

        params: dict[str, Any] = {}
        for p in self.params:
            value = given.pop(p.name, None)
            value = p.default if value is None else p.type(value)
            if value is not None and ((p.ge is not None and value < p.ge) or (p.le is not None and value > p.le)):
                raise ValueError(f"{p.name} must lie between {p.ge} and {p.le}, not {value}")
            params[p.name] = value
        if given:
            raise ValueError(f"unknown parameters {', '.join(sorted(given))} of {self.id}")
        return Context(k, now or datetime.now(UTC), zone, params)


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
    clash = set(result) & set(layers())
    if clash:
        raise ValueError(f"an analysis and a layer share the export name {', '.join(clash)}")
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
    for a in declared_analyses.values():
        if a.api:
            entries[f"api:GET {a.path}"] = a.use
        if a.export:
            entries[f"export:{a.id}"] = a.use
        if a.dataset:
            entries[f"dataset:{a.id}"] = a.use
        if a.cli:
            entries[f"cli:gis {a.command}"] = a.use
            reasons[f"cli:gis {a.command}"] = a.not_audited
    exits.declare(entries)
    audit.declare_not_audited(reasons)


def ensure_declared() -> None:
    """Load both registries (so that their exits are declared); for the platform's lazy lookup."""
    layers()
    analyses()
