"""CQL2 filters of OGC API Features (Part 3) as SQL conditions over one collection.

The ``cql2`` library parses CQL2 text and JSON (with the standard's operator precedence) into
CQL2-JSON; this module translates that tree into a parameterised SQL condition. It does not use the
library's own SQL output: that passes any function name through to the database and leaves
geometries without an SRID. Here only the collection's queryable properties, literal values and the
operators listed in :data:`CONFORMANCE` are accepted; anything else is a :class:`FilterError`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime

import cql2

#: The conformance classes this translator implements (with /conf/filter and /conf/features-filter).
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/case-insensitive-comparison",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/spatial-functions",
]

COMPARISONS = {"=": "=", "<>": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}
SPATIAL = {"s_intersects": "st_intersects", "s_within": "st_within", "s_contains": "st_contains",
           "s_disjoint": "st_disjoint", "s_equals": "st_equals", "s_touches": "st_touches",
           "s_crosses": "st_crosses", "s_overlaps": "st_overlaps"}
GEOMETRY_TYPES = {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon",
                  "GeometryCollection"}
MAX_FILTER_CHARS = 20_000
#: Deepest nesting of parentheses and prefix operators (NOT, unary minus) a text filter may have. The
#: ``cql2`` parser recurses once per level and overflows its stack (a segfault, not an error) somewhere
#: above a thousand, so depth is counted here, without the library, before it sees the text.
MAX_FILTER_DEPTH = 32
#: The same bound for CQL2-JSON, counted in objects and arrays (each operator takes two: ``{"args": [``),
#: with room for the deepest geometry literal (a MultiPolygon's coordinates).
MAX_JSON_DEPTH = 2 * MAX_FILTER_DEPTH + 8


class FilterError(ValueError):
    """The filter cannot be read or uses something this API does not offer (an HTTP 400)."""


@dataclass
class Condition:
    """A SQL condition with ``%(name)s`` placeholders and their values."""

    sql: str
    params: dict[str, object] = field(default_factory=dict)


def parse_filter(text: str, lang: str = "cql2-text") -> dict | bool:
    """The CQL2-JSON tree of ``text`` written in ``lang`` (``cql2-text`` or ``cql2-json``)."""
    if len(text) > MAX_FILTER_CHARS:
        raise FilterError(f"the filter is longer than {MAX_FILTER_CHARS} characters")
    if lang == "cql2-json" and json_depth(text) > MAX_JSON_DEPTH:
        raise FilterError(f"the filter nests objects and arrays deeper than {MAX_JSON_DEPTH} levels")
    if lang == "cql2-text" and text_depth(text) > MAX_FILTER_DEPTH:
        raise FilterError(f"the filter nests deeper than {MAX_FILTER_DEPTH} levels (parentheses and NOT)")
    try:
        if lang == "cql2-text":
            expr = cql2.parse_text(text)
        elif lang == "cql2-json":
            expr = cql2.parse_json(text)
        else:
            raise FilterError(f"filter-lang must be cql2-text or cql2-json, not {lang[:40]!r}")
    except (cql2.ParseError, cql2.ValidationError, ValueError) as exc:
        if isinstance(exc, FilterError):
            raise
        raise FilterError(f"cannot read the {lang} filter: {str(exc).strip()[:500]}") from None
    return expr.to_json()


_TEXT_TOKENS = re.compile(r"""
    '(?:[^']|'')*'?            # a string literal (unterminated at the end: the parser reports it)
  | "(?:[^"]|"")*"?            # a quoted identifier
  | -?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?  # a number, its sign attached (WKT coordinates)
  | [A-Za-z_][\w:.]*            # a word: a keyword or a property
  | \S                          # one other character: parentheses, operators, a detached minus
""", re.VERBOSE)


def text_depth(text: str) -> int:
    """How deep a CQL2 text nests: parentheses and brackets, each with the prefix operators (``NOT``,
    a detached ``-``) before it, plus a run of prefix operators before an operand. An upper bound of
    the parse tree's depth, counted without parsing."""
    stack: list[int] = []  # what each open parenthesis adds: itself and the prefix operators before it
    depth = deepest = pending = 0
    for match in _TEXT_TOKENS.finditer(text):
        token = match.group()
        if token in ("(", "["):
            stack.append(pending + 1)
            depth += pending + 1
            pending = 0
        elif token in (")", "]"):
            depth -= stack.pop() if stack else 0
            pending = 0
        elif token == "-" or token.upper() == "NOT":
            pending += 1
        else:
            pending = 0
        deepest = max(deepest, depth + pending)
    return deepest


