"""The NGSI-LD query language (``q``, ETSI GS CIM 009 clause 4.9) and geo-queries (clause 4.10).

``q`` is parsed into a small tree (:func:`parse_q`), then translated to SQL over the entity rows ``e``
(:func:`q_sql`) with every value a bound parameter: nothing a caller writes is spliced into SQL.
Supported: comparisons ``== != > >= < <=``, pattern ``~=`` / ``!~=``, ranges ``a..b``, value lists
``a,b,c``, attribute existence, ``;`` (and), ``|`` (or), parentheses, and the sub-attribute
``observedAt``; values are numbers, ``"strings"``, ``true``/``false`` and date-times. Anything else is
``BadRequestData``. A query is bounded in length, depth and number of terms, as the CQL2 filters are.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from cityos.ingest.ngsild.model import REGISTRY_ATTRS, VEHICLE_ATTRS
from cityos.ingest.ngsild.problems import NgsiError

MAX_Q_CHARS = 4000
MAX_DEPTH = 32
MAX_TERMS = 100
MAX_LIST = 100
MAX_PATTERN = 256
MAX_COORDINATES = 10_000

OPERATORS = ("==", "!=", ">=", "<=", ">", "<", "~=", "!~=")
SQL_OPS = {"==": "=", "!=": "<>", ">=": ">=", "<=": "<=", ">": ">", "<": "<"}
_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<punct>!~=|~=|==|!=|>=|<=|>|<|\.\.|[;|(),])
  | (?P<string>"(?:[^"\\]|\\.)*")
  | (?P<word>[A-Za-z0-9_:@#+\-/.]+?(?=\.\.|!~=|~=|==|!=|>=|<=|[><;|(),\s]|$))
""", re.VERBOSE)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(:[A-Za-z_][A-Za-z0-9_]*)?$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")


@dataclass(frozen=True)
class Term:
    """``attr[.sub] [op value]``; ``value`` is a scalar, a ``(low, high)`` range or a list."""

    attr: str
    sub: str | None
    op: str | None = None
    value: object = None
    kind: str = "scalar"  # scalar | range | list


@dataclass(frozen=True)
class Logical:
    """``;`` (and) or ``|`` (or) over two or more parts."""

    op: str
    parts: tuple


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise NgsiError("BadRequestData", f"q: cannot read {text[pos:pos + 20]!r} at position {pos}")
        pos = m.end()
        kind = m.lastgroup or ""
        if kind != "space":
            out.append((kind, m.group()))
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens, self.pos, self.terms = tokens, 0, 0

    def peek(self) -> str | None:
        return self.tokens[self.pos][1] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise NgsiError("BadRequestData", "q ends too early")
        self.pos += 1
        return self.tokens[self.pos - 1]

    def expression(self, depth: int) -> object:
        if depth > MAX_DEPTH:
            raise NgsiError("BadRequestData", f"q nests deeper than {MAX_DEPTH} levels")
        return self._joined("|", lambda: self.conjunction(depth))

    def conjunction(self, depth: int) -> object:
        return self._joined(";", lambda: self.primary(depth))

    def _joined(self, operator: str, part: Callable[[], object]) -> object:
        """One or more ``part`` joined by ``operator`` (``|`` or, binding tighter, ``;``)."""
        parts = [part()]
        while self.peek() == operator:
            self.take()
            parts.append(part())
        return parts[0] if len(parts) == 1 else Logical(operator, tuple(parts))

    def primary(self, depth: int) -> object:
        if self.peek() == "(":
            self.take()
            inner = self.expression(depth + 1)
            if self.take()[1] != ")":
                raise NgsiError("BadRequestData", "q: a parenthesis is not closed")
            return inner
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise NgsiError("BadRequestData", f"q has more than {MAX_TERMS} terms")
        kind, word = self.take()
        if kind != "word":
            raise NgsiError("BadRequestData", f"q: an attribute name was expected, not {word!r}")
        attr, sub = _path(word)
        if self.peek() not in OPERATORS:
            return Term(attr, sub)
        op = self.take()[1]
        return self.value(attr, sub, op)

    def value(self, attr: str, sub: str | None, op: str) -> Term:
        first = _scalar(self.take())
        if self.peek() == "..":
            self.take()
            if op not in ("==", "!="):
                raise NgsiError("BadRequestData", "q: a range goes with == or != only")
            return Term(attr, sub, op, (first, _scalar(self.take())), "range")
        if self.peek() == ",":
            items = [first]
            while self.peek() == ",":
                self.take()
                items.append(_scalar(self.take()))
                if len(items) > MAX_LIST:
                    raise NgsiError("BadRequestData", f"q: a value list has at most {MAX_LIST} values")
            if op not in ("==", "!="):
                raise NgsiError("BadRequestData", "q: a value list goes with == or != only")
            return Term(attr, sub, op, tuple(items), "list")
        if op in ("~=", "!~=") and (not isinstance(first, str) or len(first) > MAX_PATTERN):
            raise NgsiError("BadRequestData", f"q: a pattern is a quoted string of at most {MAX_PATTERN} characters")
        return Term(attr, sub, op, first)


