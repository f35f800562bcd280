"""The query options of a SensorThings request (``$filter``, ``$expand``, ``$select``, ``$orderby``, ``$top``,
``$skip``, ``$count``), read into a tree of :class:`Options` checked against the entity sets.

Anything this service does not offer is a :class:`~cityos.sta.filter.QueryError` naming it (an HTTP 400).
``$expand`` nests its own options in parentheses, separated by ``;``; its depth and the whole text are bounded
like a filter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from odata_query import ast

from cityos.gis.filters import MAX_FILTER_CHARS
from cityos.sta.entities import ENTITY_SETS, EntitySet
from cityos.sta.filter import QueryError, parse

DEFAULT_TOP = 100
MAX_TOP = 10_000
MAX_SKIP = 10_000_000
#: Deepest ``$expand`` (``Datastreams/Observations`` counts two).
MAX_EXPAND_DEPTH = 4
#: Most entities named in one ``$expand`` tree.
MAX_EXPANDS = 16
KNOWN = {"$filter", "$expand", "$select", "$orderby", "$top", "$skip", "$count"}
#: Options a client may send that change nothing here.
IGNORED = {"$format"}
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{0,63}")
#: The JSON names a client may use for a property in ``$select`` and ``$orderby`` (``@iot.id`` is how the
#: id is written in every answer; FROST-Server and clients written against it, such as stapy, select by it).
_ALIASES = {"@iot.id": "id"}


@dataclass
class Expand:
    """One navigation property to expand, with its own options."""

    name: str
    options: Options


@dataclass
class Options:
    """The checked query options of one entity set (top level or inside ``$expand``)."""

    entity: EntitySet
    filter: ast._Node | None = None
    filter_text: str = ""
    select: list[str] | None = None
    orderby: list[tuple[str, str]] = field(default_factory=list)
    top: int = DEFAULT_TOP
    skip: int = 0
    count: bool = False
    expand: list[Expand] = field(default_factory=list)


def _int(name: str, text: str, high: int) -> int:
    text = text.strip(" ")
    if not re.fullmatch(r"[0-9]{1,9}", text):
        raise QueryError(f"{name} must be a whole number from 0 to {high}")
    value = int(text)
    if value > high:
        raise QueryError(f"{name} must be at most {high}")
    return value


def split_top(text: str, sep: str) -> list[str]:
    """Split at ``sep`` outside parentheses and quoted strings."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, char in enumerate(text):
        if char == "'":
            quoted = not quoted
        elif quoted:
            continue
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise QueryError("unbalanced parentheses")
        elif char == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth or quoted:
        raise QueryError("unbalanced parentheses or quotes")
    parts.append(text[start:])
    return [p.strip() for p in parts]


def parse_options(entity: EntitySet, raw: dict[str, str], *, depth: int = 0, budget: list[int] | None = None,
                  nested: bool = False) -> Options:
    """The :class:`Options` of ``entity`` from the query parameters ``raw`` (name -> text)."""
    budget = budget if budget is not None else [MAX_EXPANDS]
    if sum(len(v) for v in raw.values()) > MAX_FILTER_CHARS:
        raise QueryError(f"the query options are longer than {MAX_FILTER_CHARS} characters")
    for name in raw:
        if name.startswith("$") and name not in KNOWN and name not in IGNORED:
            raise QueryError(f"the query option {name[:40]} is not supported")
    options = Options(entity)
    if "$top" in raw:
        options.top = _int("$top", raw["$top"], MAX_TOP)
    if "$skip" in raw:
        options.skip = _int("$skip", raw["$skip"], MAX_SKIP)
    if "$count" in raw:
        if raw["$count"] not in ("true", "false"):
            raise QueryError("$count must be true or false")
        options.count = raw["$count"] == "true"
    if raw.get("$filter", "").strip():
        options.filter_text = raw["$filter"]
        options.filter = parse(raw["$filter"])
    if "$select" in raw:
        options.select = _select(entity, raw["$select"])
    if "$orderby" in raw:
        options.orderby = _orderby(entity, raw["$orderby"])
    if raw.get("$expand", "").strip():
        options.expand = _expand(entity, raw["$expand"], depth, budget)
    return options


def _select(entity: EntitySet, text: str) -> list[str]:
    names = [_ALIASES.get(n, n) for n in split_top(text, ",") if n]
    if not names:
        raise QueryError("$select names no property")
    for name in names:
        if name not in entity.props and name not in entity.relations:
            raise QueryError(f"{entity.name} has no property {name[:60]!r} to select")
    return names


def _orderby(entity: EntitySet, text: str) -> list[tuple[str, str]]:
    order = []
    for item in split_top(text, ","):
        words = item.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise QueryError(f"$orderby takes 'property [asc|desc]', not {item[:60]!r}")
        name = _ALIASES.get(words[0], words[0])
        prop = entity.props.get(name)
        if prop is None or prop.kind in ("json", "unit", "geojson"):
            raise QueryError(f"{entity.name} cannot be ordered by {words[0][:60]!r}")
        order.append((name, words[1].lower() if len(words) == 2 else "asc"))
    return order


def _expand(entity: EntitySet, text: str, depth: int, budget: list[int]) -> list[Expand]:
    expands: list[Expand] = []
    for item in split_top(text, ","):
        if not item:
            raise QueryError("$expand has an empty item")
        head, _, rest = item.partition("(")
        path = head.strip().split("/")
        inner = rest[:-1] if rest else ""
        if rest and not rest.endswith(")"):
            raise QueryError(f"cannot read the $expand item {item[:60]!r}")
        raw: dict[str, str] = {}
        for opt in split_top(inner, ";") if inner.strip() else []:
            name, eq, value = opt.partition("=")
            if not eq:
                raise QueryError(f"an option inside $expand is name=value, not {opt[:60]!r}")
            raw[name.strip()] = value
        current = entity
        chain: list[str] = []
        for name in path:
            if depth + len(chain) >= MAX_EXPAND_DEPTH:
                raise QueryError(f"$expand nests deeper than {MAX_EXPAND_DEPTH} levels")
            if not _NAME.fullmatch(name) or name not in current.relations:
                raise QueryError(f"{current.name} has no navigation property {name[:60]!r}")
            budget[0] -= 1
            if budget[0] < 0:
                raise QueryError(f"$expand names more than {MAX_EXPANDS} entities")
            chain.append(name)
            current = ENTITY_SETS[current.relations[name].target]
        # a/b(opts) is a(expand b(opts)): build from the innermost out
        options = parse_options(current, raw, depth=depth + len(chain), budget=budget, nested=True)
        for name, owner in zip(reversed(chain[1:]), reversed(_owners(entity, chain)[1:]), strict=True):
            options = Options(owner, expand=[Expand(name, options)])
        _merge(expands, Expand(chain[0], options))
    return expands


def _owners(entity: EntitySet, chain: list[str]) -> list[EntitySet]:
    owners, current = [], entity
    for name in chain:
        owners.append(current)
        current = ENTITY_SETS[current.relations[name].target]
    return owners


def _merge(expands: list[Expand], new: Expand) -> None:
    """``Datastreams,Datastreams/Sensor`` expands Datastreams once, with Sensor inside."""
    for old in expands:
        if old.name == new.name:
            old.options.expand += new.options.expand
            return
    expands.append(new)