def json_depth(text: str) -> int:
    """How deep JSON ``text`` nests objects and arrays (outside strings), counted without parsing it."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "}]":
            depth -= 1
    return deepest


class _Translator:
    def __init__(self, queryables: set[str], geometry_column: str) -> None:
        self.queryables = queryables
        self.geometry_column = geometry_column
        self.params: dict[str, object] = {}

    def param(self, value: object) -> str:
        name = f"cql{len(self.params)}"
        self.params[name] = value
        return f"%({name})s"

    def condition(self, node: object) -> str:
        if node is True or node is False:
            return "true" if node else "false"
        if not isinstance(node, dict) or "op" not in node:
            raise FilterError("a filter must be a condition (a comparison, a spatial test, and/or/not)")
        op, args = str(node["op"]).lower(), node.get("args", [])
        if op in ("and", "or"):
            return "(" + f" {op} ".join(self.condition(a) for a in args) + ")"
        if op == "not":
            return f"(not {self.condition(args[0])})"
        if op in COMPARISONS:
            left, right = args
            return f"({self.scalar(left)} {COMPARISONS[op]} {self.scalar(right)})"
        if op == "like":
            return f"({self.scalar(args[0])} like {self.scalar(args[1])})"
        if op == "between":
            return f"({self.scalar(args[0])} between {self.scalar(args[1])} and {self.scalar(args[2])})"
        if op == "in":
            values = args[1]
            if not isinstance(values, list) or not values:
                raise FilterError("IN needs a non-empty list of values")
            return f"({self.scalar(args[0])} in ({', '.join(self.scalar(v) for v in values)}))"
        if op == "isnull":
            return f"({self.scalar(args[0])} is null)"
        if op in SPATIAL:
            return f"{SPATIAL[op]}({self.spatial(args[0])}, {self.spatial(args[1])})"
        raise FilterError(f"the operator {op[:40]!r} is not offered (see /ogc/conformance)")

    def property(self, node: dict) -> str:
        name = node["property"]
        if name not in self.queryables:
            raise FilterError(f"{str(name)[:64]!r} is not a queryable of this collection (see its /queryables)")
        return name

    def scalar(self, node: object) -> str:
        if isinstance(node, dict):
            if "property" in node:
                name = self.property(node)
                if name == self.geometry_column:
                    raise FilterError(f"{name} is a geometry: use a spatial function such as S_INTERSECTS")
                return name
            if "timestamp" in node:
                return self.param(_instant(node["timestamp"]))
            if "date" in node:
                return self.param(_date(node["date"]))
            if node.get("op") == "casei":
                return f"lower({self.scalar(node['args'][0])})"
            if node.get("op") == "accenti":
                raise FilterError("ACCENTI is not offered")
            raise FilterError("only properties and literal values may be compared (no arithmetic or functions)")
        if node is None or isinstance(node, list):
            raise FilterError("compare with a single literal value (use IS NULL for null)")
        if isinstance(node, str | bool | int | float):
            return self.param(node)
        raise FilterError("unsupported value in the filter")

    def spatial(self, node: object) -> str:
        if isinstance(node, dict) and "property" in node:
            name = self.property(node)
            if name != self.geometry_column:
                raise FilterError(f"{name} is not a geometry; spatial functions take {self.geometry_column}")
            return name
        if isinstance(node, dict) and "bbox" in node:
            box = node["bbox"]
            if len(box) == 6:
                box = [box[0], box[1], box[3], box[4]]
            if len(box) != 4 or not all(isinstance(v, int | float) for v in box):
                raise FilterError("BBOX needs minx, miny, maxx, maxy")
            return f"st_makeenvelope({', '.join(self.param(float(v)) for v in box)}, 4326)"
        if isinstance(node, dict) and node.get("type") in GEOMETRY_TYPES:
            return f"st_setsrid(st_geomfromgeojson({self.param(json.dumps(node))}), 4326)"
        raise FilterError("spatial functions compare the geometry with a geometry literal or BBOX (CRS84)")


def _instant(text: object) -> datetime:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise FilterError(f"cannot read TIMESTAMP {str(text)[:40]!r}") from None


def _date(text: object) -> date:
    try:
        return date.fromisoformat(str(text))
    except ValueError:
        raise FilterError(f"cannot read DATE {str(text)[:40]!r}") from None


def to_condition(tree: dict | bool, queryables: set[str], geometry_column: str = "geom") -> Condition:
    """The SQL condition of a CQL2-JSON ``tree`` over the properties ``queryables`` (and the geometry)."""
    translator = _Translator(queryables | {geometry_column}, geometry_column)
    try:
        sql = translator.condition(tree)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        if isinstance(exc, FilterError):
            raise
        raise FilterError(f"malformed filter: {exc!r}"[:300]) from None
    return Condition(sql, translator.params)