def _path(word: str) -> tuple[str, str | None]:
    attr, _, sub = word.partition(".")
    if not _NAME.match(attr) or (sub and sub != "observedAt"):
        raise NgsiError("BadRequestData", f"q: {word[:80]!r} is not an attribute this server can query "
                                          "(a name, optionally with .observedAt)")
    return attr, sub or None


def _scalar(token: tuple[str, str]) -> object:
    kind, text = token
    if kind == "string":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise NgsiError("BadRequestData", f"q: bad string {text[:40]}") from exc
    if kind != "word":
        raise NgsiError("BadRequestData", f"q: a value was expected, not {text!r}")
    if text in ("true", "false"):
        return text == "true"
    if _NUMBER.match(text):
        number = float(text)
        if number in (float("inf"), float("-inf")):
            raise NgsiError("BadRequestData", "q: a number out of range")
        return number
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError as exc:
        raise NgsiError("BadRequestData", f"q: {text[:40]!r} is neither a number, a quoted string, true/false "
                                          "nor a date-time") from exc
    if moment.tzinfo is None:
        raise NgsiError("BadRequestData", "q: a date-time needs a UTC offset or Z")
    return moment


def parse_q(text: str) -> object:
    """The tree of a ``q`` query (``BadRequestData`` when it is not one this server can run)."""
    if len(text) > MAX_Q_CHARS:
        raise NgsiError("BadRequestData", f"q is longer than {MAX_Q_CHARS} characters")
    parser = _Parser(_tokens(text))
    tree = parser.expression(0)
    if parser.peek() is not None:
        raise NgsiError("BadRequestData", f"q: unexpected {parser.peek()!r}")
    return tree


class Params:
    """Named SQL parameters, each a new name."""

    def __init__(self, values: dict | None = None) -> None:
        self.values: dict = values if values is not None else {}

    def add(self, value: object) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"%({name})s"


def cast_pair(value: object) -> tuple[object, object]:
    """A range's (low, high)."""
    assert isinstance(value, tuple) and len(value) == 2
    return value[0], value[1]


def as_list(value: object) -> list[object]:
    """A value list's values."""
    assert isinstance(value, tuple)
    return list(value)


def _compare(column: str, term: Term, params: Params, kind: str) -> str:
    """SQL of ``term`` on ``column`` of type ``kind`` (number, text, time); false where types differ."""
    def fits(v: object) -> bool:
        return {"number": isinstance(v, (int, float)), "text": isinstance(v, str),
                "time": isinstance(v, datetime)}[kind]

    cast = {"number": "::float8", "text": "::text", "time": "::timestamptz"}[kind]
    if term.op in ("~=", "!~="):
        if kind != "text":
            return "false"
        negate = "not " if term.op == "!~=" else ""
        return f"({negate}{column} ~ {params.add(term.value)}::text)"
    if term.kind == "range":
        low, high = cast_pair(term.value)
        if not (fits(low) and fits(high)):
            return "false"
        inside = f"{column} between {params.add(low)}{cast} and {params.add(high)}{cast}"
        return f"({inside})" if term.op == "==" else f"(not ({inside}))"
    if term.kind == "list":
        items = [v for v in as_list(term.value) if fits(v)]
        if not items:
            return "false" if term.op == "==" else f"({column} is not null)"
        listed = f"{column} = any({params.add(items)}{cast}[])"
        return f"({listed})" if term.op == "==" else f"(not ({listed}))"
    value = term.value
    if isinstance(value, bool) and kind == "number":
        value = 1.0 if value else 0.0
    if not fits(value):
        return "false"
    return f"({column} {SQL_OPS[term.op or '==']} {params.add(value)}{cast})"


def _term_sql(term: Term, params: Params) -> str:
    if term.attr in REGISTRY_ATTRS and term.sub is None:
        column = f"e.{REGISTRY_ATTRS[term.attr]}"
        return f"({column} <> '')" if term.op is None else _compare(column, term, params, "text")
    if term.attr in VEHICLE_ATTRS:
        column = "e.pos_time" if term.sub else f"e.{VEHICLE_ATTRS[term.attr][0]}"
        if term.op is None:
            return f"({column} is not null)"
        return _compare(column, term, params, "time" if term.sub else "number")
    if term.attr == "location":
        return "(e.geom is not null)" if term.op is None and not term.sub else \
            _compare("e.geom_time", term, params, "time") if term.sub else "false"
    metric = params.add(term.attr)
    if term.op is None:
        cond = "true"
    elif term.sub:
        cond = _compare("lv.time", term, params, "time")
    elif isinstance(term.value, str) or term.op in ("~=", "!~=") or (
            term.kind != "scalar" and any(isinstance(v, str) for v in as_list(term.value))):
        cond = _compare("lv.label", term, params, "text")
    else:
        cond = _compare("lv.value", term, params, "number")
    return (f"exists (select 1 from telemetry.latest_values lv where lv.device_id = e.device_id "
            f"and lv.metric = {metric}::text and {cond})")


def q_sql(tree: object, params: Params) -> str:
    """SQL (a condition on entity rows ``e``) of a parsed ``q``."""
    if isinstance(tree, Logical):
        joiner = " and " if tree.op == ";" else " or "
        return "(" + joiner.join(q_sql(p, params) for p in tree.parts) + ")"
    assert isinstance(tree, Term)
    return _term_sql(tree, params)


# --- geo-queries --------------------------------------------------------------------------------------

GEO_TYPES = {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"}
GEORELS = {"within": "st_within(e.geom, {g})", "contains": "st_contains(e.geom, {g})",
           "intersects": "st_intersects(e.geom, {g})", "equals": "st_equals(e.geom, {g})",
           "disjoint": "st_disjoint(e.geom, {g})", "overlaps": "st_overlaps(e.geom, {g})"}


def _count_numbers(value: object, depth: int = 0) -> int:
    if depth > 4:
        raise NgsiError("BadRequestData", "coordinates nest deeper than a MultiPolygon")
    if isinstance(value, list):
        return sum(_count_numbers(v, depth + 1) for v in value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return 1
    raise NgsiError("BadRequestData", "coordinates hold numbers in arrays only")


def _position(value: object) -> None:
    if not (isinstance(value, list) and len(value) in (2, 3)
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
            and -180 <= value[0] <= 180 and -90 <= value[1] <= 90):
        raise NgsiError("BadRequestData", "a position is [longitude, latitude] in degrees")


def _line(value: object, ring: bool = False) -> None:
    if not isinstance(value, list) or len(value) < (4 if ring else 2):
        raise NgsiError("BadRequestData", "a line has at least 2 positions, a polygon's ring at least 4")
    for position in value:
        _position(position)
    if ring and value[0] != value[-1]:
        raise NgsiError("BadRequestData", "a polygon's ring ends where it starts")


def _polygon(value: object) -> None:
    if not isinstance(value, list) or not value:
        raise NgsiError("BadRequestData", "a polygon is a list of rings")
    for ring in value:
        _line(ring, ring=True)


def _check_shape(geometry: str, coordinates: object) -> None:
    """The coordinates fit the geometry type (GeoJSON, RFC 7946)."""
    def each(check) -> None:
        if not isinstance(coordinates, list) or not coordinates:
            raise NgsiError("BadRequestData", f"a {geometry} is a non-empty list")
        for part in coordinates:
            check(part)

    {"Point": lambda: _position(coordinates), "LineString": lambda: _line(coordinates),
     "Polygon": lambda: _polygon(coordinates), "MultiPoint": lambda: each(_position),
     "MultiLineString": lambda: each(_line), "MultiPolygon": lambda: each(_polygon)}[geometry]()


def geometry_json(geometry: str, coordinates: object) -> str:
    """The GeoJSON geometry of a geo-query (``BadRequestData`` when it is malformed or too large)."""
    if geometry not in GEO_TYPES:
        raise NgsiError("BadRequestData", f"geometry must be one of {', '.join(sorted(GEO_TYPES))}")
    if isinstance(coordinates, str):
        try:
            coordinates = json.loads(coordinates if coordinates.startswith("[") else f"[{coordinates}]")
        except ValueError as exc:
            raise NgsiError("BadRequestData", "coordinates must be a JSON array") from exc
    if not isinstance(coordinates, list) or _count_numbers(coordinates) > MAX_COORDINATES:
        raise NgsiError("BadRequestData", f"coordinates: a JSON array of at most {MAX_COORDINATES} numbers")
    _check_shape(geometry, coordinates)
    return json.dumps({"type": geometry, "coordinates": coordinates})


def geo_sql(georel: str, geometry: str, coordinates: object, params: Params,
            geoproperty: str = "location") -> str:
    """SQL (a condition on ``e``) of a geo-query on the entities' ``location``."""
    if geoproperty != "location":
        raise NgsiError("BadRequestData", "geoproperty: entities here have one GeoProperty, location")
    shape = f"st_setsrid(st_geomfromgeojson({params.add(geometry_json(geometry, coordinates))}::text), 4326)"
    name, _, modifier = georel.partition(";")
    if name == "near":
        m = re.fullmatch(r"(maxDistance|minDistance)==(\d+(\.\d+)?)", modifier)
        if not m:
            raise NgsiError("BadRequestData", "georel near needs ;maxDistance==<metres> or ;minDistance==<metres>")
        distance = f"st_distance(e.geom::geography, {shape}::geography)"
        op = "<=" if m.group(1) == "maxDistance" else ">="
        return f"(e.geom is not null and {distance} {op} {params.add(float(m.group(2)))}::float8)"
    if name not in GEORELS or modifier:
        raise NgsiError("BadRequestData", f"georel must be near;maxDistance==<m>, near;minDistance==<m> or one of "
                                          f"{', '.join(sorted(GEORELS))}")
    return f"(e.geom is not null and {GEORELS[name].format(g=shape)})"
